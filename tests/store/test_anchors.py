"""The queries of anchoring: a batch goes sealed → sending → anchored, and back on a reorg,
and the worker reads it as a frozen row that outlives its session."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest

from ledger.store import Batch, Database, batches
from ledger.store import anchors as store
from tests.support.store import WHEN, add_entries

SIGNED = {"tx_hash": "0x" + "aa" * 32, "nonce": 4, "raw": "0x02f8"}


def seal(database: Database, batch_count: int) -> None:
    """``batch_count`` sealed batches of one entry each, ids 1…"""
    add_entries(database, batch_count)
    with database.session() as session:
        for entry in batches.pending_entries(session, limit=batch_count):
            batches.insert_batch(
                session,
                batch_id=batches.next_batch_id(session),
                root="0x" + f"{entry.id:02x}" * 32,
                sealed_at=WHEN,
                manifest_cid=f"bafy-manifest-{entry.id}",
                tree=bytes(32),
                members=[(entry.id, 0)],
            )


def confirm(database: Database, batch_id: int) -> None:
    with database.session() as session:
        store.record_anchor_confirmed(
            session,
            batch_id,
            chain_id=31337,
            contract="0x" + "c0" * 20,
            tx_hash=f"0xtx{batch_id}",
            block_number=10 + batch_id,
            block_hash=f"0xblock{batch_id}",
            anchored_at=WHEN + timedelta(minutes=batch_id),
        )


def test_nothing_to_anchor_in_an_empty_ledger(database: Database) -> None:
    assert store.lowest_unanchored_batch(database) is None
    assert store.last_anchored_batch_id(database) is None


def test_the_lowest_sealed_batch_reads_back_as_a_frozen_row(database: Database) -> None:
    seal(database, 2)
    batch = store.lowest_unanchored_batch(database)
    assert batch == store.UnanchoredBatch(1, "0x" + "01" * 32, 1, "bafy-manifest-1", "sealed", None, None, None)
    with pytest.raises(dataclasses.FrozenInstanceError):
        batch.status = "sending"  # type: ignore[misc]


def test_a_signed_anchor_is_stored_and_read_back_before_it_is_sent(database: Database) -> None:
    seal(database, 1)
    with database.session() as session:
        store.record_anchor_signed(session, 1, anchor_pending=SIGNED, tx_hash=SIGNED["tx_hash"], nonce=4, sent_at=WHEN)
    batch = store.lowest_unanchored_batch(database)
    assert batch is not None
    assert (batch.status, batch.anchor_tx, batch.anchor_sent_at) == ("sending", SIGNED["tx_hash"], WHEN)
    assert batch.anchor_pending == SIGNED
    with database.session() as session:
        assert session.get(Batch, 1).anchor_nonce == 4  # type: ignore[union-attr]


def test_an_anchor_seen_on_chain_marks_the_batch_sending(database: Database) -> None:
    seal(database, 1)
    with database.session() as session:
        store.record_anchor_seen(session, 1, tx_hash="0xseen")
    batch = store.lowest_unanchored_batch(database)
    assert batch is not None and (batch.status, batch.anchor_tx, batch.anchor_pending) == ("sending", "0xseen", None)


def test_a_confirmed_anchor_says_where_and_the_next_batch_comes_up(database: Database) -> None:
    seal(database, 2)
    with database.session() as session:
        store.record_anchor_signed(session, 1, anchor_pending=SIGNED, tx_hash="0xtx1", nonce=4, sent_at=WHEN)
    confirm(database, 1)
    assert store.last_anchored_batch_id(database) == 1
    next_batch = store.lowest_unanchored_batch(database)
    assert next_batch is not None and next_batch.id == 2
    anchored = batches.get_batch(database, 1)
    assert anchored is not None and anchored.anchor == {
        "chain_id": 31337,
        "contract": "0x" + "c0" * 20,
        "batch_id": 1,
        "tx_hash": "0xtx1",
        "block_number": 11,
        "block_hash": "0xblock1",
    }
    with database.session() as session:
        row = session.get(Batch, 1)
        assert row is not None and row.anchor_pending is None and row.anchored_at == WHEN + timedelta(minutes=1)


def test_anchors_the_chain_lost_are_rolled_back_from_the_given_batch_on(database: Database) -> None:
    seal(database, 3)
    for batch_id in (1, 2, 3):
        confirm(database, batch_id)
    with database.session() as session:
        # batch 3 still keeps its signed transaction (the worker clears it when it confirms)
        session.get(Batch, 3).anchor_pending = SIGNED  # type: ignore[union-attr]
    with database.session() as session:
        assert store.roll_back_anchors(session, from_batch_id=2) == 2
    assert store.last_anchored_batch_id(database) == 1
    rows = {row.id: row for row in batches.list_batches(database)}
    assert rows[1].status == "anchored" and rows[1].anchor_tx == "0xtx1"
    assert (rows[2].status, rows[3].status) == ("sealed", "sending")
    for batch_id in (2, 3):
        assert (rows[batch_id].anchor_tx, rows[batch_id].anchor_block, rows[batch_id].anchor_block_hash) == (None, None, None)
    with database.session() as session:
        assert session.get(Batch, 2).anchored_at is None  # type: ignore[union-attr]
        assert store.roll_back_anchors(session, from_batch_id=4) == 0
