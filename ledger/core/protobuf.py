"""Protocol Buffers wire format, read strictly: the varints and length-delimited fields that
dag-pb nodes (``ledger.core.dagpb``) and UnixFS ``Data`` messages (``ledger.core.unixfs_data``)
are made of.

CONSENSUS-CRITICAL, through those two: a file's CID is the hash of such bytes. Writing
uses the multiformats varint (``ledger.core.cid.encode_varint``): protobuf's base-128
varint is the same encoding.

Every error is an :class:`ledger.core.errors.InvalidEncoding` that names ``where`` (the
message being read) and the byte offset.
"""

from __future__ import annotations

from ledger.core.errors import InvalidEncoding

__all__ = ["read_bytes", "read_varint"]


def read_varint(data: bytes | memoryview, position: int, where: str) -> tuple[int, int]:
    """Read a minimal unsigned protobuf varint of at most 64 bits at ``position``; returns
    ``(value, next_position)``."""
    value = 0
    shift = 0
    start = position
    while True:
        if position >= len(data):
            raise InvalidEncoding(f"{where}: truncated varint at offset {start}")
        byte = data[position]
        position += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            if byte == 0 and position - start > 1:
                raise InvalidEncoding(f"{where}: varint at offset {start} is not minimally encoded")
            if value >= 1 << 64:
                raise InvalidEncoding(f"{where}: varint at offset {start} exceeds 64 bits")
            return value, position
        shift += 7
        if shift >= 70:
            raise InvalidEncoding(f"{where}: varint at offset {start} is longer than 10 bytes")


def read_bytes(data: bytes | memoryview, position: int, where: str) -> tuple[bytes, int]:
    """Read a length-delimited field's body (a varint length, then that many bytes) at
    ``position``; returns ``(body, next_position)``."""
    length, position = read_varint(data, position, where)
    end = position + length
    if end > len(data):
        raise InvalidEncoding(
            f"{where}: length-delimited field at offset {position} says {length} bytes, only {len(data) - position} remain"
        )
    return bytes(data[position:end]), end
