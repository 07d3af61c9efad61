"""One poisoned tally must not freeze the results (issue: "Hardening", the worst hole).

A party key written "๓๑" (Thai digits) passed ``isdigit()`` and ``int()`` as party 31 but was
stored as sent; the aggregates loop then failed on it at every pass, ``tally serve`` died
at start, and concurrent good reports got 500 with it. These tests hold the three layers:
strict parsing refuses it (server and client SDK alike), an entry that got in anyway is
set aside and named (readiness, ``tally verify``) while everything else goes on, and a
group commit judges each report alone.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from sqlalchemy import delete, select, update

from api.main import create_app
from api.state import AppState
from ledger.core.record import node_to_json, sign_entry
from ledger.core.signing import address_from_private_key
from ledger.election import Election, load_election
from ledger.election.validation import check_stored_tally, validate_tally
from ledger.errors import InvalidTally
from ledger.settings import Settings
from ledger.store import Entry
from tests.support.api import ApiWorld, TestClient
from tests.support.factories import OTHER_KEY, VOLUNTEER_KEY, signed_tally, tally_json
from wallets.tally_client import sign_tally

ELECTION = load_election("th2566")
UNSIGNED = {**tally_json(ELECTION), "submitter": address_from_private_key(VOLUNTEER_KEY)}
# Other spellings of a number that int() accepts and the ledger must not: Thai, superscript,
# Arabic-Indic, fullwidth, Devanagari digits, a leading zero, a sign, spaces, an underscore.
SPELLINGS = ["๓๑", "³¹", "٣١", "３１", "३१", "031", "+31", " 31", "3_1"]


def poisoned(election: Election, spelling: str, **kwargs: Any) -> dict[str, Any]:
    """A tally whose first party is keyed ``spelling``, signed as a client that skips validation would sign it."""
    return node_to_json(poisoned_node(election, spelling, **kwargs))  # type: ignore[return-value]


def poisoned_node(
    election: Election, spelling: str, *, key: bytes = OTHER_KEY, unit: str = "BKK_1-0002", submission_id: str = "poison-0001"
) -> dict[str, Any]:
    tally = {**tally_json(election, unit, submission_id=submission_id), "submitter": address_from_private_key(key)}
    node = validate_tally(tally, election=election, photo_exists=lambda _c: True, signed=False)
    votes = dict(node["party_list"]["votes"])  # type: ignore[index]
    first = next(iter(votes))
    votes[spelling] = votes.pop(first)
    node["party_list"] = {**node["party_list"], "votes": votes}  # type: ignore[dict-item]
    return sign_entry(node, key)


# -- strict parsing: refused at the door, in the server and in the SDK ---------------------


@pytest.mark.parametrize("spelling", SPELLINGS)
def test_a_non_canonical_key_is_refused_with_its_field_path(spelling: str) -> None:
    submission = poisoned(ELECTION, spelling)
    with pytest.raises(InvalidTally) as caught:
        validate_tally(submission, election=ELECTION, photo_exists=lambda _c: True)
    (error,) = caught.value.errors
    assert error.path == ("party_list", "votes", spelling)
    assert "ASCII digits" in error.message


@pytest.mark.parametrize("spelling", ["๓๑", "³¹"])
def test_the_client_sdk_refuses_to_sign_it(spelling: str) -> None:
    tally = tally_json(ELECTION)
    votes = tally["party_list"]["votes"]
    first = next(iter(votes))
    votes[spelling] = votes.pop(first)
    with pytest.raises(InvalidTally, match="ASCII digits"):
        sign_tally(tally, VOLUNTEER_KEY, ELECTION)


@pytest.mark.parametrize(
    "field,value",
    [
        ("submitted_at", "๒๐๒๓-05-14T10:31:07Z"),
        ("submitted_at", "2023-05-14T10:31:07Z\n"),
        ("submitted_at", "2023-02-31T10:31:07Z"),
        ("polling_unit", "BKK_1-๐๐๐1"),
        ("submission_id", "org7-vol42-0001\n"),
    ],
)
def test_other_fields_take_one_ascii_spelling(field: str, value: str) -> None:
    tally = {**UNSIGNED, field: value}
    with pytest.raises(InvalidTally) as caught:
        validate_tally(tally, election=ELECTION, photo_exists=lambda _c: True, signed=False)
    assert [e.path for e in caught.value.errors] == [(field,)]


@pytest.mark.parametrize(
    "moment",
    ["0000-01-01T00:00:00Z", "1970-01-01T00:00:00Z", "2023-05-13T16:59:59Z", "2023-07-13T10:00:01Z", "2099-05-14T10:31:07Z"],
)
def test_submitted_at_must_fall_in_the_reporting_window(moment: str) -> None:
    with pytest.raises(InvalidTally) as caught:
        validate_tally({**UNSIGNED, "submitted_at": moment}, election=ELECTION, photo_exists=lambda _c: True, signed=False)
    (error,) = caught.value.errors
    assert error.path == ("submitted_at",)
    assert "reporting window, 2023-05-13T17:00:00Z to 2023-07-13T10:00:00Z" in error.message or "not a" in error.message


@pytest.mark.parametrize("moment", ["2023-05-13T17:00:00Z", "2023-05-14T10:31:07Z", "2023-07-13T10:00:00Z"])
def test_times_inside_the_window_are_taken(moment: str) -> None:
    node = validate_tally({**UNSIGNED, "submitted_at": moment}, election=ELECTION, photo_exists=lambda _c: True, signed=False)
    assert node["submitted_at"] == moment


def test_the_server_answers_422_and_goes_on_counting(world: ApiWorld) -> None:
    bad = world.client.post(
        "/v1/tallies", json=poisoned(world.state.ledger_app.election, "๓๑"), headers=world.headers("other_volunteer")
    )
    assert bad.status_code == 422, bad.text
    paths = [error["path"] for error in bad.json()["errors"]]
    assert paths == [["party_list", "votes", "๓๑"]]
    good = world.submit(unit_id="BKK_1-0003", submission_id="good-after-poison")
    assert good.status_code == 201, good.text
    world.state.aggregates.refresh()
    national = world.client.get("/v1/aggregates/unofficial/national")
    assert national.status_code == 200 and national.json()["units_reporting"] == 1
    assert world.client.get("/v1/ready").json()["status"] == "ready"


def test_four_bad_reports_among_sixty_good_ones_touch_no_good_one(world: ApiWorld) -> None:
    """24 at a time as in the probe: each bad one gets its own 422, every good one its 201."""
    election = world.state.ledger_app.election
    units = [u.id for u in election.polling_units("BKK_2")][:60]
    good = [("good", signed_tally(election, unit, submission_id=f"good-{n:04d}")) for n, unit in enumerate(units)]
    bad = [
        ("bad", poisoned(election, spelling, unit=units[n], submission_id=f"bad-{n:04d}"))
        for n, spelling in enumerate(["๓๑", "³¹", "٣١", "031"])
    ]
    work = good[:15] + bad[:1] + good[15:30] + bad[1:3] + good[30:] + bad[3:]

    def send(item: tuple[str, dict[str, Any]]) -> tuple[str, int, str]:
        kind, submission = item
        role = "volunteer" if kind == "good" else "other_volunteer"
        answer = world.client.post("/v1/tallies", json=submission, headers=world.headers(role))
        return kind, answer.status_code, answer.text

    with ThreadPoolExecutor(24) as pool:
        answers = list(pool.map(send, work))
    assert [status for kind, status, _ in answers if kind == "good"] == [201] * 60, answers
    assert [status for kind, status, _ in answers if kind == "bad"] == [422] * 4, answers


# -- no poison: an entry that got in anyway is set aside, and named -----------------------


def _open_state(settings: Settings) -> AppState:
    """An app over ``settings`` with the factories' photos stored, as the ``api_state`` fixture makes it."""
    from ledger.core.cid import CID, RAW
    from tests.support.factories import stand_in_photos

    state = AppState.open(settings)
    for data in (b"board", b"form"):
        state.ledger_app.content.put_block(CID.of(RAW, data), data)
    stand_in_photos(state.ledger_app.ledger)  # indexed as photos: a tally's photo links must name photos
    return state


