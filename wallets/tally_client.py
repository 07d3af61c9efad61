"""Client-side helpers for volunteers: prepare and sign a tally exactly as the ledger checks it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ledger.core.record import entry_fields, sign_entry
from ledger.core.signing import EntryFields, address_from_private_key
from ledger.election import Election
from ledger.election.validation import validate_tally

__all__ = ["sign_decision", "sign_tally", "typed_data_for"]


def _canonical(submission: Mapping[str, Any], election: Election) -> dict[str, object]:
    return validate_tally(submission, election=election, photo_exists=lambda _cid: True, signed=False)


def typed_data_for(submission: Mapping[str, Any], election: Election) -> dict[str, object]:
    """The EIP-712 message a wallet signs for this tally (``eth_signTypedData_v4``)."""
    fields: EntryFields = entry_fields(_canonical(submission, election))
    return fields.typed_data()


def sign_tally(submission: Mapping[str, Any], private_key: bytes, election: Election) -> dict[str, Any]:
    """Return ``submission`` with ``submitter`` set to the key's address and its signature added.

    Raises ``InvalidTally`` when the tally itself is wrong, before anything is signed.
    """
    prepared = dict(submission)
    prepared["submitter"] = address_from_private_key(private_key)
    prepared.pop("signature", None)
    signed = sign_entry(_canonical(prepared, election), private_key)
    prepared["signature"] = "0x" + bytes(signed["signature"]).hex()  # type: ignore[arg-type]
    return prepared


def sign_decision(decision: Mapping[str, Any], private_key: bytes, election: Election) -> dict[str, Any]:
    """Return ``decision`` with ``decider`` set to the key's address and its signature added."""
    from ledger.election.validation import validate_decision

    prepared = dict(decision)
    prepared["decider"] = address_from_private_key(private_key)
    prepared.pop("signature", None)
    signed = sign_entry(validate_decision(prepared, election=election, signed=False), private_key)
    prepared["signature"] = "0x" + bytes(signed["signature"]).hex()  # type: ignore[arg-type]
    return prepared
