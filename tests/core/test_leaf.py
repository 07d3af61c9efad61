"""tally-leaf-v1: the hand-rolled abi.encode and the double leaf hash (ledger/core/leaf.py).

The independent references are eth_abi.encode and pycryptodome's keccak; the committed
vectors and the JS library are checked in tests/core/test_merkle.py.
"""

from __future__ import annotations

import eth_abi
import pytest
from Crypto.Hash import keccak as pycryptodome_keccak
from eth_utils import to_checksum_address
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.core.hashing import keccak256
from ledger.core.leaf import (
    LEAF_ENCODING,
    LEAF_FIELDS,
    LEAF_FORMAT,
    encode_leaf,
    leaf_hash,
    leaf_hashes,
    leaf_values,
)
from ledger.errors import InvalidEncoding

EXAMPLE_CID = "bafyreieeyzh7lfajoryuslwgu7gi6ppylqntuunvwsn77ob4wdfl4cnp4a"
EXAMPLE_SIGNER = "0x52908400098527886E0F7030069857D2E4169EE7"


def reference_keccak(data: bytes) -> bytes:
    return pycryptodome_keccak.new(digest_bits=256, data=data).digest()


def reference_leaf_hash(values: tuple[str, str, str]) -> bytes:
    return reference_keccak(reference_keccak(eth_abi.encode(list(LEAF_ENCODING), list(values))))


# --- strategies ------------------------------------------------------------------------

thai = st.text(alphabet=st.characters(min_codepoint=0x0E00, max_codepoint=0x0E7F), max_size=40)
ascii_text = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=80)
word_edges = st.sampled_from(["", "a", "x" * 31, "x" * 32, "y" * 33, "z" * 64, "w" * 65, "ก" * 10, "ก" * 11, "🗳" * 8])
texts = st.one_of(st.text(max_size=70), thai, ascii_text, word_edges)
address_bytes = st.binary(min_size=20, max_size=20)
addresses = st.one_of(
    address_bytes.map(lambda raw: "0x" + raw.hex()),
    address_bytes.map(lambda raw: to_checksum_address("0x" + raw.hex())),
    address_bytes.map(lambda raw: "0x" + raw.hex().upper()),
)
values_strategy = st.tuples(texts, texts, addresses)


# --- the worked example in the module docstring -----------------------------------------


def test_constants() -> None:
    assert LEAF_FORMAT == "tally-leaf-v1"
    assert LEAF_ENCODING == ("string", "string", "address")
    assert LEAF_FIELDS == ("record_cid", "polling_unit", "signer")


def test_worked_example() -> None:
    values = leaf_values(EXAMPLE_CID, "BKK_1-0042", EXAMPLE_SIGNER.lower())
    assert values == (EXAMPLE_CID, "BKK_1-0042", EXAMPLE_SIGNER)
    encoded = encode_leaf(values)
    assert [encoded[i : i + 32].hex() for i in range(0, len(encoded), 32)] == [
        "0000000000000000000000000000000000000000000000000000000000000060",
        "00000000000000000000000000000000000000000000000000000000000000c0",
        "00000000000000000000000052908400098527886e0f7030069857d2e4169ee7",
        "000000000000000000000000000000000000000000000000000000000000003b",
        "626166797265696565797a68376c66616a6f727975736c776775376769367070",
        "796c716e7475756e7677736e37376f62347764666c34636e7034610000000000",
        "000000000000000000000000000000000000000000000000000000000000000a",
        "424b4b5f312d3030343200000000000000000000000000000000000000000000",
    ]
    assert keccak256(encoded).hex() == "b3dd63ed168aea748c4f77486cb7b10613dd45892546156092be5cc7f7b1359c"
    assert leaf_hash(values).hex() == "76c8187ed9f2521626bd8286b29926a1f65b441379b06d786ae1e3377e09f1c8"


def test_utf8_lengths_count_bytes() -> None:
    encoded = encode_leaf(("กทม", "", EXAMPLE_SIGNER))
    assert int.from_bytes(encoded[96:128], "big") == 9  # 3 Thai characters, 3 bytes each
    assert int.from_bytes(encoded[32:64], "big") == 96 + 32 + 32  # b's tail after one data word
    assert encoded[160:192] == bytes(32)  # empty b: its length word is 0 and nothing follows
    assert len(encoded) == 192


