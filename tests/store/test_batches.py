"""The queries of sealing return frozen rows that outlive their session."""

from __future__ import annotations

import dataclasses

import pytest

from ledger.store import Database, Entry
from ledger.store import batches as store
from tests.support.store import SIGNER, WHEN, add_entries


def test_pending_entries_come_oldest_first_without_those_left_out(database: Database) -> None:
    add_entries(database, 4)
    with database.session() as session:
        pending = store.pending_entries(session, limit=3, leave_out=["bafy-tally-1"])
    assert [entry.cid for entry in pending] == ["bafy-tally-0", "bafy-tally-2", "bafy-tally-3"]
    assert pending[0].received_at == WHEN and pending[0].signer == SIGNER


def test_a_written_batch_reads_back_as_a_frozen_row_with_its_members(database: Database) -> None:
    add_entries(database, 3)
    with database.session() as session:
        pending = store.pending_entries(session, limit=10)
        batch_id = store.next_batch_id(session)
        store.insert_batch(
            session,
            batch_id=batch_id,
            root="0x" + "ab" * 32,
            sealed_at=WHEN,
            manifest_cid="bafy-manifest",
            tree=bytes(32 * 5),
            members=[(entry.id, 4 - position) for position, entry in enumerate(pending)],
        )
    assert batch_id == 1
    row = store.get_batch(database, 1)
    assert row is not None and row.record_count == 3 and row.status == "sealed" and row.anchor is None
    with pytest.raises(dataclasses.FrozenInstanceError):
        row.status = "anchored"  # type: ignore[misc]
    assert store.list_batches(database) == [row]
    assert store.get_batch(database, 2) is None
    with database.session() as session:
        assert store.pending_entries(session, limit=10) == []
        assert store.next_batch_id(session) == 2
        placed = sorted((e.batch_position, e.tree_index) for e in session.query(Entry))
    assert placed == [(0, 4), (1, 3), (2, 2)]


def test_an_anchored_batch_says_where() -> None:
    row = store.BatchRow(7, "0x01", 1, WHEN, "bafy", b"", "anchored", 31337, "0xC0", "0xtx", 12, "0xblock")
    assert row.anchor == {
        "chain_id": 31337,
        "contract": "0xC0",
        "batch_id": 7,
        "tx_hash": "0xtx",
        "block_number": 12,
        "block_hash": "0xblock",
    }
