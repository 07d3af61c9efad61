from __future__ import annotations

import pytest
from eth_account import Account
from eth_account.messages import encode_typed_data
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.core.signing import (
    EntryFields,
    address_from_private_key,
    check_signer,
    entry_digest,
    recover_signer,
    sign_digest,
    to_checksum_address,
)
from ledger.errors import InvalidSignature

KEY = bytes.fromhex("01" * 32)
ADDRESS = Account.from_key(KEY).address

texts = st.text(max_size=30)


@settings(max_examples=50, deadline=None)
@given(texts, texts, texts, texts, texts, st.binary(min_size=32, max_size=32))
def test_digest_and_signature_match_eth_account(
    fmt: str, election: str, subject: str, entry_id: str, created: str, digest: bytes
) -> None:
    fields = EntryFields(fmt, election, subject, entry_id, created, ADDRESS, digest)
    message = encode_typed_data(full_message=fields.typed_data())
    signed = Account.sign_message(message, KEY)
    ours = sign_digest(entry_digest(fields), KEY)
    assert ours == signed.signature
    assert recover_signer(entry_digest(fields), ours) == ADDRESS


def test_address_from_private_key() -> None:
    assert address_from_private_key(KEY) == ADDRESS


def test_wrong_signer_is_named() -> None:
    fields = EntryFields("f", "e", "s", "id", "t", ADDRESS, bytes(32))
    signature = sign_digest(entry_digest(fields), bytes.fromhex("02" * 32))
    with pytest.raises(InvalidSignature, match=f"not by the stated signer {ADDRESS}"):
        check_signer(entry_digest(fields), signature, ADDRESS)


def test_high_s_and_bad_v_are_refused() -> None:
    digest = bytes(range(32))
    signature = sign_digest(digest, KEY)
    n = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
    high_s = signature[:32] + (n - int.from_bytes(signature[32:64], "big")).to_bytes(32, "big") + signature[64:]
    with pytest.raises(InvalidSignature, match="lower half"):
        recover_signer(digest, high_s)
    with pytest.raises(InvalidSignature, match="v must be 27 or 28"):
        recover_signer(digest, signature[:64] + b"\x00")
    with pytest.raises(InvalidSignature, match="65 bytes"):
        recover_signer(digest, signature[:64])


@pytest.mark.parametrize("bad", ["", "0x12", "0x" + "g" * 40, 12])
def test_bad_addresses_are_refused(bad: object) -> None:
    with pytest.raises(InvalidSignature, match="not an address"):
        to_checksum_address(bad)  # type: ignore[arg-type]
