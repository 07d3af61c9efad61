"""dag-pb (ledger/core/dagpb.py): round trips, and the strict decoder's refusals."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.core.cid import CID, DAG_PB, RAW
from ledger.core.dagpb import PBLink, PBNode, decode_pbnode, encode_pbnode, pbnode_links
from ledger.core.unixfs import CHUNK_SIZE, iter_file_blocks
from ledger.errors import InvalidEncoding


def test_pbnode_round_trip_and_absent_fields() -> None:
    link = PBLink(CID.of(RAW, b"x"), None, None)
    named = PBLink(CID.of(RAW, b"y"), "name", 7)
    for node in [PBNode(), PBNode((), b""), PBNode((), b"data"), PBNode((link,), None), PBNode((named, link), b"d")]:
        assert decode_pbnode(encode_pbnode(node)) == node


@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=200), chunk_size=st.integers(1, 20))
def test_every_internal_node_round_trips(data: bytes, chunk_size: int) -> None:
    for block in iter_file_blocks(data, chunk_size=chunk_size, max_links=3):
        if block.cid.codec == DAG_PB:
            assert encode_pbnode(decode_pbnode(block.data)) == block.data


def _root_block() -> bytes:
    return list(iter_file_blocks(bytes(CHUNK_SIZE + 1)))[-1].data


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda b: b + b"\x0a\x00", "second Data"),
        (lambda b: b + b"\x12\x00", "after Data"),
        (lambda b: b + b"\x1a\x00", "unexpected field 3"),
        (lambda b: b[:-1], "says 12 bytes"),
        (lambda b: b"\x12\x80\x00" + b[2:], "not minimally encoded"),
        (lambda b: b"\x12\xac", "truncated varint"),
        (lambda b: b"\x12\x02\x12\x00" + b, "no Hash"),
        (lambda b: b"\x12\x04\x12\x00\x0a\x00" + b, "out of order"),
        (lambda b: b"\x12\x03\x0a\x01\x01" + b, "not a valid CID"),
        (lambda b: b"\x12\x02\x20\x00" + b, "unexpected PBLink field 4"),
    ],
)
def test_decode_pbnode_refuses_malformed_blocks(mutate: Callable[[bytes], bytes], message: str) -> None:
    with pytest.raises(InvalidEncoding, match=message):
        decode_pbnode(mutate(_root_block()))


@settings(max_examples=300, deadline=None)
@given(position=st.integers(0, 103), bit=st.integers(0, 7))
def test_bit_flips_never_decode_to_the_same_node(position: int, bit: int) -> None:
    original = _root_block()
    flipped = bytearray(original)
    flipped[position] ^= 1 << bit
    try:
        node = decode_pbnode(bytes(flipped))
    except InvalidEncoding:
        return
    assert node != decode_pbnode(original)
    assert encode_pbnode(node) == bytes(flipped)


def test_pbnode_links_are_the_link_hashes_in_order() -> None:
    first, second = CID.of(RAW, b"x"), CID.of(RAW, b"y")
    assert pbnode_links(encode_pbnode(PBNode((PBLink(first), PBLink(second, None, 3)), b""))) == [first, second]
