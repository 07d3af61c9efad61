"""Issue "Volunteer hierarchy and war-room verification", end to end on the ledger:
three organisations report a constituency with agreements, a conflict, a form that does
not add up, a reused photo and an escalation; the head resolves, the war room certifies,
and the certified aggregate and every decision's proof are right."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from ledger.core.decision import DecisionRefused
from ledger.core.proof import check_proof_document
from ledger.election import Election
from ledger.errors import Forbidden, InvalidTally, NotFound
from ledger.results.aggregates import Aggregates
from ledger.review.service import ReviewService
from ledger.sealing.batches import Batcher
from ledger.store.review_models import UnitReview
from tests.support.review import CONSTITUENCY, VERIFIER_KEY, address, decide, key, photo, tally
from wallets.tally_client import sign_decision


def test_election_night_in_one_constituency(service: ReviewService, election: Election) -> None:
    units = [u.id for u in election.polling_units(CONSTITUENCY)]
    u1, u2, u3, u4, u5 = units[:5]
    cid = {}
    # u1: two organisations agree -> accepted automatically by the ledger
    service.submit_report(tally(service, "org-a", u1))
    assert service.replay.unit(u1).status == "open"
    cid["u1b"] = service.submit_report(tally(service, "org-b", u1)).receipt["record_cid"]
    assert service.replay.unit(u1).status == "accepted"
    # u2: a conflict between two organisations
    service.submit_report(tally(service, "org-a", u2, c1=200))
    cid["u2b"] = service.submit_report(tally(service, "org-b", u2, c1=190)).receipt["record_cid"]
    # u3: the form itself does not add up, reported as written by two organisations
    a3 = service.submit_report(tally(service, "org-a", u3, inconsistent=True)).receipt["record_cid"]
    b3 = service.submit_report(tally(service, "org-b", u3, inconsistent=True)).receipt["record_cid"]
    # u4: org-c reuses a photo of u1
    reused = service.unit_review(u1)["reports"][0]["document"]["photos"]
    cid["u4a"] = service.submit_report(tally(service, "org-a", u4)).receipt["record_cid"]
    cid["u4c"] = service.submit_report(
        tally(service, "org-c", u4, photos=(reused["tally_board"]["/"], reused["form_5_18"]["/"]))
    ).receipt["record_cid"]
    # u5: agreement, but the head escalates it anyway
    cid["u5a"] = service.submit_report(tally(service, "org-a", u5)).receipt["record_cid"]
    service.submit_report(tally(service, "org-b", u5))

    queue = service.head_queue(address("head"))
    assert [item["unit"] for item in queue] == [u2, u3, u4]
    flags = {item["unit"]: {f["code"] for f in item["flags"]} for item in queue}
    assert flags == {u2: {"numbers_differ"}, u3: {"form_inconsistent"}, u4: {"photo_reused"}}
    side_by_side = service.unit_review(u2)
    assert len(side_by_side["reports"]) == 2 and side_by_side["reports"][0]["organisation"] == "org-a"
    assert "contact" not in str(side_by_side) and "+66" not in str(side_by_side)

    decisions = [
        decide(service, "head", "accept", u2, record=cid["u2b"]),
        # the head reads the form photo and enters the corrected tally
    ]
    corrected = service.submit_report(tally(service, "head", u3, sid="head-fix-u3", signer="head", corrects=[a3, b3]))
    decisions.append(decide(service, "head", "correct", u3, record=corrected.receipt["record_cid"], reason="read from the form"))
    decisions.append(decide(service, "head", "reject", u4, record=cid["u4c"], reason="photo of another unit"))
    decisions.append(decide(service, "head", "accept", u4, record=cid["u4a"]))
    decisions.append(decide(service, "head", "escalate", u5, reason="ballot box seal broken on the photo"))
    assert service.head_queue(address("head")) == []
    war_room = service.war_room_queue()
    assert [e["unit"] for e in war_room["escalations"]] == [u5]
    decisions.append(decide(service, "war-room", "accept", u5, record=cid["u5a"]))

    accepted = {u: service.replay.unit(u).accepted for u in (u1, u2, u3, u4, u5)}
    for unit in (u1, u2, u3, u4, u5):
        decisions.append(decide(service, "war-room", "certify", unit, record=accepted[unit]))
    with pytest.raises(DecisionRefused, match="neither certified nor excluded"):
        decide(service, "war-room", "certify_constituency", CONSTITUENCY)
    for unit in units[5:]:
        decide(service, "war-room", "exclude", unit, reason="no report before the deadline")
    assert service.war_room_queue()["constituencies_ready"] == [CONSTITUENCY]
    excluded = len(units) - 5
    with pytest.raises(DecisionRefused, match=f"has {excluded} of its {len(units)} units excluded .* give the reason"):
        decide(service, "war-room", "certify_constituency", CONSTITUENCY)  # a result resting on 5 units needs a reason
    decisions.append(
        decide(service, "war-room", "certify_constituency", CONSTITUENCY, reason="the other units sent no report by 23:00")
    )

    # The certified aggregate counts exactly the certified records.
    certified = service.aggregates.view("certified").constituency(CONSTITUENCY)
    documents = [service.ledger.entry(accepted[u]).document for u in (u1, u2, u3, u4, u5)]
    assert certified["units_reporting"] == 5
    assert certified["basis"] == {
        "certified": True,
        "units_total": len(units),
        "units_certified": 5,
        "units_excluded": excluded,
        "units_pending": 0,
        "excluded_share": round(excluded / len(units), 6),
    }
    feed, _ = service.ledger.changes(after=0, limit=1000, view="certified")
    (certification,) = [i for i in feed if i["document"]["action"] == "certify_constituency"]
    assert certification["basis"] == certified["basis"]  # the certified feed says what it rests on, too
    assert certified["ballots_cast"] == sum(d["constituency"]["ballots_cast"] for d in documents)
    assert {c["number"]: c["votes"] for c in certified["candidates"]}[1] == sum(
        d["constituency"]["votes"]["1"] for d in documents
    )

    # Every decision is a ledger entry with a proof, once sealed.
    batcher = Batcher(service.ledger)
    batcher.seal_due(force=True)
    for decision_cid in decisions:
        document = batcher.proof(decision_cid)
        check_proof_document(document)
        assert document["status"] == "sealed"

    # An auditor replaying the decisions from scratch arrives at the same certified records.
    fresh = ReviewService(
        ledger=service.ledger,
        aggregates=Aggregates(database=service.database, election=election),
        verifier_key=bytes.fromhex("05" * 32),
    )
    fresh.load()
    assert fresh.replay.certified_records() == service.replay.certified_records()


def test_permissions(service: ReviewService, election: Election) -> None:
    units = [u.id for u in election.polling_units(CONSTITUENCY)]
    stranger_unit = "BKK_1-0001"
    # the wrong volunteer: a unit not assigned to them is refused, and the attempt counted
    with pytest.raises(Forbidden, match="not assigned to polling unit BKK_1-0001"):
        service.submit_report(tally(service, "org-a", stranger_unit))
    assert service.member(address("org-a")).refused_attempts == 1
    # the wrong organisation's coordinator
    with pytest.raises(Forbidden, match="belongs to org-b, not to org-a"):
        service.assign(address=address("org-b"), areas=[units[9]], organisation_id="org-a")
    # a head outside their constituency
    record = service.submit_report(tally(service, "org-a", units[0])).receipt["record_cid"]
    with pytest.raises(Forbidden, match="does not oversee constituency MSN_1"):
        decide(service, "other-head", "accept", units[0], record=record)
    # a decision signed by one person but sent by another
    decision = sign_decision(
        {
            "decision_id": "steal-0001",
            "decided_at": "2023-05-14T12:00:00Z",
            "role": "constituency_head",
            "action": "accept",
            "subject": units[0],
            "record": record,
        },
        key("head"),
        election,
    )
    with pytest.raises(Forbidden, match="signed in as"):
        service.decide(decision, signed_in_as=address("org-a"))
    # a volunteer cannot decide; an unknown person is not a member
    with pytest.raises(Forbidden, match="the decision says constituency_head"):
        service.decide(sign_decision({**decision, "decision_id": "vol-00001"}, key("org-a"), election))
    with pytest.raises(NotFound, match="not a registered member"):
        service.decide(sign_decision({**decision, "decision_id": "who-00001"}, key("nobody"), election))


def test_a_volunteer_whose_reports_keep_being_rejected_is_flagged_and_held(service: ReviewService, election: Election) -> None:
    units = [u.id for u in election.polling_units(CONSTITUENCY)][:5]
    for n, unit in enumerate(units[:3]):
        bad = service.submit_report(tally(service, "org-c", unit, c1=150)).receipt["record_cid"]
        decide(service, "head", "reject", unit, record=bad, reason="numbers do not match the photo", n=n)
    flagged = service.flagged_members("org-c")
    assert [f["rejected_reports"] for f in flagged] == [3]
    # their next reports are held: even agreeing numbers are not accepted automatically
    service.submit_report(tally(service, "org-c", units[3]))
    service.submit_report(tally(service, "org-a", units[3]))
    assert service.replay.unit(units[3]).status == "open"
    assert "held_submitter" in {f["code"] for f in service.unit_review(units[3])["flags"]}


def test_deferred_screening_catches_up_even_after_a_restart(service: ReviewService, election: Election) -> None:
    unit = [u.id for u in election.polling_units(CONSTITUENCY)][0]
    service.defer_screening = True
    service.submit_report(tally(service, "org-a", unit))
    service.submit_report(tally(service, "org-b", unit))
    assert service.replay.unit(unit).status == "open"  # accepted, not screened yet
    assert service.screen_pending() == 1
    assert service.replay.unit(unit).status == "accepted"
    other = [u.id for u in election.polling_units(CONSTITUENCY)][1]
    service.submit_report(tally(service, "org-a", other))
    service.submit_report(tally(service, "org-b", other))
    # the process dies before its queue is screened; the next one finds what was missed
    restarted = ReviewService(ledger=service.ledger, aggregates=service.aggregates, verifier_key=VERIFIER_KEY)
    restarted.load()
    assert restarted.screen_unscreened() == 1
    assert restarted.replay.unit(other).status == "accepted"


def test_the_certified_feed_carries_only_certifications_with_their_numbers(service: ReviewService, election: Election) -> None:
    units = [u.id for u in election.polling_units(CONSTITUENCY)][:2]
    for unit in units:
        service.submit_report(tally(service, "org-a", unit))
        service.submit_report(tally(service, "org-b", unit))
    decide(service, "war-room", "certify", units[0], record=service.replay.unit(units[0]).accepted)
    unofficial, _ = service.ledger.changes(after=0, limit=100)
    assert {i["view"] for i in unofficial} == {"unofficial"}
    assert (
        sorted(i["kind"] for i in unofficial if i["kind"] != "authority") == ["decision"] * 3 + ["tally"] * 4
    )  # 2 accepts, 1 certify
    certified, cursor = service.ledger.changes(after=0, limit=100, view="certified")
    assert [(i["polling_unit"], i["document"]["action"]) for i in certified] == [(units[0], "certify")]
    assert certified[0]["certified_record"]["polling_unit"] == units[0]
    assert service.ledger.changes(after=cursor, view="certified") == ([], cursor)
    # reports that change nothing certified move the cursor past them, so the next poll starts later
    service.submit_report(tally(service, "org-c", units[1]))
    latest = service.ledger.changes(after=0, limit=100)[1]
    assert latest > cursor and service.ledger.changes(after=cursor, view="certified") == ([], latest)
    # a page that is full stops at its last item
    first, at = service.ledger.changes(after=0, limit=1, view="certified")
    assert len(first) == 1 and at == first[0]["cursor"]


def test_reports_committed_as_a_group_are_answered_one_by_one(service: ReviewService, election: Election) -> None:
    """``submit_reports`` (the API's group commit): each report gets its own answer, and a
    refused report (permission, validation, reused id) never refuses its neighbours."""
    units = [u.id for u in election.polling_units(CONSTITUENCY)]
    good = tally(service, "org-a", units[0])
    bad = tally(service, "org-b", units[1])
    bad["constituency"]["invalid"] = -1
    stranger = tally(service, "org-c", "BKK_1-0001")
    same_photo = photo(service, "one shot of both")
    both_roles = tally(service, "org-c", units[2], photos=(same_photo, same_photo))
    answers = service.submit_reports([(good, None), (bad, None), (stranger, None), (both_roles, None), (good, None)])
    assert answers[0].created and not answers[4].created  # type: ignore[union-attr]
    assert answers[4].receipt == answers[0].receipt  # type: ignore[union-attr]
    assert isinstance(answers[1], InvalidTally) and "constituency.invalid" in str(answers[1])
    assert isinstance(answers[2], Forbidden)
    assert answers[3].created  # type: ignore[union-attr]
    assert service.member(address("org-c")).refused_attempts == 1
    # the created units were screened (inline here: screening is not deferred), the refused one was not
    with service.database.session() as session:
        screened = {row.unit: row.report_count for row in session.scalars(select(UnitReview))}
    assert screened == {units[0]: 1, units[2]: 1}


def signed(service: ReviewService, who: str, action: str, subject: str, *, n: int = 0, **fields: Any) -> dict[str, Any]:
    role = {"head": "constituency_head", "war-room": "war_room", "nobody": "war_room"}[who]
    decision = {
        "decision_id": f"{who}-{action}-{subject}-{n}",
        "decided_at": "2023-05-14T12:00:00Z",
        "role": role,
        "action": action,
        "subject": subject,
        **fields,
    }
    return sign_decision(decision, key(who), service.election)


def test_decisions_decided_as_a_group_are_answered_as_one_by_one(
    service: ReviewService, election: Election, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``decide_many`` (the API's group commit of decisions): each decision is judged by the
    rules as they stand after the decisions before it in the group, and answered alone."""
    units = [u.id for u in election.polling_units(CONSTITUENCY)]
    u1, u2, u3 = units[:3]
    for unit in (u1, u2, u3):  # two organisations agree: accepted by the ledger
        service.submit_report(tally(service, "org-a", unit))
        service.submit_report(tally(service, "org-b", unit))
    accepted = {unit: service.replay.unit(unit).accepted for unit in (u1, u2, u3)}
    commits: list[int] = []
    commit = service.ledger.commit
    monkeypatch.setattr(service.ledger, "commit", lambda group: commits.append(len(group)) or commit(group))
    war_room = address("war-room")
    group = [
        (signed(service, "war-room", "certify", u1, record=accepted[u1]), war_room),
        (signed(service, "war-room", "certify", u1, record=accepted[u1]), war_room),  # a retry, in the same group
        (signed(service, "war-room", "certify", u2, record=accepted[u2]), war_room),
        (signed(service, "war-room", "certify", u3, record=accepted[u3]), war_room),
        (signed(service, "nobody", "certify", u3, record=accepted[u3]), None),
        (signed(service, "head", "escalate", u2, reason="seal broken"), address("head")),  # u2 is certified by now
        (signed(service, "war-room", "certify", u1, record=accepted[u1], reason="changed"), war_room),  # its id, reused
    ]
    answers = service.decide_many(group)
    assert [type(a).__name__ for a in answers] == [
        "Accepted",
        "Accepted",
        "Accepted",
        "Accepted",
        "NotFound",
        "DecisionRefused",
        "ConflictingSubmission",
    ]
    assert answers[0].created and not answers[1].created and answers[1].receipt == answers[0].receipt  # type: ignore[union-attr]
    assert "certified" in str(answers[5])
    assert {unit: service.replay.unit(unit).status for unit in (u1, u2, u3)} == dict.fromkeys((u1, u2, u3), "certified")
    assert len(commits) == 3 and sum(commits) == 5  # [u1], [u1 again, u2, u3], [u1 reused id]: not one per decision

    # A constituency is certified in the same group as the exclusions that complete it.
    rest = [(signed(service, "war-room", "exclude", unit, reason="no report"), war_room) for unit in units[3:]]
    certify = signed(service, "war-room", "certify_constituency", CONSTITUENCY, reason="the rest sent no report")
    final = service.decide_many([*rest, (certify, war_room)])
    assert all(a.created for a in final)  # type: ignore[union-attr]
    assert service.replay.constituency(CONSTITUENCY).certified
    assert commits[3:] == [len(rest), 1]


def test_submitting_and_screening_never_scan_a_growing_table(service: ReviewService, election: Election) -> None:
    """Every query of the submission and screening paths finds its rows through an index:
    a full scan of entries, photos or assignments would make each report slower than the
    one before, all night (a row-value IN list made SQLite do exactly that)."""
    if service.database.engine.dialect.name != "sqlite":
        pytest.skip("reads SQLite's query plans")
    from sqlalchemy import event

    units = [u.id for u in election.polling_units(CONSTITUENCY)][:5]
    statements: list[tuple[str, Any]] = []

    def record(_conn, _cursor, statement, parameters, _context, executemany):  # type: ignore[no-untyped-def]
        if statement.lstrip().upper().startswith("SELECT") and not executemany:
            statements.append((statement, parameters))

    service.submit_reports([(tally(service, "org-a", unit), None) for unit in units])  # warm: rows exist
    event.listen(service.database.engine, "before_cursor_execute", record)
    try:
        service.submit_reports([(tally(service, org, unit), None) for org in ("org-b", "org-c") for unit in units])
        service.submit_reports([(tally(service, "org-a", units[0]), None)])  # a retry
    finally:
        event.remove(service.database.engine, "before_cursor_execute", record)
    assert statements
    growing = ("entries", "photos", "photo_uses", "assignments", "members", "unit_reviews")
    with service.database.engine.connect() as connection:
        for statement, parameters in statements:
            plan = connection.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters).all()
            scans = [row[3] for row in plan if row[3].startswith("SCAN") and row[3].split()[1] in growing]
            assert not scans, f"{statement}\n{scans}"
