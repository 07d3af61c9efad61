"""The queries of accepted entries: writing a group of them, and reading them as frozen rows.

An :class:`EntryRow` outlives its session, so the facade, proofs, the change feed and the
command line read an entry without holding a database row; the aggregates read tallies
after a cursor as :class:`CountedEntry`, only the columns they count.

Writing is the hot path of intake (``Ledger.commit``, measured by the national bench): a
group's taken submissions are looked up in one statement per ``TAKEN_CHUNK`` pairs, and its
rows and index rows are inserted in one statement per table, whatever the group's size.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import TextualSelect, func, insert, select, text
from sqlalchemy.orm import Session

from ledger.store.models import Base, Entry
from ledger.store.session import Database

__all__ = [
    "TAKEN_CHUNK",
    "CountedEntry",
    "EntryRow",
    "entries_after",
    "entry_documents",
    "get_entry",
    "insert_entries",
    "kind_documents_after",
    "newest_entry_id",
    "serialize_entry_ids",
    "signer_entries",
    "tallies_after",
    "taken_submissions",
    "unit_entries",
]

TAKEN_CHUNK = 200
"""At most this many (signer, submission id) pairs are looked up in one statement."""

Taken = dict[tuple[str, str], tuple[str, dict[str, Any]]]
"""(signer, submission id) → (content digest, receipt) of the entry that took it."""


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


def kind_documents_after(database: Database, kind: str, cursor: int) -> list[tuple[int, str, dict[str, Any]]]:
    """(id, CID, document) of every entry of ``kind`` after id ``cursor``, oldest first."""
    with database.session() as session:
        query = select(Entry.id, Entry.cid, Entry.document).where(Entry.id > cursor, Entry.kind == kind).order_by(Entry.id)
        return [(int(row[0]), str(row[1]), dict(row[2])) for row in session.execute(query)]


def signer_entries(database: Database, signer: str, *, kind: str, limit: int) -> list[EntryRow]:
    """The newest ``limit`` entries of ``kind`` signed by ``signer``, newest first."""
    with database.session() as session:
        query = select(*_ENTRY_COLUMNS).where(Entry.signer == signer, Entry.kind == kind).order_by(Entry.id.desc()).limit(limit)
        return [EntryRow(*row) for row in session.execute(query)]


def unit_entries(database: Database, polling_unit: str) -> list[EntryRow]:
    """Every entry of ``polling_unit`` (its reports and the decisions on it), oldest first."""
    with database.session() as session:
        query = select(*_ENTRY_COLUMNS).where(Entry.polling_unit == polling_unit).order_by(Entry.id)
        return [EntryRow(*row) for row in session.execute(query)]


def newest_entry_id(session: Session) -> int | None:
    """The id of the newest entry visible now (ids become visible in order), if any."""
    return session.scalar(select(func.max(Entry.id)))


def entries_after(
    session: Session,
    cursor: int,
    *,
    limit: int,
    up_to: int | None = None,
    actions: Sequence[str] | None = None,
    kinds: Sequence[str] | None = None,
) -> list[EntryRow]:
    """The entries after id ``cursor``, oldest first, at most ``limit`` (the change feed);
    with ``kinds``, only entries of those kinds.

    With ``up_to`` (and ``actions``), only the decisions up to that id whose action is one
    of ``actions``: filtered in the database, so that a feed of a few decisions among many
    reports reads only those."""
    query = select(*_ENTRY_COLUMNS).where(Entry.id > cursor)
    if kinds is not None:
        query = query.where(Entry.kind.in_(kinds))
    if up_to is not None:
        query = query.where(Entry.id <= up_to, Entry.kind == "decision", Entry.document["action"].as_string().in_(actions or ()))
    return [EntryRow(*row) for row in session.execute(query.order_by(Entry.id).limit(limit))]


def entry_documents(session: Session, cids: Collection[str]) -> dict[str, dict[str, Any]]:
    """The documents of the entries ``cids`` that are in the ledger, by CID."""
    if not cids:
        return {}
    return dict(session.execute(select(Entry.cid, Entry.document).where(Entry.cid.in_(cids))).tuples().all())


# -- writing a group of entries (Ledger.commit) ------------------------------------------


def serialize_entry_ids(session: Session) -> None:
    """On PostgreSQL, take the transaction lock that serializes inserts of entries, so that
    ids become visible in order: feed and aggregate cursors over ids then never skip an
    entry committed late. (SQLite has one writer at a time already.)"""
    if session.bind is not None and session.bind.dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(2566)"))


@lru_cache(maxsize=TAKEN_CHUNK)
def _taken_statement(count: int) -> TextualSelect:
    """Which of ``count`` (signer, submission id) pairs are taken: an OR of
    ``(signer = :sN AND submission_id = :eN)``, one index probe per pair. (SQLite answers a
    row-value IN list by scanning the whole index, per group.) Written as text, one per
    size, because building and caching the same expression with SQLAlchemy's operators
    for every group cost as much as the rest of the commit."""
    table = Entry.__table__
    where = " OR ".join(f"(signer = :s{n} AND submission_id = :e{n})" for n in range(count))
    return text(f"SELECT signer, submission_id, content_digest, receipt FROM {table.name} WHERE {where}").columns(
        table.c.signer, table.c.submission_id, table.c.content_digest, table.c.receipt
    )


def taken_submissions(session: Session, keys: Sequence[tuple[str, str]]) -> Taken:
    """Which of ``keys`` (signer, submission id) are taken already, each with the content
    digest and receipt of its entry: one statement per ``TAKEN_CHUNK`` keys."""
    taken: Taken = {}
    for start in range(0, len(keys), TAKEN_CHUNK):
        chunk = keys[start : start + TAKEN_CHUNK]
        parameters = {}
        for position, (signer, entry_id) in enumerate(chunk):
            parameters[f"s{position}"] = signer
            parameters[f"e{position}"] = entry_id
        for row in session.execute(_taken_statement(len(chunk)), parameters):
            taken[(row.signer, row.submission_id)] = (row.content_digest, row.receipt)
    return taken


def insert_entries(
    session: Session, entries: Sequence[Mapping[str, Any]], index: Mapping[str, Sequence[Mapping[str, Any]]]
) -> None:
    """Insert ``entries`` (rows of ``entries``, in order: their ids follow it) and then the
    rows of the index tables that name them, one statement per table."""
    if entries:
        session.execute(insert(Entry.__table__), entries)
    for named, values in index.items():
        session.execute(insert(Base.metadata.tables[named]), values)
