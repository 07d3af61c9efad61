"""UnixFS file DAGs, built exactly as ``ipfs add --cid-version=1`` builds them.

CONSENSUS-CRITICAL. Every photo and evidence file is identified by the root CID this
module computes, and those CIDs end up inside records whose hashes are anchored on chain.
Changing any byte this module produces changes the CIDs of files already published and
breaks every proof that mentions them. The parameters below are Kubo's defaults for
``ipfs add --cid-version=1`` (profile name ``kubo-cidv1-raw-size-262144-balanced-174``);
the keyword arguments that change them exist for tests only.

The importer, step by step
==========================

1. **Chunking.** The byte stream is cut into fixed chunks of ``CHUNK_SIZE`` = 262144 bytes
   (256 KiB); the last chunk holds the remainder. The cut depends only on byte offsets,
   never on how the stream was split into pieces. A stream whose length is a multiple of
   the chunk size has no trailing empty chunk. The empty stream is one empty chunk.
2. **Leaves.** Each chunk is one *raw* block (codec ``raw`` 0x55): the chunk bytes
   themselves, CIDv1, sha2-256. Its ``Tsize`` is its length and its file size is its length.
3. **One chunk is the whole file.** A file of at most 262144 bytes (including the empty
   file) is just its raw leaf: no dag-pb node at all. So the empty file is
   ``bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku`` and ``b"hello"`` is
   ``bafkreibm6jg3ux5qumhcn2b3flc3tyu6dmlb4xa7u5bf44yegnrjhc4yeq``.
4. **Balanced tree.** With ``n >= 2`` chunks the root sits at depth ``d``, the least ``d``
   with ``MAX_LINKS ** d >= n`` (``MAX_LINKS`` = 174). All leaves are at depth 0 and every
   internal node at depth ``k`` links only to nodes of depth ``k - 1``; children are filled
   left to right, each to capacity before the next one starts. The last node of a level can
   therefore have a single child (175 chunks give a root with two children: one node of 174
   leaves and one node of 1 leaf). This is go-unixfs ``balanced.Layout`` and also what
   js-ipfs' bottom-up ``reduceToParents`` produces.
5. **Internal nodes** are dag-pb (codec 0x70) blocks, CIDv1, sha2-256:

   PBNode (protobuf, fields written in this order, which is the dag-pb canonical order)::

       for each child:  0x12 <varint len(PBLink)> PBLink        Links, field 2
       then:            0x0a <varint len(Data)>   Data          Data,  field 1

   PBLink::

       0x0a <varint len(cid)> <binary CIDv1 of the child>       Hash,  field 1
       0x12 0x00                                                Name,  field 2: "" (present)
       0x18 <varint Tsize>                                      Tsize, field 3

   ``Tsize`` is the cumulative serialized size of the child DAG: for a raw leaf its length;
   for a dag-pb node the length of its block plus the ``Tsize`` of all of its links.

   Data is a UnixFS ``Data`` message (proto2, as go-unixfs marshals it)::

       0x08 0x02                                                Type = File (2)
       0x18 <varint filesize>                                   filesize = sum of blocksizes
       0x20 <varint blocksize>   (once per child, unpacked)     blocksizes: file bytes under each child

   No ``Data`` bytes (field 2), ``hashType``, ``fanout``, ``mode`` or ``mtime`` are written.

Worked example
==============

The 262145-byte file of ``0x00`` bytes has two chunks: 262144 zeros and one zero.

- leaf 0: ``bafkreiekhhjkxu4ztk3tyng3er3ijhg56mb44oe3gwbgquhzu4afrg2ksa`` (262144 zeros)
- leaf 1: ``bafkreidogqfzz75tpkmjzjke425xqcrmpcib2p5tg44hnbirumdbpl5adu`` (one zero byte)
- the root's UnixFS Data, 12 bytes: ``08 02 18 81 80 10 20 80 80 10 20 01``
  (Type File; filesize 262145; blocksizes 262144 and 1);
- link 0, 44 bytes: ``0a 24 <CID of leaf 0, 36 bytes> 12 00 18 80 80 10`` (Tsize 262144);
  link 1, 42 bytes: ``0a 24 <CID of leaf 1> 12 00 18 01`` (Tsize 1);
- the root block, 104 bytes: ``12 2c <link 0> 12 2a <link 1> 0a 0c <Data>``;
- root CID ``bafybeigllfqgfpqydppr6cmv56g7ax4wyhruzswvcefv6j5kj77nzttfki``, the CID
  ``ipfs add --cid-version=1`` prints for that file; its DAG size (the Tsize a parent
  would record) is 104 + 262145 = 262249.

(The figures in this example are checked by ``tests/core/test_unixfs.py``.)

What this module offers
=======================

- :class:`FileDagBuilder` — a streaming builder: ``write()`` pieces of any size, then
  ``finish()``; both return the blocks they completed, every child before its parent, so
  the root is the last block of the whole sequence. It holds at most one partial chunk and ``MAX_LINKS`` links per level
  (O(depth × 174) memory).
- :func:`iter_file_blocks` and :func:`file_cid` — the one-call forms.

The rest of a file DAG has a module of its own each, and its names are importable from here
too:

- ``ledger.core.dagpb`` — :func:`encode_pbnode` / :func:`decode_pbnode`, dag-pb, strict:
  ``decode`` refuses anything ``encode`` would not produce byte for byte;
- ``ledger.core.unixfs_data`` — the UnixFS ``Data`` message (:func:`encode_unixfs_file_data`,
  :func:`decode_unixfs_data`);
- ``ledger.core.unixfs_reader`` — :func:`iter_file_bytes`, which reads a file back (``cat``),
  checking every size recorded in the DAG against the bytes actually found;
- ``ledger.core.protobuf`` — the protobuf wire reader the two codecs share.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from typing import NamedTuple

from ledger.core.cid import CID, DAG_PB, RAW, SHA2_256, encode_varint
from ledger.core.dagpb import PBLink, PBNode, decode_pbnode, encode_pbnode, pbnode_links
from ledger.core.unixfs_data import UnixFSData, UnixFSType, decode_unixfs_data, encode_unixfs_file_data
from ledger.core.unixfs_reader import iter_file_bytes

__all__ = [
    "CHUNK_SIZE",
    "MAX_LINKS",
    "UNIXFS_PROFILE",
    "Block",
    "FileDagBuilder",
    "PBLink",
    "PBNode",
    "UnixFSData",
    "UnixFSType",
    "decode_pbnode",
    "decode_unixfs_data",
    "encode_pbnode",
    "encode_unixfs_file_data",
    "file_cid",
    "iter_file_blocks",
    "iter_file_bytes",
    "pbnode_links",
]

CHUNK_SIZE = 262144
"""Fixed chunk size in bytes (Kubo ``--chunker=size-262144``)."""

MAX_LINKS = 174
"""Most links per internal node (go-unixfs ``helpers.DefaultLinksPerBlock``)."""

UNIXFS_PROFILE = "kubo-cidv1-raw-size-262144-balanced-174"
"""Name of the import settings above; stored beside CIDs wherever the settings matter."""

_SHA256_PREFIX_RAW = bytes((1, RAW, SHA2_256, 32))
_SHA256_PREFIX_PB = bytes((1, DAG_PB, SHA2_256, 32))


class Block(NamedTuple):
    """One block to store: its CID and its bytes. Unpacks as a ``(cid, data)`` pair."""

    cid: CID
    data: bytes


class FileDagBuilder:
    """Streaming UnixFS importer: ``write()`` any pieces, then ``finish()``.

    Both methods return the blocks completed by that call as :class:`Block` pairs, leaves
    and internal nodes in the order a store should write them (every child before its
    parent). The root is the last block of the whole sequence (usually returned by
    ``finish()``, but a file that ends exactly on a full node completes its root in
    ``write()``); :attr:`root` is its CID once ``finish()`` has run.

    With ``keep_leaves=False`` leaf blocks are hashed but not returned (internal nodes
    still are): this is what :func:`file_cid` uses, and it never copies file bytes when
    ``write()`` is given whole chunks or larger pieces.

    ``chunk_size`` and ``max_links`` exist for tests of deep trees; any other value than
    the defaults gives CIDs that differ from ``ipfs add --cid-version=1``.
    """

    __slots__ = (
        "_chunk_size",
        "_keep_leaves",
        "_levels",
        "_max_links",
        "_pending",
        "_root",
        "_size",
        "_leaf_count",
    )

    def __init__(self, *, keep_leaves: bool = True, chunk_size: int = CHUNK_SIZE, max_links: int = MAX_LINKS) -> None:
        if chunk_size < 1:
            raise ValueError(f"chunk_size must be at least 1, got {chunk_size}")
        if max_links < 2:
            raise ValueError(f"max_links must be at least 2, got {max_links}")
        self._chunk_size = chunk_size
        self._max_links = max_links
        self._keep_leaves = keep_leaves
        self._pending = bytearray()  # the partial chunk; never holds a whole one
        # _levels[k] holds the links of the node being filled at depth k + 1, as
        # (binary CID, Tsize, file size) triples; at most max_links of them.
        self._levels: list[list[tuple[bytes, int, int]]] = [[]]
        self._root: CID | None = None
        self._size = 0
        self._leaf_count = 0

    @property
    def size(self) -> int:
        """File bytes consumed so far."""
        return self._size

    @property
    def root(self) -> CID:
        """The root CID; available after :meth:`finish`."""
        if self._root is None:
            raise RuntimeError("the file DAG is not finished: call finish() first")
        return self._root

    def write(self, piece: bytes | bytearray | memoryview) -> list[Block]:
        """Feed the next piece of the file; return the blocks it completed."""
        if self._root is not None:
            raise RuntimeError("write() after finish()")
        view = memoryview(piece).cast("B")
        length = len(view)
        if length == 0:
            return []
        self._size += length
        out: list[Block] = []
        chunk = self._chunk_size
        offset = 0
        if self._pending:
            take = min(chunk - len(self._pending), length)
            self._pending += view[:take]
            offset = take
            if len(self._pending) < chunk:
                return out
            full, self._pending = self._pending, bytearray()
            self._leaf(memoryview(full), None, out)
        # Whole chunks straight from the caller's buffer: no copy unless leaves are kept
        # and the piece is not itself exactly one chunk of immutable bytes.
        whole = piece if (offset == 0 and length == chunk and isinstance(piece, bytes)) else None
        while length - offset >= chunk:
            self._leaf(view[offset : offset + chunk], whole, out)
            offset += chunk
        if offset < length:
            self._pending += view[offset:]
        return out

    def finish(self) -> list[Block]:
        """Flush the last chunk and the partial nodes; return those blocks (root last, if not already returned)."""
        if self._root is not None:
            raise RuntimeError("finish() called twice")
        out: list[Block] = []
        if self._pending or self._leaf_count == 0:
            last, self._pending = self._pending, bytearray()
            self._leaf(memoryview(last), None, out)
        if self._leaf_count == 1:
            # A single chunk is the whole file: its raw leaf is the root.
            ((cid_bytes, _, _),) = self._levels[0]
            self._root = CID.from_bytes(cid_bytes)
            return out
        # Close every partial node bottom-up. Level k is the top when nothing sits above it;
        # the top level holding a single link is the root (it is never a leaf here, since
        # there are at least two leaves).
        depth = 0
        while True:
            links = self._levels[depth]
            is_top = depth == len(self._levels) - 1
            if is_top and len(links) == 1:
                self._root = CID.from_bytes(links[0][0])
                return out
            if links:
                self._emit_node(depth, out)
            depth += 1

    # -- internals ----------------------------------------------------------------------

    def _leaf(self, chunk: memoryview, whole: bytes | None, out: list[Block]) -> None:
        length = len(chunk)
        self._leaf_count += 1
        if self._keep_leaves:
            # Copy first, then hash the copy while it is still in cache.
            data = whole if whole is not None else bytes(chunk)
            cid_bytes = _SHA256_PREFIX_RAW + hashlib.sha256(data).digest()
            out.append(Block(CID(1, RAW, cid_bytes[2:]), data))
        else:
            cid_bytes = _SHA256_PREFIX_RAW + hashlib.sha256(chunk).digest()
        level = self._levels[0]
        level.append((cid_bytes, length, length))
        if len(level) == self._max_links:
            self._emit_node(0, out)

    def _emit_node(self, depth: int, out: list[Block]) -> None:
        """Turn the links gathered at ``depth`` into a dag-pb node and link it one level up."""
        links = self._levels[depth]
        filesize = 0
        body = bytearray()
        for cid_bytes, tsize, size in links:
            filesize += size
            link = b"\x0a" + encode_varint(len(cid_bytes)) + cid_bytes + b"\x12\x00\x18" + encode_varint(tsize)
            body += b"\x12"
            body += encode_varint(len(link))
            body += link
        data = encode_unixfs_file_data(filesize, (size for _, _, size in links))
        body += b"\x0a"
        body += encode_varint(len(data))
        body += data
        block = bytes(body)
        cid_bytes = _SHA256_PREFIX_PB + hashlib.sha256(block).digest()
        tsize = len(block) + sum(t for _, t, _ in links)
        out.append(Block(CID(1, DAG_PB, cid_bytes[2:]), block))
        links.clear()
        if depth + 1 == len(self._levels):
            self._levels.append([])
        parent = self._levels[depth + 1]
        parent.append((cid_bytes, tsize, filesize))
        if len(parent) == self._max_links:
            self._emit_node(depth + 1, out)


def _pieces(
    data: bytes | bytearray | memoryview | Iterable[bytes], step: int | None = None
) -> Iterable[bytes | bytearray | memoryview]:
    """``data`` as pieces; one buffer is cut into ``step``-byte views (when given) to bound memory."""
    if isinstance(data, (bytes, bytearray, memoryview)):
        if step is None or len(data) <= step:
            return (data,)
        view = memoryview(data)
        return (view[start : start + step] for start in range(0, len(view), step))
    return data


def iter_file_blocks(
    data: bytes | bytearray | memoryview | Iterable[bytes],
    *,
    chunk_size: int = CHUNK_SIZE,
    max_links: int = MAX_LINKS,
) -> Iterator[Block]:
    """Yield every block of the file DAG of ``data`` (bytes or a stream of pieces), children first, root last."""
    builder = FileDagBuilder(chunk_size=chunk_size, max_links=max_links)
    # A whole file given at once is still handed out 16 chunks at a time, so at most
    # 16 leaf copies exist beyond what the caller keeps.
    for piece in _pieces(data, 16 * chunk_size):
        yield from builder.write(piece)
    yield from builder.finish()


def file_cid(
    data: bytes | bytearray | memoryview | Iterable[bytes],
    *,
    chunk_size: int = CHUNK_SIZE,
    max_links: int = MAX_LINKS,
) -> CID:
    """The root CID ``ipfs add --cid-version=1`` gives ``data`` (bytes or a stream of pieces)."""
    builder = FileDagBuilder(keep_leaves=False, chunk_size=chunk_size, max_links=max_links)
    for piece in _pieces(data):
        builder.write(piece)
    builder.finish()
    return builder.root
