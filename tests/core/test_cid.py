from __future__ import annotations

import hashlib

import multiformats
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.core.cid import CID, DAG_CBOR, DAG_PB, RAW, decode_varint, encode_varint
from ledger.errors import InvalidCID

EMPTY_RAW = "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"


def test_empty_raw_block_has_the_well_known_cid() -> None:
    assert str(CID.of(RAW, b"")) == EMPTY_RAW


def test_dag_cbor_prefix_is_bafyrei() -> None:
    assert str(CID.of(DAG_CBOR, b"\xa0")).startswith("bafyrei")


@given(st.binary(max_size=2000), st.sampled_from([RAW, DAG_CBOR, DAG_PB]))
def test_matches_the_multiformats_package(block: bytes, codec: int) -> None:
    ours = CID.of(codec, block)
    theirs = multiformats.CID("base32", 1, codec, multiformats.multihash.digest(block, "sha2-256"))
    assert str(ours) == str(theirs)
    assert ours.bytes == bytes(theirs)
    assert CID.parse(str(ours)) == ours
    assert CID.from_bytes(ours.bytes) == ours
    assert ours.digest == hashlib.sha256(block).digest()
    assert ours.verify_block(block)


@given(st.integers(min_value=0, max_value=2**63 - 1))
def test_varint_round_trips(value: int) -> None:
    encoded = encode_varint(value)
    assert decode_varint(encoded) == (value, len(encoded))


def test_cidv0_is_read() -> None:
    v0 = "QmbFMke1KXqnYyBBWxB74N4c5SBnJMVAiMNRcGu6x1AwQH"
    cid = CID.parse(v0)
    assert cid.version == 0 and cid.codec == DAG_PB
    assert str(cid) == v0


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "non-empty"),
        ("zb2rhe5P4gXftAwvA4eXQ5HJwsER2owDyS9sKaQRRVQPn93bA", "only base32"),
        (EMPTY_RAW.upper(), "only base32"),
        ("B" + EMPTY_RAW[1:].upper(), "only base32"),
        ("b" + EMPTY_RAW[1:].upper(), "lowercase"),
        (EMPTY_RAW[:-3], "digest bytes"),
        (EMPTY_RAW + "aa", "trailing"),
        ("b!!!!", "base32"),
    ],
)
def test_malformed_text_is_refused_with_a_reason(text: str, reason: str) -> None:
    with pytest.raises(InvalidCID, match=reason):
        CID.parse(text)


def test_non_minimal_varint_is_refused() -> None:
    with pytest.raises(InvalidCID, match="minimally"):
        decode_varint(b"\x81\x00")
