from __future__ import annotations

import dag_cbor
import multiformats
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.core import dagcbor
from ledger.core.cid import CID, DAG_CBOR, RAW
from ledger.errors import InvalidEncoding

cids = st.builds(lambda codec, data: CID.of(codec, data), st.sampled_from([RAW, DAG_CBOR]), st.binary(max_size=40))
scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**64), max_value=2**64 - 1)
    | st.text(max_size=40)
    | st.binary(max_size=40)
    | cids
)
values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5),
    max_leaves=30,
)


def to_reference(value: object) -> object:
    """The same value in the shapes the independent ``dag-cbor`` package expects."""
    if isinstance(value, CID):
        return multiformats.CID.decode(str(value))
    if isinstance(value, dict):
        return {k: to_reference(v) for k, v in value.items()}
    if isinstance(value, list):
        return [to_reference(v) for v in value]
    return value


@settings(max_examples=300)
@given(values)
def test_encoding_equals_the_independent_dag_cbor_package(value: object) -> None:
    ours = dagcbor.encode(value)
    assert ours == dag_cbor.encode(to_reference(value))
    assert dagcbor.decode(ours) == value
    assert dagcbor.encode(dagcbor.decode(ours)) == ours


def test_worked_example_from_the_docstring() -> None:
    assert dagcbor.encode({"b": 1, "aa": [True, None]}).hex() == "a261620162616182f5f6"


def test_keys_sort_by_length_then_bytes() -> None:
    encoded = dagcbor.encode({"from": 1, "to": 2, "aa": 3})
    assert encoded.index(b"aa") < encoded.index(b"to") < encoded.index(b"from")


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (bytes.fromhex("1817"), "shortest form"),  # 23 written with one extra byte
        (bytes.fromhex("a2616201616101"), "canonical order"),  # {"b":1,"a":1}
        (bytes.fromhex("a2616101616102"), "canonical order"),  # duplicate key
        (bytes.fromhex("9f01ff"), "indefinite"),
        (bytes.fromhex("c11a00000000"), "only tag 42"),
        (bytes.fromhex("fb3ff0000000000000"), "float"),
        (bytes.fromhex("0101"), "trailing"),
        (bytes.fromhex("62ff"), "truncated"),
        (bytes.fromhex("a1010101"), "not a text string"),
        (bytes.fromhex("d82a4401551220"), "0x00"),
    ],
)
def test_non_canonical_input_is_refused(data: bytes, reason: str) -> None:
    with pytest.raises(InvalidEncoding, match=reason):
        dagcbor.decode(data)


def test_floats_and_odd_types_are_refused() -> None:
    with pytest.raises(InvalidEncoding, match="floats"):
        dagcbor.encode({"x": 1.5})
    with pytest.raises(InvalidEncoding, match="map keys"):
        dagcbor.encode({1: 2})
    with pytest.raises(InvalidEncoding, match="64-bit"):
        dagcbor.encode(2**64)
