from __future__ import annotations

import copy
from typing import Any

import pytest

from ledger.core.cid import CID
from ledger.election import load_election
from ledger.election.validation import validate_tally
from ledger.errors import InvalidTally
from tests.support.factories import OTHER_KEY, signed_tally
from wallets.tally_client import sign_tally

ELECTION = load_election("th2566")


def check(submission: dict[str, Any], *, stored: bool = True) -> dict[str, object]:
    return validate_tally(submission, election=ELECTION, photo_exists=lambda _cid: stored)


def errors_of(submission: dict[str, Any], **kwargs: Any) -> dict[str, str]:
    with pytest.raises(InvalidTally) as caught:
        check(submission, **kwargs)
    return {".".join(map(str, e.path)): e.message for e in caught.value.errors}


def test_a_good_tally_becomes_a_canonical_node() -> None:
    node = check(signed_tally(ELECTION))
    assert node["format"] == "tally-record-v1"
    assert node["polling_unit"] == "BKK_1-0001"
    assert isinstance(node["photos"]["tally_board"], CID)  # type: ignore[index]
    assert isinstance(node["signature"], bytes)


def resign(submission: dict[str, Any]) -> dict[str, Any]:
    return sign_tally(submission, bytes.fromhex("01" * 32), ELECTION)


def test_unknown_unit_candidate_and_party_are_named() -> None:
    bad = signed_tally(ELECTION)
    bad["polling_unit"] = "BKK_1-9999"
    assert "units 0001 to" in errors_of(bad)["polling_unit"]
    bad = signed_tally(ELECTION)
    bad["constituency"]["votes"]["99"] = 0
    assert "no candidate number 99" in errors_of(bad)["constituency.votes.99"]
    bad = signed_tally(ELECTION)
    bad["party_list"]["votes"]["1000"] = 0
    assert "no party number 1000" in errors_of(bad)["party_list.votes.1000"]
    bad = signed_tally(ELECTION)
    bad["polling_unit"] = "XXX_1-0001"
    assert "no constituency 'XXX_1'" in errors_of(bad)["polling_unit"]


@pytest.mark.parametrize("value", [-1, 1.5, "12", True, None, [1]])
def test_counts_must_be_non_negative_integers(value: object) -> None:
    bad = signed_tally(ELECTION)
    bad["constituency"]["invalid"] = value
    message = errors_of(bad)["constituency.invalid"]
    assert "negative" in message or "whole number" in message


def test_arithmetic_must_add_up() -> None:
    bad = signed_tally(ELECTION)
    bad["party_list"]["no_vote"] += 1
    assert "which is not ballots_cast (400)" in errors_of(bad)["party_list.ballots_cast"]


def test_more_ballots_than_registered_voters() -> None:
    bad = signed_tally(ELECTION)
    for ballot in ("constituency", "party_list"):
        bad[ballot]["ballots_cast"] += 1000
        bad[ballot]["no_vote"] += 1000
    errors = errors_of(bad)
    assert "more than the unit's 549 registered voters" in errors["constituency.ballots_cast"]
    assert "more than the unit's 549 registered voters" in errors["party_list.ballots_cast"]


def test_registered_voters_must_match_the_unit() -> None:
    bad = signed_tally(ELECTION)
    bad["registered_voters"] = 600
    assert "does not match" in errors_of(bad)["registered_voters"]


def test_missing_and_wrong_signatures() -> None:
    good = signed_tally(ELECTION)
    missing = copy.deepcopy(good)
    del missing["signature"]
    assert errors_of(missing)["signature"] == "is required"
    other = signed_tally(ELECTION, key=OTHER_KEY)
    forged = copy.deepcopy(good)
    forged["signature"] = other["signature"]
    assert "not by the stated signer" in errors_of(forged)["signature"]
    tampered = copy.deepcopy(good)
    tampered["constituency"]["votes"] = {k: v for k, v in tampered["constituency"]["votes"].items()}
    first = next(iter(tampered["constituency"]["votes"]))
    tampered["constituency"]["votes"][first] -= 1
    tampered["constituency"]["invalid"] += 1
    assert "not by the stated signer" in errors_of(tampered)["signature"]
    garbage = copy.deepcopy(good)
    garbage["signature"] = "0x1234"
    assert "65-byte" in errors_of(garbage)["signature"]


def test_photos_must_be_stored_cids() -> None:
    assert "not stored here" in errors_of(signed_tally(ELECTION), stored=False)["photos.tally_board"]
    bad = signed_tally(ELECTION)
    bad["photos"]["form_5_18"] = "not-a-cid"
    assert "is not a CID" in errors_of(bad)["photos.form_5_18"]
    bad = signed_tally(ELECTION)
    del bad["photos"]["form_5_18"]
    assert errors_of(bad)["photos.form_5_18"] == "is required"


def test_nothing_is_dropped_silently() -> None:
    bad = signed_tally(ELECTION)
    bad["comment"] = "hello"
    bad["constituency"]["spoiled"] = 3
    errors = errors_of(bad)
    assert "not a field of a tally record" in errors["comment"]
    assert "not a field of a ballot count" in errors["constituency.spoiled"]


def test_all_errors_are_reported_at_once() -> None:
    bad = signed_tally(ELECTION)
    bad["constituency"]["invalid"] = -1
    bad["party_list"]["votes"]["1000"] = 1
    bad["submission_id"] = "x"
    assert {"constituency.invalid", "party_list.votes.1000", "submission_id"} <= set(errors_of(bad))


def test_not_an_object() -> None:
    with pytest.raises(InvalidTally, match="JSON object"):
        check([])  # type: ignore[arg-type]


def test_a_form_that_does_not_add_up_is_reported_as_written_when_flagged() -> None:
    tally = signed_tally(ELECTION)
    unsigned = {k: v for k, v in tally.items() if k != "signature"}
    unsigned["party_list"] = dict(unsigned["party_list"], no_vote=unsigned["party_list"]["no_vote"] + 3)
    with pytest.raises(InvalidTally, match="form_inconsistent: true"):
        validate_tally(unsigned, election=ELECTION, photo_exists=lambda _cid: True, signed=False)
    unsigned["form_inconsistent"] = True
    node = check(resign(unsigned))
    assert node["form_inconsistent"] is True
    flagged = resign(unsigned)
    flagged["form_inconsistent"] = "yes"
    assert errors_of(flagged)["form_inconsistent"] == "must be true or false"