# --- against eth_abi and an independent keccak -------------------------------------------


@settings(max_examples=300, deadline=None)
@given(values_strategy)
def test_encode_leaf_equals_eth_abi(values: tuple[str, str, str]) -> None:
    assert encode_leaf(values) == eth_abi.encode(list(LEAF_ENCODING), list(values))


@settings(max_examples=200, deadline=None)
@given(values_strategy)
def test_leaf_hash_is_double_keccak_of_abi_encode(values: tuple[str, str, str]) -> None:
    assert leaf_hash(values) == reference_leaf_hash(values)
    assert leaf_hash(list(values)) == leaf_hash(values)  # a value read back from JSON


@settings(max_examples=50, deadline=None)
@given(st.lists(st.one_of(values_strategy, values_strategy.map(list)), max_size=30))
def test_leaf_hashes_equals_leaf_hash_one_by_one(values: list[tuple[str, str, str]]) -> None:
    assert leaf_hashes(values) == [leaf_hash(value) for value in values]
    assert leaf_hashes(iter(values)) == [leaf_hash(value) for value in values]


def test_leaf_hashes_slow_path_for_long_strings_and_subclasses() -> None:
    class Text(str):
        pass

    values = [
        ("b" * 2000, "BKK_1-0042", EXAMPLE_SIGNER),  # lengths past the word table
        (EXAMPLE_CID, "ก" * 700, EXAMPLE_SIGNER),
        (Text(EXAMPLE_CID), Text("BKK_1-0042"), Text(EXAMPLE_SIGNER)),
    ]
    assert leaf_hashes(values) == [reference_leaf_hash((str(a), str(b), str(c))) for a, b, c in values]


@settings(max_examples=200, deadline=None)
@given(address_bytes)
def test_leaf_values_checksums_the_signer_like_eth_utils(raw: bytes) -> None:
    lower = "0x" + raw.hex()
    expected = to_checksum_address(lower)
    assert leaf_values("", "", lower)[2] == expected
    assert leaf_values("", "", "0x" + raw.hex().upper())[2] == expected


def test_address_case_does_not_change_the_hash() -> None:
    lower = (EXAMPLE_CID, "BKK_1-0042", EXAMPLE_SIGNER.lower())
    upper = (EXAMPLE_CID, "BKK_1-0042", "0x" + EXAMPLE_SIGNER[2:].upper())
    checksummed = (EXAMPLE_CID, "BKK_1-0042", EXAMPLE_SIGNER)
    assert leaf_hash(lower) == leaf_hash(upper) == leaf_hash(checksummed)


# --- input checks, with their exact messages ---------------------------------------------

BAD_SIGNERS = [
    "0x1234",
    "52908400098527886E0F7030069857D2E4169EE7",
    "0X52908400098527886E0F7030069857D2E4169EE7",
    "0x52908400098527886E0F7030069857D2E4169EZ7",
    "0x52908400098527886E0F7030069857D2E4169E 7",
    "0x52908400098527886E0F7030069857D2E4169EE7aa",
    "0x5290840009852788๖E0F7030069857D2E4169EE7",  # a Thai digit is not hex
]


@pytest.mark.parametrize("signer", BAD_SIGNERS)
def test_signer_must_be_20_byte_hex(signer: str) -> None:
    message = f"signer must be a 20-byte hex address, '0x' followed by 40 hex digits, got {signer!r}"
    with pytest.raises(InvalidEncoding) as raised:
        leaf_values(EXAMPLE_CID, "BKK_1-0042", signer)
    assert str(raised.value) == message
    with pytest.raises(InvalidEncoding) as raised:
        leaf_hash((EXAMPLE_CID, "BKK_1-0042", signer))
    assert str(raised.value) == message
    with pytest.raises(InvalidEncoding) as raised:
        leaf_hashes([(EXAMPLE_CID, "BKK_1-0042", EXAMPLE_SIGNER), (EXAMPLE_CID, "BKK_1-0042", signer)])
    assert str(raised.value) == "values[1]." + message


