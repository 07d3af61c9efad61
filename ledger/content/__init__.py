"""Where blocks live: the ``ContentStore`` port and its adapters.

- :class:`~ledger.content.local.LocalBlockStore` — files under ``TALLY_DATA_DIR/blocks`` (default);
- :class:`~ledger.content.kubo.KuboStore` — an IPFS node's RPC API (``TALLY_IPFS_API_URL``);
- :mod:`ledger.content.car` — CAR v1 export and verified import, for either store.
"""

from __future__ import annotations

from ledger.content.kubo import KuboStore
from ledger.content.local import LocalBlockStore
from ledger.content.store import ContentStore
from ledger.settings import Settings

__all__ = ["ContentStore", "KuboStore", "LocalBlockStore", "open_content_store"]


def open_content_store(settings: Settings) -> ContentStore:
    """The configured store: Kubo when ``settings.ipfs_api_url`` is set, else the local block store."""
    if settings.ipfs_api_url:
        return KuboStore(settings.ipfs_api_url, timeout=settings.ipfs_timeout_seconds)
    return LocalBlockStore(settings.blocks_dir)
