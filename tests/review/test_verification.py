from __future__ import annotations

import copy
from typing import Any

import pytest

from ledger.core.decision import DECISION_FORMAT, Basis, DecisionRefused, Replay
from ledger.review.screening import Report, assess_unit, numbers_of
from tests.support.screening import document


def report(n: int, organisation: str, doc: dict[str, Any] | None = None, held: bool = False) -> Report:
    return Report(f"bafyrecord{n}", n, f"0xsigner{n}", organisation, doc or document(photos=(f"p{n}a", f"p{n}b")), held)


def test_two_organisations_agreeing_are_accepted_automatically() -> None:
    assessment = assess_unit("U-0001", [report(2, "org-b"), report(1, "org-a")])
    assert assessment.outcome == "agreed" and assessment.accepted_cid == "bafyrecord1"
    assert assessment.agreeing == ("bafyrecord1", "bafyrecord2")


def test_one_organisation_twice_is_not_independent() -> None:
    assert assess_unit("U-0001", [report(1, "org-a"), report(2, "org-a")]).outcome == "waiting"
    assert assess_unit("U-0001", [report(1, "org-a")], required_organisations=1).outcome == "agreed"


def test_different_numbers_go_to_the_head_naming_the_field() -> None:
    other = document(c1=201)
    other["constituency"]["ballots_cast"] -= 0
    assessment = assess_unit("U-0001", [report(1, "a"), report(2, "b", other), report(3, "c")])
    assert assessment.outcome == "needs_review"
    (flag,) = assessment.flags
    assert flag.code == "numbers_differ" and "constituency.ballots_cast 310 vs 311" in flag.detail


@pytest.mark.parametrize(
    ("code", "kwargs", "doc"),
    [
        ("form_inconsistent", {}, document(form_inconsistent=True)),
        ("photo_reused", {"photo_units": {"p1a": {"U-0001", "U-0002"}}}, None),
        ("photo_far", {"photo_locations": {"p1a": (13.75, 100.5)}, "unit_location": (18.79, 98.98)}, None),
        ("share_outlier", {"constituency_shares": {"1": 0.05}}, document(p1=400)),
    ],
)
def test_each_kind_of_trouble_is_flagged(code: str, kwargs: dict[str, Any], doc: dict[str, Any] | None) -> None:
    first = report(1, "a", doc)
    second = report(2, "b", copy.deepcopy(first.document)) if doc else report(2, "b", document(photos=("p1a", "p1b")))
    if doc is None:
        first = report(1, "a", document(photos=("p1a", "p1b")))
    assessment = assess_unit("U-0001", [first, second], **kwargs)
    assert assessment.outcome == "needs_review"
    assert code in {f.code for f in assessment.flags}


def test_a_held_submitter_is_never_accepted_automatically() -> None:
    assert assess_unit("U-0001", [report(1, "a", held=True), report(2, "b")]).flags[0].code == "held_submitter"


def test_zero_votes_do_not_count_as_a_difference() -> None:
    with_zero = document()
    with_zero["party_list"]["votes"]["3"] = 0
    assert numbers_of(with_zero) == numbers_of(document())


# -- decisions ------------------------------------------------------------------------

UNITS = {"bafyA": "C_1-0001", "bafyB": "C_1-0001", "bafyFix": "C_1-0001", "bafyX": "C_1-0002"}


def replay() -> Replay:
    return Replay(
        record_unit=UNITS.get,
        corrects=lambda cid: ["bafyA", "bafyB"] if cid == "bafyFix" else [],
        units_of=lambda c: ["C_1-0001", "C_1-0002"],
    )


def decision(action: str, subject: str = "C_1-0001", role: str = "war_room", **fields: Any) -> dict[str, Any]:
    return {"format": DECISION_FORMAT, "action": action, "role": role, "subject": subject, "decision_id": f"d-{action}", **fields}


def test_the_whole_path_to_a_certified_constituency() -> None:
    log = replay()
    log.apply("d1", decision("accept", role="constituency_head", record={"/": "bafyA"}))
    log.apply("d2", decision("reject", role="constituency_head", record="bafyA", reason="photo unreadable"))
    assert log.unit("C_1-0001").status == "open"
    with pytest.raises(DecisionRefused, match="was rejected"):
        log.check(decision("accept", role="constituency_head", record="bafyA"))
    log.apply("d3", decision("correct", role="constituency_head", record="bafyFix", reason="read from the form photo"))
    with pytest.raises(DecisionRefused, match="neither certified nor excluded"):
        log.check(decision("certify_constituency", subject="C_1"))
    log.apply("d4", decision("certify", record="bafyFix"))
    assert log.basis("C_1") == Basis(units_total=2, units_certified=1, units_excluded=0, certified=False)
    log.apply("d5", decision("exclude", subject="C_1-0002", reason="unit did not open"))
    log.apply("d6", decision("certify_constituency", subject="C_1"))
    assert log.constituency("C_1").certified
    basis = log.basis("C_1")
    assert (basis.units_pending, basis.excluded_share, basis.certified) == (0, 0.5, True)
    assert log.certified_records() == {"C_1-0001": "bafyFix"}
    log.apply("d7", decision("reopen", reopens="d4", reason="new evidence"))
    assert log.unit("C_1-0001").status == "open" and log.certified_records() == {}


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (decision("certify", role="constituency_head", record="bafyA"), "may not certify"),
        (decision("reject", role="constituency_head", record="bafyA"), "needs a reason"),
        (decision("accept", role="constituency_head", record="bafyX"), "not a report of unit"),
        (decision("certify", record="bafyA"), "only the accepted record"),
        (decision("accept", role="ledger"), "needs the record"),
        (decision("escalate", role="ledger", reason="x"), "may not escalate"),
        (decision("reopen", reopens="nope", reason="x"), "earlier decision"),
        ({**decision("accept", record="bafyA"), "format": "other"}, "not a tally-decision-v1"),
    ],
)
def test_decisions_that_break_the_rules_are_refused(bad: dict[str, Any], message: str) -> None:
    with pytest.raises(DecisionRefused, match=message):
        replay().check(bad)
