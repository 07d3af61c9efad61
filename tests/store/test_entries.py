"""Accepted entries read back as frozen rows."""

from __future__ import annotations

import dataclasses

import pytest

from ledger.store import Database
from ledger.store.entries import get_entry, tallies_after
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