def _inject(state: AppState, node: dict[str, Any]) -> str:
    """Put a tally into the ledger past validation, as the old code accepted one."""
    ledger = state.ledger_app.ledger
    unit = ledger.election.polling_unit(str(node["polling_unit"]))
    accepted = ledger.submit_entry(
        node,
        kind="tally",
        subject=unit.id,
        constituency_id=unit.constituency_id,
        signer=str(node["submitter"]),
        entry_id=str(node["submission_id"]),
    )
    return str(accepted.receipt["record_cid"])


def test_the_server_starts_and_serves_over_a_poisoned_entry(api_settings: Settings) -> None:
    state = _open_state(api_settings)
    election = state.ledger_app.election
    try:
        assert state.ledger_app.review.submit_report(signed_tally(election, "BKK_1-0001")).created
        poison_cid = _inject(state, poisoned_node(election, "๓๑", unit="BKK_1-0002"))
    finally:
        state.close()

    state = _open_state(api_settings)  # start-up reads every entry: it must not die on this one
    try:
        with TestClient(create_app(app_state=state), raise_server_exceptions=False) as client:
            ready = client.get("/v1/ready").json()
            assert ready["status"] == "degraded" and ready["quarantined"] >= 1
            (entry,) = [e for e in ready["entries"] if e["stage"] == "aggregates"]
            assert entry["entry"] == poison_cid and entry["subject"] == "BKK_1-0002" and entry["reason"] is None
            _, auditor = state.access.create_principal(role="auditor", name="auditor")
            told = client.get("/v1/ready", headers={"Authorization": f"Bearer {auditor}"}).json()
            (entry,) = [e for e in told["entries"] if e["stage"] == "aggregates"]
            assert "๓๑" in entry["reason"]  # the reason, for those who read it
            national = client.get("/v1/aggregates/unofficial/national").json()
            assert national["units_reporting"] == 1  # the good unit is counted, the poisoned one set aside
            later = state.ledger_app.review.submit_report(signed_tally(election, "BKK_1-0003", submission_id="later-0001"))
            assert later.created
            state.aggregates.refresh()  # the loop goes on past the poisoned entry
            assert client.get("/v1/aggregates/unofficial/national").json()["units_reporting"] == 2
            assert state.ledger_app.review.screen_unscreened() >= 0  # screening does not stop on it either
            assert state.ledger_app.batcher.seal_due(force=True)  # nor does sealing
            assert client.get("/v1/health").status_code == 200
    finally:
        state.close()


