"""Accepted entries: written as a group, read back as frozen rows."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import text

from ledger.store import Database
from ledger.store.entries import (
    TAKEN_CHUNK,
    EntryRow,
    entries_after,
    entry_documents,
    get_entry,
    insert_entries,
    newest_entry_id,
    serialize_entry_ids,
    taken_submissions,
    tallies_after,
    unit_entries,
)
from tests.support.store import SIGNER, WHEN, add_entries


def test_an_entry_reads_back_whole_and_frozen(database: Database) -> None:
    add_entries(database, 2)
    row = get_entry(database, "bafy-tally-1")
    assert row is not None
    assert (row.cid, row.polling_unit, row.signer, row.document, row.batch_id) == (
        "bafy-tally-1",
        "BKK_1-0002",
        SIGNER,
        {"n": 1},
        None,
    )
    assert row.received_at.replace(tzinfo=WHEN.tzinfo) > WHEN
    with pytest.raises(dataclasses.FrozenInstanceError):
        row.document = {}  # type: ignore[misc]
    assert get_entry(database, "bafy-nothing") is None


def test_the_aggregates_read_tallies_after_their_cursor_and_nothing_else(database: Database) -> None:
    add_entries(database, 3)
    add_entries(database, 2, kind="decision")
    with database.session() as session:
        first = tallies_after(session, 0, limit=2)
        rest = tallies_after(session, first[-1].id, limit=10)
    assert [entry.cid for entry in first + rest] == ["bafy-tally-0", "bafy-tally-1", "bafy-tally-2"]
    assert rest[0].document == {"n": 2} and rest[0].constituency_id == "BKK_1"


def _entry(cid: str, polling_unit: str, *, kind: str = "decision", **document: Any) -> dict[str, Any]:
    """An entries row as ``Ledger.commit`` hands it to ``insert_entries``."""
    return {
        "cid": cid,
        "kind": kind,
        "election": "th2566",
        "polling_unit": polling_unit,
        "constituency_id": "BKK_1",
        "signer": SIGNER,
        "submission_id": cid,
        "content_digest": "0x" + "ab" * 32,
        "leaf_hash": "0x" + "00" * 32,
        "received_at": WHEN,
        "seal_deadline": WHEN + timedelta(minutes=5),
        "document": document,
        "receipt": {"record_cid": cid},
    }


def test_a_unit_lists_its_entries_oldest_first_as_frozen_rows(database: Database) -> None:
    add_entries(database, 3)
    with database.session() as session:
        insert_entries(session, [_entry("bafy-certify", "BKK_1-0002", action="certify")], {})
    rows = unit_entries(database, "BKK_1-0002")
    assert [(row.cid, row.kind) for row in rows] == [("bafy-tally-1", "tally"), ("bafy-certify", "decision")]
    assert all(isinstance(row, EntryRow) for row in rows)
    assert unit_entries(database, "BKK_1-0099") == []


def test_the_feed_reads_entries_after_its_cursor_and_the_certified_decisions_up_to_an_id(database: Database) -> None:
    with database.session() as session:
        assert newest_entry_id(session) is None
    add_entries(database, 2)
    decisions = [
        _entry("bafy-certify", "BKK_1-0001", action="certify", record={"/": "bafy-tally-0"}),
        _entry("bafy-flag", "BKK_1-0001", action="flag"),
        _entry("bafy-exclude", "BKK_1-0002", action="exclude"),
    ]
    with database.session() as session:
        insert_entries(session, decisions, {})
    with database.session() as session:
        newest = newest_entry_id(session)
        everything = entries_after(session, 0, limit=10)
        later = entries_after(session, everything[1].id, limit=2)
        certified = entries_after(session, 0, limit=10, up_to=newest, actions=("certify", "exclude"))
        below = entries_after(session, 0, limit=10, up_to=everything[2].id, actions=("certify", "exclude"))
        documents = entry_documents(session, ["bafy-tally-0", "bafy-nothing"])
        assert entry_documents(session, []) == {}
    assert [row.cid for row in everything] == ["bafy-tally-0", "bafy-tally-1", "bafy-certify", "bafy-flag", "bafy-exclude"]
    assert newest == everything[-1].id
    assert [row.cid for row in later] == ["bafy-certify", "bafy-flag"]
    assert [row.cid for row in certified] == ["bafy-certify", "bafy-exclude"]
    assert [row.cid for row in below] == ["bafy-certify"]
    assert documents == {"bafy-tally-0": {"n": 0}}


def test_taken_submissions_answer_the_digest_and_receipt_of_each_taken_pair(database: Database) -> None:
    rows = [_entry(f"bafy-{number}", "BKK_1-0001", kind="tally", n=number) for number in range(TAKEN_CHUNK + 5)]
    with database.session() as session:
        serialize_entry_ids(session)
        insert_entries(
            session,
            rows,
            {"photo_uses": [{"photo_cid": "bafy-board", "record_cid": "bafy-0", "unit": "BKK_1-0001"}]},
        )
    keys = [(SIGNER, f"bafy-{number}") for number in range(0, TAKEN_CHUNK + 5, 2)] + [(SIGNER, "bafy-free"), ("0x00", "bafy-1")]
    with database.session() as session:
        taken = taken_submissions(session, keys)  # more than one statement's worth
        uses = session.execute(text("SELECT photo_cid, record_cid, unit FROM photo_uses")).all()
        assert taken_submissions(session, []) == {}
    assert set(taken) == set(keys[:-2])
    assert taken[(SIGNER, "bafy-4")] == ("0x" + "ab" * 32, {"record_cid": "bafy-4"})
    assert [tuple(use) for use in uses] == [("bafy-board", "bafy-0", "BKK_1-0001")]
    with database.session() as session:  # the ids follow the order of the rows
        assert [row.cid for row in entries_after(session, 0, limit=3)] == ["bafy-0", "bafy-1", "bafy-2"]
