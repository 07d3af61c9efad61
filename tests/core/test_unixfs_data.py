"""The UnixFS Data message (ledger/core/unixfs_data.py)."""

from __future__ import annotations

import pytest

from ledger.core.unixfs_data import UnixFSData, UnixFSType, decode_unixfs_data, encode_unixfs_file_data
from ledger.errors import InvalidEncoding


def test_unixfs_data_decoding() -> None:
    assert decode_unixfs_data(encode_unixfs_file_data(5, [2, 3])) == UnixFSData(2, None, 5, (2, 3))
    # packed blocksizes, inline data, unknown fields (mode=7, fixed64, fixed32) are accepted
    packed = b"\x08\x02\x12\x02hi\x18\x05\x22\x02\x01\x02\x38\xa4\x03\x49" + bytes(8) + b"\x4d" + bytes(4)
    assert decode_unixfs_data(packed) == UnixFSData(2, b"hi", 5, (1, 2))
    with pytest.raises(InvalidEncoding, match="Type"):
        decode_unixfs_data(b"\x18\x05")
    with pytest.raises(InvalidEncoding, match="truncated"):
        decode_unixfs_data(b"\x08\x02\x49\x00")


def test_type_names() -> None:
    assert UnixFSData(UnixFSType.FILE).type_name == "File"
    assert UnixFSData(9).type_name == "unknown type 9"
