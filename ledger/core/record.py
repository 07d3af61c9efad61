"""Ledger entries as IPLD nodes: the tally record, format ``tally-record-v1``.

CONSENSUS-CRITICAL. An entry's identity is the CID of its canonical DAG-CBOR encoding
(``ledger.core.dagcbor``); photo CIDs are IPLD links (tag 42), so pinning a record pins
its photos. Never change the meaning of a field of an existing format; add a new format.

A ``tally-record-v1`` node is a map with exactly these keys (DAG-CBOR sorts them)::

    format             "tally-record-v1"
    election           election id, e.g. "th2566"
    polling_unit       unit id, e.g. "BKK_1-0001"
    submission_id      client-chosen id, 8-64 chars of [A-Za-z0-9_-]; a retry reuses it
    submitted_at       UTC time "YYYY-MM-DDTHH:MM:SSZ" (optionally with .ffffff)
    submitter          EIP-55 address of the volunteer's key
    registered_voters  registered voters of the unit, as read from the form
    constituency       {"ballots_cast": int, "votes": {"<candidate no>": int}, "invalid": int, "no_vote": int}
    party_list         {"ballots_cast": int, "votes": {"<party no>": int}, "invalid": int, "no_vote": int}
    photos             {"tally_board": CID, "form_5_18": CID, optional "form_5_18_party_list": CID}
    signature          65 bytes: EIP-712 signature (see ``ledger.core.signing``)
    form_inconsistent  optional, only ever ``true``: the signed form itself does not add up
                       (votes + invalid + no_vote ≠ ballots_cast) and is reported as written;
                       such a record always goes to the constituency head
    corrects           optional list of CID links: the reports of this unit that this record
                       corrects (a head's tally read from the photos; see ledger.core.decision)

A receipt (``tally-receipt-v1``) is signed the same way by the ledger's own key: its
``subject`` is the record CID, ``entryId`` the submission id, ``createdAt`` the time of
receipt and ``signer`` the ledger's address (field ``ledger``). It also carries the
record's leaf hash and the deadline by which its batch will be sealed.

Vote maps are keyed by the ballot number in decimal without leading zeros. Every count
is a non-negative integer. The signature covers the node without ``signature``.

Worked example (``tests/core/test_record.py::test_worked_example`` keeps it true). With the
private key 0x0101…01 (address 0x1a642f0E3c3aF545E7AcBD38b07251B3990914F1)::

    {"format": "tally-record-v1", "election": "th2566", "polling_unit": "BKK_1-0001",
     "submission_id": "org7-vol42-0001", "submitted_at": "2023-05-14T10:31:07Z",
     "submitter": "0x1a642f0E3c3aF545E7AcBD38b07251B3990914F1", "registered_voters": 549,
     "constituency": {"ballots_cast": 400, "votes": {"1": 270, "2": 100}, "invalid": 20, "no_vote": 10},
     "party_list":   {"ballots_cast": 400, "votes": {"1": 260, "2": 100}, "invalid": 25, "no_vote": 15},
     "photos": {"tally_board": CID.of(RAW, b"board"), "form_5_18": CID.of(RAW, b"form")},
     "signature": 0x2c9f004b…5e2f081c}

    encodes to 519 bytes of DAG-CBOR, and its CID is
    bafyreiadcveuokiyjkcscbjl6qzaqvbmggxfglvg3r6dgkizzdyauovqa4
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

from ledger.core import dagcbor
from ledger.core.authority import AUTHORITY_FORMAT
from ledger.core.cid import CID, DAG_CBOR
from ledger.core.errors import InvalidEncoding
from ledger.core.signing import EntryFields, check_signer, entry_digest, sign_digest

__all__ = [
    "BALLOTS",
    "RECEIPT_FORMAT",
    "OPTIONAL_PHOTOS",
    "REQUIRED_PHOTOS",
    "TALLY_FORMAT",
    "content_digest",
    "encode_entry",
    "entry_fields",
    "node_to_json",
    "sign_entry",
    "unsigned",
    "verify_entry_signature",
]

TALLY_FORMAT = "tally-record-v1"
RECEIPT_FORMAT = "tally-receipt-v1"
BALLOTS = ("constituency", "party_list")
REQUIRED_PHOTOS = ("tally_board", "form_5_18")
OPTIONAL_PHOTOS = ("form_5_18_party_list",)


def unsigned(node: Mapping[str, object]) -> dict[str, object]:
    """The node without its signature: what the signature covers."""
    return {key: value for key, value in node.items() if key != "signature"}


def content_digest(node: Mapping[str, object]) -> bytes:
    """sha2-256 of the canonical encoding of the unsigned node."""
    return hashlib.sha256(dagcbor.encode(unsigned(node))).digest()


def entry_fields(node: Mapping[str, object]) -> EntryFields:
    """Map an entry's own fields onto the EIP-712 ``LedgerEntry`` message."""
    entry_format = node.get("format")
    if entry_format == TALLY_FORMAT:
        subject, entry_id, created_at, signer = "polling_unit", "submission_id", "submitted_at", "submitter"
    elif isinstance(entry_format, str) and entry_format.startswith("tally-decision-"):
        subject, entry_id, created_at, signer = "subject", "decision_id", "decided_at", "decider"
    elif entry_format == RECEIPT_FORMAT:
        subject, entry_id, created_at, signer = "record_cid", "submission_id", "received_at", "ledger"
    elif entry_format == AUTHORITY_FORMAT:
        subject, entry_id, created_at, signer = "subject", "grant_id", "granted_at", "signer"
    else:
        raise InvalidEncoding(f"unknown entry format {entry_format!r}")
    try:
        return EntryFields(
            format=str(entry_format),
            election=str(node["election"]),
            subject=str(node[subject]),
            entry_id=str(node[entry_id]),
            created_at=str(node[created_at]),
            signer=str(node[signer]),
            content_digest=content_digest(node),
        )
    except KeyError as exc:
        raise InvalidEncoding(f"{entry_format} entry lacks the field {exc.args[0]!r}") from None


def sign_entry(node: Mapping[str, object], private_key: bytes) -> dict[str, object]:
    """Return a copy of ``node`` with its EIP-712 ``signature``."""
    signed = unsigned(node)
    signed["signature"] = sign_digest(entry_digest(entry_fields(node)), private_key)
    return signed


def verify_entry_signature(node: Mapping[str, object]) -> None:
    """Raise ``InvalidSignature`` unless the node is signed by its stated signer."""
    fields = entry_fields(node)
    signature = node.get("signature")
    check_signer(entry_digest(fields), signature if isinstance(signature, bytes) else b"", fields.signer)


def encode_entry(node: Mapping[str, object]) -> tuple[CID, bytes]:
    """The canonical block of an entry and its CID (dag-cbor, sha2-256)."""
    block = dagcbor.encode(node)
    return CID.of(DAG_CBOR, block), block


def node_to_json(value: object) -> object:
    """A JSON view of a node: CIDs as ``{"/": "<cid>"}`` (DAG-JSON style), bytes as 0x hex."""
    if isinstance(value, CID):
        return {"/": str(value)}
    if isinstance(value, bytes):
        return "0x" + value.hex()
    if isinstance(value, Mapping):
        return {key: node_to_json(item) for key, item in value.items()}
    if isinstance(value, list):
        return [node_to_json(item) for item in value]
    return value
