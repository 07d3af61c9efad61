"""The one keccak256 and EIP-55 checksum (ledger/core/hashing.py), against published vectors
and against independent implementations (pycryptodome's keccak, eth_utils' checksum)."""

from __future__ import annotations

import pytest
from Crypto.Hash import keccak as pycryptodome_keccak
from eth_utils import to_checksum_address
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.core import hashing
from ledger.core.hashing import checksum_address, keccak256
from ledger.core.signing import to_checksum_address as signing_checksum_address
from ledger.errors import InvalidEncoding, InvalidSignature

# The test cases of EIP-55 itself (https://eips.ethereum.org/EIPS/eip-55).
EIP55_VECTORS = [
    # all caps
    "0x52908400098527886E0F7030069857D2E4169EE7",
    "0x8617E340B3D01FA5F11F306F4090FD50E238070D",
    # all lower
    "0xde709f2102306220921060314715629080e2fb77",
    "0x27b1fdb04752bbc536007a920d24acb045561c26",
    # normal
    "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
    "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359",
    "0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB",
    "0xD1220A0cf47c7B9Be7A2E6BA89F429762e7b9aDb",
]


def test_public_names() -> None:
    assert hashing.__all__ == ["address_bytes", "checksum_address", "keccak256"]


def test_keccak256_is_ethereum_keccak_not_sha3() -> None:
    assert keccak256(b"").hex() == "c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470"
    assert keccak256(b"ANCHORER_ROLE").hex() == pycryptodome_keccak.new(digest_bits=256, data=b"ANCHORER_ROLE").hexdigest()


def test_keccak256_takes_any_bytes_like() -> None:
    assert keccak256(bytearray(b"abc")) == keccak256(memoryview(b"abc")) == keccak256(b"abc")


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_keccak256_equals_pycryptodome(data: bytes) -> None:
    assert keccak256(data) == pycryptodome_keccak.new(digest_bits=256, data=data).digest()


@pytest.mark.parametrize("address", EIP55_VECTORS)
def test_eip55_vectors(address: str) -> None:
    assert checksum_address(address.lower()) == address
    assert checksum_address("0x" + address[2:].upper()) == address
    assert checksum_address(address) == address


@settings(max_examples=300, deadline=None)
@given(st.binary(min_size=20, max_size=20))
def test_checksum_address_equals_eth_utils(raw: bytes) -> None:
    lower = "0x" + raw.hex()
    expected = to_checksum_address(lower)
    assert checksum_address(lower) == expected
    assert checksum_address("0x" + raw.hex().upper()) == expected
    assert checksum_address(expected) == expected
    assert signing_checksum_address(lower) == expected
    assert signing_checksum_address("0X" + raw.hex()) == expected


def test_checksum_address_of_a_str_subclass_is_a_plain_str() -> None:
    class Text(str):
        def __str__(self) -> str:
            return "not an address"

    result = checksum_address(Text(EIP55_VECTORS[4].lower()))
    assert result == EIP55_VECTORS[4] and type(result) is str


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "0x12",
        "0x" + "g" * 40,
        "0X" + "a" * 40,  # only a lowercase 0x prefix
        "a" * 40,  # no prefix
        "0x" + "a" * 38 + " a",  # fromhex would skip the space
        "0x" + "a" * 42,
        "0x" + "é" * 40,
    ],
)
def test_checksum_address_refuses_malformed_addresses(bad: str) -> None:
    with pytest.raises(InvalidEncoding) as raised:
        checksum_address(bad)
    assert str(raised.value) == f"address must be a 20-byte hex address, '0x' followed by 40 hex digits, got {bad!r}"


def test_checksum_address_refuses_a_non_str() -> None:
    with pytest.raises(InvalidEncoding) as raised:
        checksum_address(b"\x00" * 20)  # type: ignore[arg-type]
    assert str(raised.value) == "address must be a str holding a 0x-prefixed address, got bytes"


def test_signing_keeps_its_own_error() -> None:
    with pytest.raises(InvalidSignature) as raised:
        signing_checksum_address("0x" + "g" * 40)
    assert str(raised.value) == f"{'0x' + 'g' * 40!r} is not an address: it has non-hex characters"