def test_signer_must_be_a_str() -> None:
    raw = bytes.fromhex(EXAMPLE_SIGNER[2:])
    with pytest.raises(InvalidEncoding, match=r"^signer must be a str holding a 0x-prefixed address, got bytes$"):
        leaf_values(EXAMPLE_CID, "BKK_1-0042", raw)  # type: ignore[arg-type]
    with pytest.raises(InvalidEncoding, match=r"^values\[0\]\.signer must be a str holding a 0x-prefixed address, got int$"):
        leaf_hashes([(EXAMPLE_CID, "BKK_1-0042", 7)])


def test_leaf_values_refuses_a_wrong_checksum() -> None:
    wrong = "0x52908400098527886E0F7030069857D2E4169Ee7"
    with pytest.raises(InvalidEncoding) as raised:
        leaf_values(EXAMPLE_CID, "BKK_1-0042", wrong)
    assert str(raised.value) == (f"signer {wrong} has a wrong EIP-55 checksum; expected {EXAMPLE_SIGNER} (or all-lowercase hex)")
    assert leaf_values(EXAMPLE_CID, "BKK_1-0042", "0x" + EXAMPLE_SIGNER[2:].upper())[2] == EXAMPLE_SIGNER


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ((b"bafy", "BKK_1-0042", EXAMPLE_SIGNER), "record_cid must be a str, got bytes"),
        ((EXAMPLE_CID, None, EXAMPLE_SIGNER), "polling_unit must be a str, got NoneType"),
        ((EXAMPLE_CID, 42, EXAMPLE_SIGNER), "polling_unit must be a str, got int"),
        (
            ("bafy\udc80", "BKK_1-0042", EXAMPLE_SIGNER),
            "record_cid must be valid Unicode text; it holds a lone surrogate at character 4",
        ),
    ],
)
def test_strings_must_be_str(values: tuple[object, object, object], message: str) -> None:
    with pytest.raises(InvalidEncoding) as raised:
        leaf_values(*values)  # type: ignore[arg-type]
    assert str(raised.value) == message
    with pytest.raises(InvalidEncoding) as raised:
        leaf_hash(values)
    assert str(raised.value) == message
    with pytest.raises(InvalidEncoding) as raised:
        leaf_hashes([values])
    assert str(raised.value) == "values[0]." + message


@pytest.mark.parametrize(
    ("values", "got"),
    [
        ((EXAMPLE_CID, "BKK_1-0042"), "tuple of length 2"),
        ([EXAMPLE_CID, "BKK_1-0042", EXAMPLE_SIGNER, "extra"], "list of length 4"),
        ("abc", "str"),
        ({"record_cid": EXAMPLE_CID}, "dict"),
    ],
)
def test_value_must_be_a_3_tuple(values: object, got: str) -> None:
    with pytest.raises(InvalidEncoding) as raised:
        leaf_hash(values)  # type: ignore[arg-type]
    assert str(raised.value) == f"leaf value must be a 3-item tuple (record_cid, polling_unit, signer), got {got}"
    with pytest.raises(InvalidEncoding) as raised:
        leaf_hashes([values])  # type: ignore[list-item]
    assert str(raised.value) == f"values[0] must be a 3-item tuple (record_cid, polling_unit, signer), got {got}"


def test_invalid_encoding_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        leaf_hash(("", "", "0x"))


def test_well_formed_batches_take_the_column_path() -> None:
    """A guard against a silent slowdown: plain values must not fall to the per-value path."""
    from ledger.core.leaf import _leaf_hashes_by_column

    values = [leaf_values(EXAMPLE_CID, f"BKK_1-{n:04d}", EXAMPLE_SIGNER) for n in range(50)]
    values += [[EXAMPLE_CID, "หน่วย 7", EXAMPLE_SIGNER.lower()], (EXAMPLE_CID, "", "0x" + EXAMPLE_SIGNER[2:].upper())]
    assert _leaf_hashes_by_column(values) == [reference_leaf_hash(tuple(value)) for value in values]
    assert _leaf_hashes_by_column([]) == []
    assert _leaf_hashes_by_column([(EXAMPLE_CID, "x" * 1024, EXAMPLE_SIGNER)]) is None
    assert leaf_hashes([]) == []
