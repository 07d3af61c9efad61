"""The queries of sealing: the entries waiting for a batch, and sealed batches as frozen rows.

Nothing above the store sees a ``Batch`` model or builds this SQL: sealing asks for the
pending entries and writes a batch through these functions, and readers (proofs, the
facade's views, ``tally batch list``) get :class:`BatchRow`, which outlives its session.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from ledger.store.models import Batch, Entry
from ledger.store.session import Database

__all__ = ["BatchRow", "PendingEntry", "get_batch", "insert_batch", "list_batches", "next_batch_id", "pending_entries"]


@dataclass(frozen=True, slots=True)
class PendingEntry:
    """An accepted entry that is in no batch yet: what its leaf is made of."""

    id: int
    cid: str
    polling_unit: str
    signer: str
    received_at: datetime


@dataclass(frozen=True, slots=True)
class BatchRow:
    """A sealed batch and, once anchored, where its root sits on chain."""

    id: int
    root: str
    record_count: int
    sealed_at: datetime
    manifest_cid: str
    tree: bytes
    status: str
    anchor_chain_id: int | None
    anchor_contract: str | None
    anchor_tx: str | None
    anchor_block: int | None
    anchor_block_hash: str | None

    @property
    def anchor(self) -> dict[str, object] | None:
        """Where the root is anchored (as proofs and the API name it), once it is."""
        if self.status != "anchored":
            return None
        return {
            "chain_id": self.anchor_chain_id,
            "contract": self.anchor_contract,
            "batch_id": self.id,
            "tx_hash": self.anchor_tx,
            "block_number": self.anchor_block,
            "block_hash": self.anchor_block_hash,
        }

    @classmethod
    def of(cls, row: Batch) -> BatchRow:
        return cls(
            row.id,
            row.root,
            row.record_count,
            row.sealed_at,
            row.manifest_cid,
            row.tree,
            row.status,
            row.anchor_chain_id,
            row.anchor_contract,
            row.anchor_tx,
            row.anchor_block,
            row.anchor_block_hash,
        )


def pending_entries(session: Session, *, limit: int, leave_out: Sequence[str] = ()) -> list[PendingEntry]:
    """The oldest ``limit`` entries in no batch, in the order they were accepted, without
    the CIDs of ``leave_out`` (entries set aside must not hold back those behind them)."""
    query = select(Entry.id, Entry.cid, Entry.polling_unit, Entry.signer, Entry.received_at).where(Entry.batch_id.is_(None))
    if leave_out:
        query = query.where(Entry.cid.not_in(list(leave_out)))
    return [PendingEntry(*row) for row in session.execute(query.order_by(Entry.id).limit(limit))]


def insert_batch(
    session: Session,
    *,
    root: str,
    sealed_at: datetime,
    manifest_cid: str,
    tree: bytes,
    members: Sequence[tuple[int, int]],
    batch_id: int,
) -> None:
    """Write batch ``batch_id`` and put its members in it: ``(entry id, tree index)`` in batch order."""
    session.add(
        Batch(
            id=batch_id,
            root=root,
            record_count=len(members),
            sealed_at=sealed_at,
            manifest_cid=manifest_cid,
            tree=tree,
            status="sealed",
        )
    )
    session.flush()
    session.execute(
        update(Entry),
        [
            {"id": entry_id, "batch_id": batch_id, "batch_position": position, "tree_index": tree_index}
            for position, (entry_id, tree_index) in enumerate(members)
        ],
    )


def next_batch_id(session: Session) -> int:
    return (session.scalar(select(func.max(Batch.id))) or 0) + 1


def get_batch(database: Database, batch_id: int) -> BatchRow | None:
    with database.session() as session:
        row = session.get(Batch, batch_id)
        return None if row is None else BatchRow.of(row)


def list_batches(database: Database, *, offset: int = 0, limit: int = 100) -> list[BatchRow]:
    with database.session() as session:
        return [BatchRow.of(row) for row in session.scalars(select(Batch).order_by(Batch.id).offset(offset).limit(limit))]