def test_a_lost_row_that_a_decision_names_does_not_stop_the_start(review_service: Any) -> None:  # noqa: F811
    """A decision names a record whose database row is gone: the replay at start-up (the
    same ``load`` that ``tally serve`` runs) goes on, sets the decision aside and serves the rest."""
    from ledger.results.aggregates import Aggregates
    from ledger.review.service import ReviewService
    from tests.support.photo_reports import VERIFIER_KEY
    from tests.support.review import CONSTITUENCY, tally

    service = review_service
    first, second = [u.id for u in service.election.polling_units(CONSTITUENCY)][:2]
    for unit in (first, second):
        service.submit_report(tally(service, "org-a", unit))
        service.submit_report(tally(service, "org-b", unit))
    lost = service.replay.unit(first).accepted
    assert lost and service.replay.unit(second).accepted
    with service.database.session() as session:
        session.execute(delete(Entry).where(Entry.cid == lost))

    aggregates = Aggregates(database=service.database, election=service.election)
    restarted = ReviewService(ledger=service.ledger, aggregates=aggregates, verifier_key=VERIFIER_KEY)
    restarted.load()  # raised "record … is not a report of unit …" before
    assert [(e.stage, e.subject) for e in aggregates.quarantine.items()] == [("replay", first)]
    assert restarted.replay.unit(second).status == "accepted"  # everything else was replayed


def test_a_corrupt_row_is_set_aside_by_the_count_and_the_seal(api_settings: Settings) -> None:
    """A row edited by hand (its votes no longer numbers, its signer no address) is set
    aside where it cannot be used; the unit beside it is counted and sealed."""
    state = _open_state(api_settings)
    election = state.ledger_app.election
    try:
        review = state.ledger_app.review
        broken = review.submit_report(signed_tally(election, "BKK_1-0001")).receipt["record_cid"]
        review.submit_report(signed_tally(election, "BKK_1-0002", submission_id="neighbour-01"))
        with state.ledger_app.database.session() as session:
            row = session.scalars(select(Entry).where(Entry.cid == broken)).one()
            document = dict(row.document)
            document["constituency"] = {**document["constituency"], "ballots_cast": "many"}
            session.execute(update(Entry).where(Entry.cid == broken).values(document=document, signer="not an address"))
    finally:
        state.close()
    state = _open_state(api_settings)
    try:
        quarantine = state.ledger_app.quarantine
        assert ("aggregates", broken) in quarantine
        assert state.aggregates.view("unofficial").units_reporting == 1
        sealed = state.ledger_app.batcher.seal_due(force=True)
        assert ("sealing", broken) in quarantine
        assert sealed and sum(b.record_count for b in sealed) >= 1  # the neighbour was sealed
        with state.ledger_app.database.session() as session:
            unsealed = session.scalars(select(Entry.cid).where(Entry.batch_id.is_(None))).all()
        assert unsealed == [broken]
    finally:
        state.close()


def test_check_stored_tally_names_a_poisoned_record_and_passes_a_good_one() -> None:
    good = validate_tally(signed_tally(ELECTION), election=ELECTION, photo_exists=lambda _c: True)
    check_stored_tally(good, election=ELECTION)
    submission = poisoned(ELECTION, "๓๑")
    node = {**good, "party_list": {**good["party_list"], "votes": submission["party_list"]["votes"]}}  # type: ignore[dict-item]
    with pytest.raises(InvalidTally, match="ASCII digits"):
        check_stored_tally(node, election=ELECTION)


