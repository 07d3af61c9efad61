"""Session fixtures for the js-ipfs test peer. Import them in tests/conftest.py:

    from tests.support.ipfs import ipfs_peer, kubo_store  # noqa: F401

``ipfs_peer`` starts one offline js-ipfs daemon for the whole session (repo in a pytest temp
dir, never ~/.jsipfs) and stops it at the end. Tests that use it are skipped, with the
reason, only when ``node_modules/ipfs`` is missing (run ``npm ci``); any other failure to
start fails them.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ledger.content.kubo import KuboStore
from tests.support.ipfs_peer import IpfsPeer, ipfs_peer_unavailable, start_ipfs_peer

__all__ = ["ipfs_peer", "kubo_store"]

STARTUP_TIMEOUT_SECONDS = 90.0


@pytest.fixture(scope="session")
def ipfs_peer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[IpfsPeer]:
    reason = ipfs_peer_unavailable()
    if reason is not None:
        pytest.skip(reason)
    peer = start_ipfs_peer(tmp_path_factory.mktemp("jsipfs") / "repo", startup_timeout=STARTUP_TIMEOUT_SECONDS)
    try:
        yield peer
    finally:
        peer.stop()


@pytest.fixture()
def kubo_store(ipfs_peer: IpfsPeer) -> Iterator[KuboStore]:
    """A ``KuboStore`` on the test peer; js-ipfs waits out ``lookup_timeout`` for missing blocks."""
    store = KuboStore(ipfs_peer.api_url, timeout=120.0, lookup_timeout=1.0)
    try:
        yield store
    finally:
        store.close()
