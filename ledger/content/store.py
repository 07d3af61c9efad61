"""The content-store port: where blocks (photos, records, manifests) live.

Two adapters implement it: ``LocalBlockStore`` (files on disk, the embedded default) and
``KuboStore`` (any node speaking the Kubo RPC API). Both must produce the same CIDs as
``ipfs add --cid-version=1`` for files and as ``ipfs dag put`` for DAG-CBOR nodes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Protocol, runtime_checkable

from ledger.core import dagcbor
from ledger.core.cid import CID, DAG_CBOR
from ledger.errors import InvalidEncoding


@runtime_checkable
class ContentStore(Protocol):
    def put_block(self, cid: CID, block: bytes) -> None:
        """Store one block. Raises ``InvalidCID`` when ``block`` does not hash to ``cid``."""

    def get_block(self, cid: CID) -> bytes:
        """Return one block. Raises ``BlockNotFound``."""

    def has_block(self, cid: CID) -> bool: ...

    def add_file(self, chunks: bytes | Iterable[bytes]) -> CID:
        """Import a file as UnixFS (raw leaves, 256 KiB chunks, balanced DAG) and return its root CID.

        ``chunks`` may be the whole file or any stream of byte strings; chunking does not
        depend on how the stream is split.
        """

    def cat(self, cid: CID) -> Iterator[bytes]:
        """Stream a file's bytes back, verifying every block. Raises ``BlockNotFound``."""

    def put_node(self, node: object) -> CID:
        """Encode ``node`` as canonical DAG-CBOR, store it and return its CID."""

    def get_node(self, cid: CID) -> object:
        """Fetch and decode a DAG-CBOR node (links come back as ``CID``)."""

    def pin(self, cid: CID) -> None:
        """Keep ``cid`` and everything it links to (checks the DAG is complete)."""


def decode_node(cid: CID, get_block: Callable[[CID], bytes]) -> object:
    """Fetch a DAG-CBOR block with ``get_block`` and decode it; errors name the CID."""
    if cid.codec != DAG_CBOR:
        raise InvalidEncoding(f"{cid} is a {cid.codec_name} block, not a dag-cbor node")
    block = get_block(cid)
    try:
        return dagcbor.decode(block)
    except InvalidEncoding as exc:
        raise InvalidEncoding(f"block {cid}: {exc}") from exc
