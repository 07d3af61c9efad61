from __future__ import annotations

import pytest

from ledger.core import dagcbor
from ledger.core.cid import CID, DAG_CBOR, RAW
from ledger.core.record import encode_entry, entry_fields, node_to_json, sign_entry, verify_entry_signature
from ledger.election import load_election
from ledger.election.validation import validate_tally
from ledger.errors import InvalidEncoding, InvalidSignature
from tests.support.factories import signed_tally

ELECTION = load_election("th2566")


def node() -> dict[str, object]:
    return validate_tally(signed_tally(ELECTION), election=ELECTION, photo_exists=lambda _: True)


def test_worked_example() -> None:
    record = node()
    cid, block = encode_entry(record)
    assert len(block) == 519
    assert str(cid) == "bafyreiadcveuokiyjkcscbjl6qzaqvbmggxfglvg3r6dgkizzdyauovqa4"
    assert record["submitter"] == "0x1a642f0E3c3aF545E7AcBD38b07251B3990914F1"
    assert bytes(record["signature"]).hex().startswith("2c9f004b")  # type: ignore[arg-type]
    assert record["photos"] == {"tally_board": CID.of(RAW, b"board"), "form_5_18": CID.of(RAW, b"form")}


def test_photos_are_ipld_links() -> None:
    _, block = encode_entry(node())
    assert block.count(bytes.fromhex("d82a")) == 2  # tag 42 twice: pinning the record pins its photos
    decoded = dagcbor.decode(block)
    assert isinstance(decoded["photos"]["form_5_18"], CID)  # type: ignore[index]


def test_cid_is_identity_and_decoding_round_trips() -> None:
    record = node()
    cid, block = encode_entry(record)
    assert cid == CID.of(DAG_CBOR, block)
    assert dagcbor.decode(block) == record
    verify_entry_signature(dagcbor.decode(block))  # type: ignore[arg-type]


def test_any_change_breaks_the_signature() -> None:
    record = node()
    record["registered_voters"] = 550
    with pytest.raises(InvalidSignature):
        verify_entry_signature(record)


def test_json_view_uses_dag_json_links() -> None:
    view = node_to_json(node())
    assert view["photos"]["tally_board"] == {"/": str(CID.of(RAW, b"board"))}  # type: ignore[index]
    assert str(view["signature"]).startswith("0x")  # type: ignore[index]


def test_unknown_formats_are_refused() -> None:
    with pytest.raises(InvalidEncoding, match="unknown entry format"):
        entry_fields({"format": "other"})
    with pytest.raises(InvalidEncoding, match="lacks the field 'election'"):
        sign_entry({"format": "tally-record-v1"}, bytes(31) + b"\x01")
