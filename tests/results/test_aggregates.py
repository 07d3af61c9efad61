from __future__ import annotations

from pathlib import Path

import pytest

from ledger.content.local import LocalBlockStore
from ledger.core.cid import CID, RAW
from ledger.election import Election
from ledger.errors import NotFound
from ledger.intake.service import Ledger
from ledger.results.aggregates import Aggregates
from ledger.store import Database
from tests.support.factories import OTHER_KEY, signed_tally, stand_in_photos, tally_json
from tests.support.intake import RECEIPT_KEY, Clock
from wallets.tally_client import sign_tally


@pytest.fixture
def ledger(database: Database, tmp_path: Path, election: Election) -> Ledger:
    content = LocalBlockStore(tmp_path / "blocks")
    content.put_block(CID.of(RAW, b"board"), b"board")
    content.put_block(CID.of(RAW, b"form"), b"form")
    return stand_in_photos(
        Ledger(
            database=database,
            content=content,
            election=election,
            receipt_key=RECEIPT_KEY,
            batch_max_records=100,
            batch_max_age_seconds=60,
            clock=Clock(),
        )
    )


def report(
    ledger: Ledger, election: Election, unit: str, *, key: bytes = bytes.fromhex("01" * 32), sid: str = "", **votes: int
) -> None:
    """Report ``unit`` with candidate 1 and 2 and party 1 and 2 votes as given."""
    tally = tally_json(election, unit, submission_id=sid or f"agg-{unit}")
    c1, c2, p1, p2 = votes.get("c1", 200), votes.get("c2", 100), votes.get("p1", 150), votes.get("p2", 150)
    tally["constituency"] = {"ballots_cast": c1 + c2 + 10, "votes": {"1": c1, "2": c2}, "invalid": 6, "no_vote": 4}
    tally["party_list"] = {"ballots_cast": p1 + p2 + 10, "votes": {"1": p1, "2": p2}, "invalid": 5, "no_vote": 5}
    ledger.submit_tally(sign_tally(tally, key, election))


def test_constituency_leader_margin_turnout_and_progress(ledger: Ledger, election: Election) -> None:
    aggregates = Aggregates(database=ledger.database, election=election)
    report(ledger, election, "BKK_1-0001", c1=200, c2=100)
    report(ledger, election, "BKK_1-0002", c1=50, c2=120)
    assert aggregates.refresh() == 2
    view = aggregates.view("unofficial")
    bkk1 = view.constituency("BKK_1")
    assert bkk1["units_reporting"] == 2 and bkk1["units_total"] == 251
    assert [(c["number"], c["votes"]) for c in bkk1["candidates"][:2]] == [(1, 250), (2, 220)]
    assert bkk1["leader"]["number"] == 1 and bkk1["margin"] == 30
    assert bkk1["ballots_cast"] == 310 + 180 and bkk1["invalid"] == 12 and bkk1["no_vote"] == 8
    registered = election.polling_unit("BKK_1-0001").registered_voters + election.polling_unit("BKK_1-0002").registered_voters
    assert bkk1["turnout"] == round(490 / registered, 6)
    national = view.national()
    assert national["units_reporting"] == 2 and national["units_total"] == 95_099
    assert view.province("BKK")["units_reporting"] == 2
    assert aggregates.view("certified").national()["units_reporting"] == 0


def test_a_later_report_replaces_the_earlier_one_and_ties_are_reported(ledger: Ledger, election: Election) -> None:
    aggregates = Aggregates(database=ledger.database, election=election)
    report(ledger, election, "BKK_1-0001", c1=200, c2=100)
    aggregates.refresh()
    before = aggregates.view("unofficial").etag("constituency:BKK_1")
    report(ledger, election, "BKK_1-0001", key=OTHER_KEY, sid="agg-second", c1=150, c2=150)
    aggregates.refresh()
    view = aggregates.view("unofficial")
    bkk1 = view.constituency("BKK_1")
    assert bkk1["units_reporting"] == 1
    assert bkk1["leader"] is None and bkk1["tied"] == [1, 2]
    assert view.etag("constituency:BKK_1") != before


def test_party_list_seats_and_house(ledger: Ledger, election: Election) -> None:
    aggregates = Aggregates(database=ledger.database, election=election)
    report(ledger, election, "CMI_1-0001", p1=300, p2=100)
    aggregates.refresh()
    party_list = aggregates.view("unofficial").party_list()
    assert [(p["number"], p["votes"]) for p in party_list["parties"][:2]] == [(1, 300), (2, 100)]
    assert party_list["seats"]["seats_allocated"] + party_list["seats"]["seats_undecided"] == 100
    house = aggregates.view("unofficial").house()
    assert house["units_reporting"] == 1
    csv_text = aggregates.view("unofficial").csv("party_list")
    assert csv_text.splitlines()[0] == "party_number,name,votes,share,seats"


def test_certified_view_counts_only_certified_units(ledger: Ledger, election: Election) -> None:
    aggregates = Aggregates(database=ledger.database, election=election)
    report(ledger, election, "BKK_1-0001")
    aggregates.refresh()
    document = ledger.unit_entries("BKK_1-0001")[0].document
    aggregates.set_certified("BKK_1-0001", document)
    assert aggregates.view("certified").constituency("BKK_1")["units_reporting"] == 1
    aggregates.set_certified("BKK_1-0001", None)
    assert aggregates.view("certified").constituency("BKK_1")["units_reporting"] == 0


def test_unknown_views_and_resources_are_not_found(ledger: Ledger, election: Election) -> None:
    aggregates = Aggregates(database=ledger.database, election=election)
    with pytest.raises(NotFound, match="views are unofficial, certified"):
        aggregates.view("secret")
    with pytest.raises(NotFound):
        aggregates.view("unofficial").render("constituency:NOPE_1")
    with pytest.raises(NotFound):
        aggregates.view("unofficial").csv("house")


def test_the_feed_pages_through_entries_in_order(ledger: Ledger, election: Election) -> None:
    for unit in ("BKK_1-0001", "BKK_1-0002", "BKK_1-0003"):
        ledger.submit_tally(signed_tally(election, unit, submission_id=f"feed-{unit}"))
    items, cursor = ledger.changes(after=0, limit=2)
    assert [i["polling_unit"] for i in items] == ["BKK_1-0001", "BKK_1-0002"]
    items, cursor = ledger.changes(after=cursor, limit=2)
    assert [i["polling_unit"] for i in items] == ["BKK_1-0003"]
    assert ledger.changes(after=cursor) == ([], cursor)
