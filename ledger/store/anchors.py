"""The queries of anchoring: the batch to anchor next, and each step of its anchor's life.

Crash-safety critical. The anchoring worker (:mod:`ledger.sealing.anchoring`) moves a batch
sealed → sending → anchored, and back on a reorg; the order of its commits is what makes
it safe (the signed transaction is committed before it is sent). So the writes here take
the caller's session and never commit: the worker opens each transaction, and its
boundaries stay where they can be read, next to the chain calls they guard. Reads take
the :class:`Database` and answer an :class:`UnanchoredBatch`, which outlives its session.

The writes load the batch and set its attributes (as the worker always did), so the ORM
writes the same values: ``anchor_pending`` cleared to JSON ``null``, read back as ``None``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ledger.store.models import Batch
from ledger.store.session import Database

__all__ = [
    "UnanchoredBatch",
    "last_anchored_batch_id",
    "lowest_unanchored_batch",
    "record_anchor_confirmed",
    "record_anchor_seen",
    "record_anchor_signed",
    "roll_back_anchors",
]


@dataclass(frozen=True, slots=True)
class UnanchoredBatch:
    """A batch whose anchor is not confirmed yet: what it anchors, and how far its anchor got.

    ``anchor_pending`` is the signed transaction (``SignedAnchor.to_json()``), stored before
    it was sent; ``anchor_tx`` its hash, or that of the anchor the chain was seen to hold."""

    id: int
    root: str
    record_count: int
    manifest_cid: str
    status: str
    anchor_tx: str | None
    anchor_pending: dict[str, Any] | None
    anchor_sent_at: datetime | None


_UNANCHORED_COLUMNS = (
    Batch.id,
    Batch.root,
    Batch.record_count,
    Batch.manifest_cid,
    Batch.status,
    Batch.anchor_tx,
    Batch.anchor_pending,
    Batch.anchor_sent_at,
)


def lowest_unanchored_batch(database: Database) -> UnanchoredBatch | None:
    """The batch with the lowest id that is not anchored (sealed or sending), if any."""
    with database.session() as session:
        query = select(*_UNANCHORED_COLUMNS).where(Batch.status != "anchored").order_by(Batch.id).limit(1)
        row = session.execute(query).first()
    return None if row is None else UnanchoredBatch(*row)


def last_anchored_batch_id(database: Database) -> int | None:
    """The highest id of a batch recorded as anchored, or None when none is."""
    with database.session() as session:
        return session.scalar(select(func.max(Batch.id)).where(Batch.status == "anchored"))


def _batch(session: Session, batch_id: int) -> Batch:
    row = session.get(Batch, batch_id)
    assert row is not None
    return row


def record_anchor_signed(
    session: Session, batch_id: int, *, anchor_pending: dict[str, Any], tx_hash: str, nonce: int, sent_at: datetime
) -> None:
    """Store the signed anchor transaction of ``batch_id`` (status sending); the caller
    commits it before sending the transaction."""
    row = _batch(session, batch_id)
    row.status = "sending"
    row.anchor_pending = anchor_pending
    row.anchor_tx = tx_hash
    row.anchor_nonce = nonce
    row.anchor_sent_at = sent_at


def record_anchor_seen(session: Session, batch_id: int, *, tx_hash: str) -> None:
    """The chain holds the anchor of ``batch_id`` in ``tx_hash``, not yet final (status sending)."""
    row = _batch(session, batch_id)
    row.status = "sending"
    row.anchor_tx = tx_hash


def record_anchor_confirmed(
    session: Session,
    batch_id: int,
    *,
    chain_id: int,
    contract: str,
    tx_hash: str,
    block_number: int,
    block_hash: str,
    anchored_at: datetime,
) -> None:
    """The anchor of ``batch_id`` is final: record where it is (status anchored) and let go
    of the signed transaction."""
    row = _batch(session, batch_id)
    row.status = "anchored"
    row.anchor_chain_id = chain_id
    row.anchor_contract = contract
    row.anchor_tx = tx_hash
    row.anchor_block = block_number
    row.anchor_block_hash = block_hash
    row.anchored_at = anchored_at
    row.anchor_pending = None


def roll_back_anchors(session: Session, *, from_batch_id: int) -> int:
    """Forget the anchors of the batches from ``from_batch_id`` on that are recorded as
    anchored (the chain no longer holds them): each goes back to sending if it keeps a
    signed transaction, else to sealed. Answers how many were rolled back."""
    rows = session.scalars(select(Batch).where(Batch.id >= from_batch_id, Batch.status == "anchored")).all()
    for row in rows:
        row.status = "sending" if row.anchor_pending else "sealed"
        row.anchor_tx = row.anchor_block = row.anchor_block_hash = row.anchored_at = None
    return len(rows)
