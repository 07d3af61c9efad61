"""The UnixFS ``Data`` message (unixfs.proto, proto2) inside a dag-pb node: what kind of
node it is and how many file bytes sit under it.

CONSENSUS-CRITICAL. :func:`encode_unixfs_file_data` writes the Data of every internal file
node ``ledger.core.unixfs`` builds, so its bytes are part of the file's CID::

    0x08 0x02                                       Type = File (2)
    0x18 <varint filesize>                          filesize = sum of blocksizes
    0x20 <varint blocksize>  (once per child)       blocksizes, unpacked

:func:`decode_unixfs_data` reads any UnixFS Data (files made by other importers too).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ledger.core.cid import encode_varint
from ledger.core.errors import InvalidEncoding
from ledger.core.protobuf import read_bytes, read_varint

__all__ = ["UnixFSData", "UnixFSType", "decode_unixfs_data", "encode_unixfs_file_data"]


class UnixFSType:
    """The ``Data.Type`` enumeration of unixfs.proto."""

    RAW = 0
    DIRECTORY = 1
    FILE = 2
    METADATA = 3
    SYMLINK = 4
    HAMT_SHARD = 5

    NAMES = {0: "Raw", 1: "Directory", 2: "File", 3: "Metadata", 4: "Symlink", 5: "HAMTShard"}


@dataclass(frozen=True, slots=True)
class UnixFSData:
    """The fields of a UnixFS ``Data`` message that reading a file needs."""

    type: int
    data: bytes | None = None
    filesize: int | None = None
    blocksizes: tuple[int, ...] = ()

    @property
    def type_name(self) -> str:
        return UnixFSType.NAMES.get(self.type, f"unknown type {self.type}")


def encode_unixfs_file_data(filesize: int, blocksizes: Iterable[int]) -> bytes:
    """The Data of an internal file node: ``Type=File``, ``filesize``, one ``blocksizes`` per child."""
    out = bytearray(b"\x08\x02\x18")
    out += encode_varint(filesize)
    for size in blocksizes:
        out += b"\x20"
        out += encode_varint(size)
    return bytes(out)


def decode_unixfs_data(data: bytes | memoryview, *, where: str = "UnixFS Data") -> UnixFSData:
    """Parse a UnixFS ``Data`` message (proto2: unknown fields are skipped, as protobuf does).

    ``blocksizes`` is read both unpacked (as go-unixfs writes it) and packed.
    """
    raw = bytes(data)
    position = 0
    node_type: int | None = None
    payload: bytes | None = None
    filesize: int | None = None
    blocksizes: list[int] = []
    while position < len(raw):
        tag_offset = position
        tag, position = read_varint(raw, position, where)
        field, wire = tag >> 3, tag & 7
        if field == 1 and wire == 0:
            node_type, position = read_varint(raw, position, where)
        elif field == 2 and wire == 2:
            payload, position = read_bytes(raw, position, where)
        elif field == 3 and wire == 0:
            filesize, position = read_varint(raw, position, where)
        elif field == 4 and wire == 0:
            size, position = read_varint(raw, position, where)
            blocksizes.append(size)
        elif field == 4 and wire == 2:
            packed, position = read_bytes(raw, position, where)
            inner = 0
            while inner < len(packed):
                size, inner = read_varint(packed, inner, where)
                blocksizes.append(size)
        elif field == 0:
            raise InvalidEncoding(f"{where}: field number 0 at offset {tag_offset}")
        elif wire == 0:
            _, position = read_varint(raw, position, where)
        elif wire == 1:
            position += 8
        elif wire == 2:
            _, position = read_bytes(raw, position, where)
        elif wire == 5:
            position += 4
        else:
            raise InvalidEncoding(f"{where}: unsupported wire type {wire} at offset {tag_offset}")
        if position > len(raw):
            raise InvalidEncoding(f"{where}: truncated field at offset {tag_offset}")
    if node_type is None:
        raise InvalidEncoding(f"{where}: the required Type field is missing")
    return UnixFSData(node_type, payload, filesize, tuple(blocksizes))
