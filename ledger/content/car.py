"""CAR v1 files: export any set of roots with every block under them; import with full checks.

Format (https://ipld.io/specs/transport/car/carv1/), as ``ipfs dag export`` writes it::

    varint(len(header)) header                 header = DAG-CBOR {"roots": [CID, ...], "version": 1}
    varint(len(cid) + len(block)) cid block    one section per block, binary CID then bytes
    ...

Export walks the DAG depth-first from each root in turn (``iter_dag_blocks``), writes each
block once, streams to a temporary file beside the destination and renames it into place.

Import is all or nothing for anything wrong with the file: a first pass reads the whole
file and checks every section (lengths, CIDs, sha2-256 hashes, that dag-pb and dag-cbor
blocks decode, that the roots are present and that every link points to a block in the
file or already in the store); only then does a second pass store the blocks. A corrupt or
incomplete file is refused with ``InvalidEncoding`` (or ``BlockNotFound`` for a missing
linked block) before anything is written.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from ledger.content.local import block_links, iter_dag_blocks
from ledger.content.store import ContentStore
from ledger.core import dagcbor
from ledger.core.cid import CID, DAG_CBOR, DAG_PB, RAW, SHA2_256, encode_varint
from ledger.errors import BlockNotFound, InvalidCID, InvalidEncoding

__all__ = [
    "MAX_HEADER_BYTES",
    "MAX_SECTION_BYTES",
    "CarSummary",
    "encode_car_header",
    "export_car",
    "import_car",
    "iter_car_blocks",
    "read_car_header",
    "write_car",
]

MAX_HEADER_BYTES = 1 << 20
"""Largest header accepted on import (1 MiB: room for tens of thousands of roots)."""

MAX_SECTION_BYTES = 8 << 20
"""Largest section (CID + block) accepted on import; IPFS nodes refuse blocks over 4 MiB anyway."""

_IMPORTED_CODECS = {RAW, DAG_PB, DAG_CBOR}


@dataclass(frozen=True, slots=True)
class CarSummary:
    """What a CAR export or import covered."""

    roots: tuple[CID, ...]
    block_count: int
    byte_count: int


# --------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------


def encode_car_header(roots: Sequence[CID]) -> bytes:
    """The length-prefixed CAR v1 header for ``roots`` (at least one)."""
    if not roots:
        raise InvalidEncoding("a CAR v1 file needs at least one root")
    header = dagcbor.encode({"roots": list(roots), "version": 1})
    return encode_varint(len(header)) + header


def write_car(stream: BinaryIO, roots: Sequence[CID], blocks: Iterable[tuple[CID, bytes]]) -> CarSummary:
    """Write a CAR v1 stream: the header for ``roots`` then one section per block, in order."""
    written = stream.write(encode_car_header(roots))
    count = 0
    for cid, block in blocks:
        cid_bytes = cid.bytes
        written += stream.write(encode_varint(len(cid_bytes) + len(block)))
        written += stream.write(cid_bytes)
        written += stream.write(block)
        count += 1
    return CarSummary(tuple(roots), count, written)


def export_car(store: ContentStore, roots: Sequence[CID], destination: Path | BinaryIO, *, fsync: bool = False) -> CarSummary:
    """Export ``roots`` and every block reachable from them as CAR v1.

    ``destination`` is a path (written to a temporary file beside it, then renamed into
    place, so a failed export leaves nothing behind) or an open binary stream (written
    as is; the caller owns it). Blocks are read through ``store.get_block`` (verified); a
    missing block raises ``BlockNotFound``.
    """
    if not isinstance(destination, (str, Path)):
        return write_car(destination, roots, iter_dag_blocks(store.get_block, roots))
    destination = Path(destination)
    temporary = destination.with_name(f".{destination.name}.{secrets.token_hex(6)}.tmp")
    try:
        with open(temporary, "xb") as handle:
            summary = write_car(handle, roots, iter_dag_blocks(store.get_block, roots))
            if fsync:
                handle.flush()
                os.fsync(handle.fileno())
        os.replace(temporary, destination)
    finally:
        if temporary.exists():
            temporary.unlink()
    return summary


# --------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------


class _Reader:
    """Counts offsets so every error can say where in the file it is."""

    def __init__(self, stream: BinaryIO) -> None:
        self.stream = stream
        self.offset = 0

    def exact(self, count: int, what: str) -> bytes:
        data = self.stream.read(count)
        if len(data) != count:
            raise InvalidEncoding(f"CAR truncated in {what} at offset {self.offset}: needed {count} bytes, found {len(data)}")
        self.offset += count
        return data

    def varint(self, what: str) -> int:
        value = self.varint_or_eof(what, eof_ok=False)
        if value is None:  # pragma: no cover - eof_ok=False never returns None
            raise InvalidEncoding(f"CAR truncated in the length varint of {what} at offset {self.offset}")
        return value

    def varint_or_eof(self, what: str, *, eof_ok: bool = True) -> int | None:
        """A minimal unsigned varint, or ``None`` at a clean end of file when ``eof_ok``."""
        start = self.offset
        value = 0
        shift = 0
        while True:
            byte = self.stream.read(1)
            if not byte:
                if eof_ok and self.offset == start:
                    return None
                raise InvalidEncoding(f"CAR truncated in the length varint of {what} at offset {start}")
            self.offset += 1
            value |= (byte[0] & 0x7F) << shift
            if not byte[0] & 0x80:
                if byte[0] == 0 and self.offset - start > 1:
                    raise InvalidEncoding(f"the length varint of {what} at offset {start} is not minimally encoded")
                return value
            shift += 7
            if shift > 63:
                raise InvalidEncoding(f"the length varint of {what} at offset {start} is longer than 9 bytes")


def _read_header(reader: _Reader) -> tuple[CID, ...]:
    length = reader.varint("the header")
    if length == 0 or length > MAX_HEADER_BYTES:
        raise InvalidEncoding(f"CAR header length {length} is out of range (1..{MAX_HEADER_BYTES})")
    raw = reader.exact(length, "the header")
    try:
        header = dagcbor.decode(raw)
    except InvalidEncoding as exc:
        raise InvalidEncoding(f"the CAR header is not valid DAG-CBOR: {exc}") from exc
    if not isinstance(header, dict):
        raise InvalidEncoding(f"the CAR header must be a map, got {type(header).__name__}")
    version = header.get("version")
    if version == 2:
        raise InvalidEncoding("this is a CAR v2 file; only CAR v1 is accepted (ipfs dag export writes v1)")
    if version != 1:
        raise InvalidEncoding(f"the CAR header says version {version!r}; only version 1 is accepted")
    if set(header) != {"roots", "version"}:
        extra = sorted(set(header) - {"roots", "version"})
        raise InvalidEncoding(f"the CAR v1 header must have exactly 'roots' and 'version'; found {extra or 'no roots'}")
    roots = header["roots"]
    if not isinstance(roots, list) or not roots or not all(isinstance(root, CID) for root in roots):
        raise InvalidEncoding("the CAR header 'roots' must be a non-empty list of CIDs")
    return tuple(roots)


def read_car_header(stream: BinaryIO) -> tuple[CID, ...]:
    """Read and check the header at the start of ``stream``; return its roots."""
    return _read_header(_Reader(stream))


def iter_car_blocks(stream: BinaryIO) -> Iterator[tuple[CID, bytes]]:
    """Read a CAR v1 stream (header first) and yield every section as a verified ``(cid, block)``.

    Raises ``InvalidEncoding`` at the first malformed section, naming its index and offset:
    bad or zero length, bad CID, a hash other than sha2-256, a block that does not hash to
    its CID, truncation. Blocks already yielded were each valid on their own.
    """
    reader = _Reader(stream)
    _read_header(reader)
    index = 0
    while True:
        start = reader.offset
        length = reader.varint_or_eof(f"section {index}")
        if length is None:
            return
        if length == 0 or length > MAX_SECTION_BYTES:
            raise InvalidEncoding(f"CAR section {index} at offset {start} has length {length}, outside 1..{MAX_SECTION_BYTES}")
        section = reader.exact(length, f"section {index}")
        try:
            cid, block_start = CID.read(section, 0)
        except InvalidCID as exc:
            raise InvalidEncoding(f"CAR section {index} at offset {start} does not start with a valid CID: {exc}") from exc
        if cid.hash_code != SHA2_256:
            raise InvalidEncoding(
                f"CAR section {index} at offset {start}: {cid} uses multihash 0x{cid.hash_code:x}; only sha2-256 is accepted"
            )
        block = section[block_start:]
        if not cid.verify_block(block):
            raise InvalidEncoding(
                f"CAR section {index} at offset {start}: the {len(block)}-byte block does not hash to {cid} (corrupt file)"
            )
        yield cid, block
        index += 1


# --------------------------------------------------------------------------------------
# Importing
# --------------------------------------------------------------------------------------


def import_car(store: ContentStore, source: Path | BinaryIO) -> CarSummary:
    """Check the CAR file ``source`` completely, then store all its blocks; return what it held.

    ``source`` is a path or a seekable binary stream positioned at the start of the CAR
    (it is read twice). Refused before anything is stored: any malformed section or block
    (see :func:`iter_car_blocks`), a block of a codec other than raw, dag-pb or dag-cbor, a
    dag-pb or dag-cbor block that does not decode, a root not in the file or the store, and
    a link to a block neither in the file nor in the store (``BlockNotFound``). The second
    pass verifies every block again as it stores it.
    """
    if isinstance(source, (str, Path)):
        with open(source, "rb") as handle:
            return _import(store, handle)
    if not source.seekable():
        raise InvalidEncoding("importing a CAR needs a path or a seekable stream (it is checked before it is stored)")
    return _import(store, source)


def _import(store: ContentStore, handle: BinaryIO) -> CarSummary:
    start = handle.tell()
    present: set[bytes] = set()
    linked: dict[bytes, CID] = {}
    count = 0
    roots = read_car_header(handle)
    handle.seek(start)
    for index, (cid, block) in enumerate(iter_car_blocks(handle)):
        if cid.codec not in _IMPORTED_CODECS:
            raise InvalidEncoding(
                f"CAR section {index}: {cid} is {cid.codec_name}; only raw, dag-pb and dag-cbor blocks are imported"
            )
        try:
            links = block_links(cid, block)
        except InvalidEncoding as exc:
            raise InvalidEncoding(f"CAR section {index}: {exc}") from exc
        present.add(cid.multihash)
        for link in links:
            linked.setdefault(link.multihash, link)
        count += 1
    size = handle.tell() - start
    for root in roots:
        if root.multihash not in present and not store.has_block(root):
            raise InvalidEncoding(f"the CAR names root {root} but does not contain it (and the store does not have it)")
    for multihash, link in linked.items():
        if multihash not in present and not store.has_block(link):
            raise BlockNotFound(f"the CAR links to {link}, which is neither in the file nor in the store")
    handle.seek(start)
    for cid, block in iter_car_blocks(handle):
        store.put_block(cid, block)
    return CarSummary(roots, count, size)
