"""The embedded content store: blocks as files on disk, plus the DAG walker.

Layout: ``<root>/<shard>/<key>.data`` where ``key`` is the base32 (lowercase, unpadded)
form of the block's multihash and ``shard`` is the two characters before its last one
(Kubo's flatfs ``next-to-last/2``). Keying by multihash means a block is found whatever
codec a CID names it with, as in Kubo. Writes go to a temporary file in the shard directory
and are moved into place with ``os.replace``, so a reader never sees half a block.

Every block is hashed again when read: a block altered on disk raises
``ContentStoreError`` naming its CID and path instead of returning wrong bytes.
"""

from __future__ import annotations

import base64
import os
import secrets
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path

from ledger.content.store import decode_node
from ledger.core import dagcbor
from ledger.core.cid import CID, DAG_CBOR, DAG_PB, RAW, SHA2_256
from ledger.core.unixfs import iter_file_blocks, iter_file_bytes, pbnode_links
from ledger.errors import BlockNotFound, ContentStoreError, InvalidCID, InvalidEncoding

__all__ = ["LocalBlockStore", "block_links", "iter_dag_blocks"]


def block_links(cid: CID, block: bytes) -> list[CID]:
    """The CIDs ``block`` links to: none for raw, PBLinks for dag-pb, tag-42 links for dag-cbor.

    Raises ``InvalidEncoding`` for other codecs (their links cannot be followed) and for
    blocks that do not decode.
    """
    if cid.codec == RAW:
        return []
    if cid.codec == DAG_PB:
        try:
            return pbnode_links(block)
        except InvalidEncoding as exc:
            raise InvalidEncoding(f"block {cid}: {exc}") from exc
    if cid.codec == DAG_CBOR:
        try:
            value = dagcbor.decode(block)
        except InvalidEncoding as exc:
            raise InvalidEncoding(f"block {cid}: {exc}") from exc
        links: list[CID] = []
        _collect_cbor_links(value, links)
        return links
    raise InvalidEncoding(f"cannot follow the links of {cid}: codec {cid.codec_name} is not raw, dag-pb or dag-cbor")


def _collect_cbor_links(value: object, out: list[CID]) -> None:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, CID):
            out.append(item)
        elif isinstance(item, dict):
            stack.extend(reversed(list(item.values())))
        elif isinstance(item, list):
            stack.extend(reversed(item))


def iter_dag_blocks(get_block: Callable[[CID], bytes], roots: Iterable[CID]) -> Iterator[tuple[CID, bytes]]:
    """Every block reachable from ``roots``, each once, depth-first in link order (roots first).

    This is the order ``ipfs dag export`` writes. ``get_block`` raises ``BlockNotFound``
    for a missing block, which ends the walk: a DAG with a hole is not exported or pinned.
    """
    seen: set[bytes] = set()
    stack = list(reversed(list(roots)))
    while stack:
        cid = stack.pop()
        key = cid.bytes
        if key in seen:
            continue
        seen.add(key)
        block = get_block(cid)
        yield cid, block
        stack.extend(reversed(block_links(cid, block)))


