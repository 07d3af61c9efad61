"""Reading a UnixFS file back from its blocks (``ipfs cat``), checking every size its DAG records.

Used by the content stores and the auditor: a file read back is exactly the bytes whose
DAG the CID names, or an :class:`ledger.core.errors.InvalidEncoding` naming the block.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from ledger.core.cid import CID, DAG_PB, RAW
from ledger.core.dagpb import decode_pbnode
from ledger.core.errors import InvalidEncoding
from ledger.core.unixfs_data import UnixFSType, decode_unixfs_data

__all__ = ["iter_file_bytes"]

_MAX_DEPTH = 64


def iter_file_bytes(root: CID, get_block: Callable[[CID], bytes]) -> Iterator[bytes]:
    """Stream the bytes of the UnixFS file at ``root``, fetching blocks with ``get_block``.

    ``get_block`` must return verified block bytes (the stores do). Accepted: raw leaves,
    and dag-pb nodes of UnixFS type File or Raw with inline Data and/or links (so files made
    with other settings, e.g. CIDv0 with dag-pb leaves, read back too). Every recorded size
    is checked before the bytes under it are yielded: ``blocksizes`` has one entry per link,
    ``filesize`` equals the inline data plus the blocksizes, and each child's own size
    equals the blocksize its parent recorded. Raises ``InvalidEncoding`` naming the block.
    """
    yield from _iter_node(root, get_block, None, 0)


def _iter_node(cid: CID, get_block: Callable[[CID], bytes], expected: int | None, depth: int) -> Iterator[bytes]:
    if depth > _MAX_DEPTH:
        raise InvalidEncoding(f"file DAG deeper than {_MAX_DEPTH} levels at {cid}")
    if cid.codec == RAW:
        block = get_block(cid)
        if expected is not None and len(block) != expected:
            raise InvalidEncoding(f"raw leaf {cid} has {len(block)} bytes but its parent records {expected}")
        if block:
            yield block
        return
    if cid.codec != DAG_PB:
        raise InvalidEncoding(f"{cid} is {cid.codec_name}; a UnixFS file is made of raw and dag-pb blocks only")
    block = get_block(cid)
    node = decode_pbnode(block)
    if node.data is None:
        raise InvalidEncoding(f"dag-pb node {cid} has no Data field, so it is not a UnixFS node")
    unixfs = decode_unixfs_data(node.data, where=f"UnixFS Data of {cid}")
    if unixfs.type not in (UnixFSType.FILE, UnixFSType.RAW):
        raise InvalidEncoding(f"{cid} is a UnixFS {unixfs.type_name}, not a file")
    inline = unixfs.data or b""
    if len(unixfs.blocksizes) != len(node.links):
        raise InvalidEncoding(f"UnixFS node {cid} has {len(node.links)} links but {len(unixfs.blocksizes)} blocksizes")
    total = len(inline) + sum(unixfs.blocksizes)
    if unixfs.filesize is not None and unixfs.filesize != total:
        raise InvalidEncoding(
            f"UnixFS node {cid} records filesize {unixfs.filesize} but its data and blocksizes add up to {total}"
        )
    if expected is not None and total != expected:
        raise InvalidEncoding(f"UnixFS node {cid} holds {total} bytes but its parent records {expected}")
    if inline:
        yield inline
    for link, size in zip(node.links, unixfs.blocksizes):
        yield from _iter_node(link.hash, get_block, size, depth + 1)
