"""The protobuf wire reader (ledger/core/protobuf.py) that dag-pb and UnixFS Data share."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.core.cid import encode_varint
from ledger.core.errors import InvalidEncoding
from ledger.core.protobuf import read_bytes, read_varint


@given(st.integers(0, (1 << 64) - 1), st.binary(max_size=4))
def test_read_varint_reads_what_encode_varint_writes(value: int, after: bytes) -> None:
    encoded = b"\xff" + encode_varint(value) + after
    assert read_varint(encoded, 1, "test") == (value, len(encoded) - len(after))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "test: truncated varint at offset 0"),
        (b"\x80", "test: truncated varint at offset 0"),
        (b"\x80\x00", "test: varint at offset 0 is not minimally encoded"),
        (encode_varint(1 << 64), "test: varint at offset 0 exceeds 64 bits"),
        (b"\xff" * 10 + b"\x01", "test: varint at offset 0 is longer than 10 bytes"),
    ],
)
def test_read_varint_refusals(data: bytes, message: str) -> None:
    with pytest.raises(InvalidEncoding) as raised:
        read_varint(data, 0, "test")
    assert str(raised.value) == message


def test_read_bytes() -> None:
    assert read_bytes(memoryview(b"\x03abcd"), 0, "test") == (b"abc", 4)
    with pytest.raises(InvalidEncoding) as raised:
        read_bytes(b"\x05abc", 0, "test")
    assert str(raised.value) == "test: length-delimited field at offset 1 says 5 bytes, only 3 remain"
