"""The queries that read accepted entries, answering with frozen rows.

An :class:`EntryRow` outlives its session, so the facade, proofs and the command line
read an entry without holding a database row; the aggregates read tallies after a cursor
as :class:`CountedEntry`, only the columns they count.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ledger.store.models import Entry
from ledger.store.session import Database

__all__ = ["CountedEntry", "EntryRow", "get_entry", "tallies_after"]


@dataclass(frozen=True, slots=True)
class EntryRow:
    """One accepted ledger entry (a tally record or a decision), as stored."""

    id: int
    cid: str
    kind: str
    election: str
    polling_unit: str
    constituency_id: str
    signer: str
    submission_id: str
    content_digest: str
    leaf_hash: str
    received_at: datetime
    seal_deadline: datetime
    document: dict[str, Any]
    receipt: dict[str, Any]
    batch_id: int | None
    batch_position: int | None
    tree_index: int | None


_ENTRY_COLUMNS = tuple(getattr(Entry, field.name) for field in fields(EntryRow))


@dataclass(frozen=True, slots=True)
class CountedEntry:
    """What the aggregates count of a tally: where it was reported and its numbers."""

    id: int
    cid: str
    polling_unit: str
    constituency_id: str
    document: dict[str, Any]


def get_entry(database: Database, cid: str) -> EntryRow | None:
    with database.session() as session:
        row = session.execute(select(*_ENTRY_COLUMNS).where(Entry.cid == cid)).one_or_none()
    return None if row is None else EntryRow(*row)


def tallies_after(session: Session, cursor: int, *, limit: int) -> list[CountedEntry]:
    """The tallies accepted after entry id ``cursor``, oldest first, at most ``limit``."""
    query = (
        select(Entry.id, Entry.cid, Entry.polling_unit, Entry.constituency_id, Entry.document)
        .where(Entry.id > cursor, Entry.kind == "tally")
        .order_by(Entry.id)
        .limit(limit)
    )
    return [CountedEntry(*row) for row in session.execute(query)]