def test_tally_verify_names_a_poisoned_record_that_was_anchored(night: Any) -> None:  # noqa: F811
    """Anchored and correctly signed, yet not a valid record: ``verify all`` says which one and why."""
    from ledger.sealing.anchoring import AnchorWorker
    from ledger.sealing.batches import Batcher
    from tests.support.audit import auditor
    from tests.support.factories import stand_in_photos

    service, client = night
    stand_in_photos(service.ledger)  # the photos it links are stored, as the server's intake makes sure
    node = poisoned_node(service.election, "๓๑", unit=[u.id for u in service.election.polling_units("MSN_1")][4])
    unit = service.election.polling_unit(str(node["polling_unit"]))
    accepted = service.ledger.submit_entry(
        node,
        kind="tally",
        subject=unit.id,
        constituency_id=unit.constituency_id,
        signer=str(node["submitter"]),
        entry_id=str(node["submission_id"]),
    )
    Batcher(service.ledger).seal_due(force=True)
    AnchorWorker(database=service.database, content=service.ledger.content, client=client).drain()
    report = auditor(service, client).verify_all()
    record, reporter = report.mismatches  # its numbers, and its signer, who is no member of the hierarchy
    assert accepted.receipt["record_cid"] in record.where and "party_list.votes.๓๑" in record.found
    assert (reporter.what, reporter.where) == ("reporter's authority", f"record {accepted.receipt['record_cid']}")
    assert report.batches == 2


def test_tally_verify_leaves_no_temporary_directory_behind(
    night: Any, settings: Settings, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:  # noqa: F811
    """Every run left an empty ``tally-verify-*`` directory in the system's temporary directory."""
    import tempfile

    from typer.testing import CliRunner

    from ledger.cli.main import app

    service, client = night
    scratch_root = tmp_path / "system-tmp"
    scratch_root.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch_root))
    monkeypatch.setenv("TALLY_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("TALLY_ANVIL_PORT", str(settings.anvil_port))
    blocks = f"blocks:{service.ledger.content.root}" if hasattr(service.ledger.content, "root") else None
    assert blocks is not None
    for command in (["verify", "batch", "1", "--content", blocks], ["verify", "all", "--workers", "1", "--content", blocks]):
        result = CliRunner().invoke(app, command)
        assert result.exit_code == 0, result.output
        assert "OK" in result.output
    assert list(scratch_root.iterdir()) == []


def test_the_auditor_counts_exactly_what_the_server_can_count() -> None:
    """A record that breaks a rule tightened later (its time outside the window) is named
    but still counted, as the server counts it; one the server cannot count is left out."""
    from ledger.audit.checks import countable
    from ledger.election.counting import layout_of

    good = validate_tally(signed_tally(ELECTION), election=ELECTION, photo_exists=lambda _c: True)
    late = {**good, "submitted_at": "2026-12-02T10:00:00Z"}
    poisoned_record = poisoned_node(ELECTION, "๓๑", unit="BKK_1-0001")
    layout = layout_of(ELECTION)
    for node, server_counts in ((good, True), (late, True), (poisoned_record, False)):
        assert countable(node, ELECTION) is server_counts
        document = node_to_json(node)
        try:
            layout.result("BKK_1", document, "cid")  # type: ignore[arg-type]
            counted = True
        except KeyError:
            counted = False
        assert counted is server_counts
    with pytest.raises(InvalidTally, match="reporting window"):
        check_stored_tally(late, election=ELECTION)


def test_a_unit_with_one_unreadable_report_is_screened_on_its_others(review_service: Any) -> None:  # noqa: F811
    """A corrupt row set aside the whole unit's screening, so its good reports were never
    accepted. Now only the row is set aside, and the agreeing reports carry the unit."""
    from tests.support.review import CONSTITUENCY, tally

    service = review_service
    unit = [u.id for u in service.election.polling_units(CONSTITUENCY)][0]
    broken = service.submit_report(tally(service, "org-c", unit, c1=150)).receipt["record_cid"]
    with service.database.session() as session:
        row = session.scalars(select(Entry).where(Entry.cid == broken)).one()
        document = dict(row.document)
        document["constituency"] = {**document["constituency"], "ballots_cast": "many"}
        session.execute(update(Entry).where(Entry.cid == broken).values(document=document))
    service.submit_report(tally(service, "org-a", unit))
    service.submit_report(tally(service, "org-b", unit))
    assert service.replay.unit(unit).status == "accepted"
    assert [(e.stage, e.entry) for e in service.aggregates.quarantine.items()] == [("screening", broken)]