class LocalBlockStore:
    """A :class:`~ledger.content.store.ContentStore` in a directory.

    ``fsync=True`` flushes every block and its directory entry to stable storage before
    ``put_block`` returns (slower; for deployments where a power cut must not lose evidence).
    """

    def __init__(self, root: Path, *, fsync: bool = False) -> None:
        self.root = Path(root)
        self.fsync = fsync
        self.root.mkdir(parents=True, exist_ok=True)

    def __repr__(self) -> str:
        return f"LocalBlockStore({str(self.root)!r})"

    # -- paths ------------------------------------------------------------------------

    def path_of(self, cid: CID) -> Path:
        """Where the block of ``cid`` lives (whether or not it is there)."""
        key = base64.b32encode(cid.multihash).decode("ascii").lower().rstrip("=")
        return self.root / key[-3:-1] / f"{key}.data"

    @staticmethod
    def _check_hash(cid: CID) -> None:
        if cid.hash_code != SHA2_256:
            raise InvalidCID(f"{cid} uses multihash 0x{cid.hash_code:x}; this store only holds sha2-256 blocks")

    # -- blocks -----------------------------------------------------------------------

    def put_block(self, cid: CID, block: bytes) -> None:
        """Store ``block`` under ``cid`` after checking it hashes to ``cid``."""
        self._check_hash(cid)
        if not cid.verify_block(block):
            raise InvalidCID(f"block of {len(block)} bytes does not hash to {cid}; its raw CID would be {CID.of(RAW, block)}")
        self._write(cid, block)

    def _write(self, cid: CID, block: bytes | memoryview) -> None:
        path = self.path_of(cid)
        if path.exists() and self._intact(cid, path):
            return  # already stored; a corrupt copy is overwritten below
        shard = path.parent
        try:
            shard.mkdir(parents=True, exist_ok=True)
            temporary = shard / f".{path.name}.{secrets.token_hex(6)}.tmp"
            with open(temporary, "xb") as handle:
                handle.write(block)
                if self.fsync:
                    handle.flush()
                    os.fsync(handle.fileno())
            os.replace(temporary, path)
            if self.fsync:
                directory = os.open(shard, os.O_RDONLY)
                try:
                    os.fsync(directory)
                finally:
                    os.close(directory)
        except OSError as exc:
            raise ContentStoreError(f"cannot write block {cid} to {path}: {exc}") from exc

    @staticmethod
    def _intact(cid: CID, path: Path) -> bool:
        try:
            return cid.verify_block(path.read_bytes())
        except OSError:
            return False

    def get_block(self, cid: CID) -> bytes:
        """Read and re-verify a block. Raises ``BlockNotFound``, or ``ContentStoreError`` if it was altered."""
        self._check_hash(cid)
        path = self.path_of(cid)
        try:
            block = path.read_bytes()
        except FileNotFoundError:
            raise BlockNotFound(f"block {cid} is not in the local block store {self.root}") from None
        except OSError as exc:
            raise ContentStoreError(f"cannot read block {cid} from {path}: {exc}") from exc
        if not cid.verify_block(block):
            raise ContentStoreError(
                f"block {cid} at {path} is corrupt: its {len(block)} bytes no longer hash to its CID "
                "(the file was altered on disk; restore it from a CAR export or another node)"
            )
        return block

    def has_block(self, cid: CID) -> bool:
        return cid.hash_code == SHA2_256 and self.path_of(cid).exists()

    # -- files ------------------------------------------------------------------------

    def add_file(self, chunks: bytes | Iterable[bytes]) -> CID:
        """Import a file (bytes or a stream of pieces) as UnixFS; return its root CID."""
        cid = CID.of(RAW, b"")  # iter_file_blocks yields at least one block; its last is the root
        for cid, block in iter_file_blocks(chunks):
            self._write(cid, block)
        return cid

    def cat(self, cid: CID) -> Iterator[bytes]:
        """Stream a UnixFS file's bytes, every block verified as it is read."""
        return iter_file_bytes(cid, self.get_block)

    # -- DAG-CBOR nodes ---------------------------------------------------------------

    def put_node(self, node: object) -> CID:
        block = dagcbor.encode(node)
        cid = CID.of(DAG_CBOR, block)
        self._write(cid, block)
        return cid

    def get_node(self, cid: CID) -> object:
        return decode_node(cid, self.get_block)

    # -- DAGs -------------------------------------------------------------------------

    def iter_reachable(self, roots: Sequence[CID]) -> Iterator[tuple[CID, bytes]]:
        """Every block reachable from ``roots`` (verified), for CAR export and pinning."""
        return iter_dag_blocks(self.get_block, roots)

    def pin(self, cid: CID) -> None:
        """Check that the whole DAG under ``cid`` is present and intact.

        The local store never collects garbage, so pinning only has to prove completeness;
        raises ``BlockNotFound`` or ``ContentStoreError`` like ``get_block``.
        """
        for _ in self.iter_reachable([cid]):
            pass
