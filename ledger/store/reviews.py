"""The queries of the review, answering with frozen rows or plain values: its queues and
views (``ledger.review.queues``), the index the decision replay keeps
(``ledger.review.replay``), the decisions already taken (``ledger.review.decisions``) and the
units' places (``ledger.review.locations``). The rules stay there; the SQL is here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from sqlalchemy import select

from ledger.store.models import Entry
from ledger.store.people import MemberRow
from ledger.store.review_models import ConstituencyReview, Member, PhotoUse, UnitLocation, UnitReview
from ledger.store.session import Database

__all__ = [
    "ReportedEntry",
    "UnitReviewRow",
    "decision_exists",
    "decisions_after",
    "flagged_members",
    "open_units",
    "photo_units",
    "reviewed_units",
    "set_unit_location",
    "store_unit_locations",
    "tally_record",
    "unit_entries",
    "unit_review",
    "units_of_status",
    "write_review_state",
]


@dataclass(frozen=True, slots=True)
class UnitReviewRow:
    """A unit's entry in the review index (``unit_reviews``)."""

    unit: str
    constituency_id: str
    outcome: str
    status: str
    flags: list[Any]
    accepted_cid: str | None
    certified_cid: str | None
    report_count: int
    first_report_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class ReportedEntry:
    """An entry of a unit, with the organisation and volunteer id of its signer (``None``
    when the signer is not a member: the ledger's verifier key, say)."""

    cid: str
    kind: str
    received_at: datetime
    document: dict[str, Any]
    organisation_id: str | None
    public_id: str | None


def _review_row(row: UnitReview) -> UnitReviewRow:
    return UnitReviewRow(**{field.name: getattr(row, field.name) for field in fields(UnitReviewRow)})


def open_units(database: Database, constituencies: Sequence[str], *, limit: int) -> list[UnitReviewRow]:
    """Open units of these constituencies that wait for a decision or a second report,
    first reported first, at most ``limit``."""
    with database.session() as session:
        rows = session.scalars(
            select(UnitReview)
            .where(
                UnitReview.constituency_id.in_(constituencies),
                UnitReview.status == "open",
                UnitReview.outcome.in_(("needs_review", "waiting")),
            )
            .order_by(UnitReview.first_report_at)
            .limit(limit)
        )
        return [_review_row(row) for row in rows]


def units_of_status(database: Database, status: str, *, limit: int) -> list[UnitReviewRow]:
    """Units in ``status``, least recently changed first, at most ``limit``."""
    with database.session() as session:
        rows = session.scalars(select(UnitReview).where(UnitReview.status == status).order_by(UnitReview.updated_at).limit(limit))
        return [_review_row(row) for row in rows]


def photo_units(database: Database, photo_cid: str) -> set[str]:
    """The units reports used a photo for."""
    with database.session() as session:
        return set(session.scalars(select(PhotoUse.unit).where(PhotoUse.photo_cid == photo_cid)))


def unit_review(database: Database, unit_id: str) -> UnitReviewRow | None:
    with database.session() as session:
        row = session.get(UnitReview, unit_id)
        return None if row is None else _review_row(row)


def unit_entries(database: Database, unit_id: str) -> list[ReportedEntry]:
    """Every entry of a unit (tallies and decisions), oldest first, with its signer's membership."""
    with database.session() as session:
        rows = session.execute(
            select(Entry.cid, Entry.kind, Entry.received_at, Entry.document, Member.organisation_id, Member.public_id)
            .outerjoin(Member, Member.address == Entry.signer)
            .where(Entry.polling_unit == unit_id)
            .order_by(Entry.id)
        )
        return [ReportedEntry(*row) for row in rows]


def flagged_members(database: Database, organisation_id: str | None = None) -> list[MemberRow]:
    """Members flagged for repeated rejections (of one organisation, when given)."""
    with database.session() as session:
        query = select(Member).where(Member.flagged_at.is_not(None))
        if organisation_id:
            query = query.where(Member.organisation_id == organisation_id)
        return [
            MemberRow(**{field.name: getattr(row, field.name) for field in fields(MemberRow)}) for row in session.scalars(query)
        ]


# -- the replay's index ----------------------------------------------------------------


def tally_record(database: Database, cid: str) -> tuple[str, dict[str, Any]] | None:
    """``(polling unit, document)`` of the tally record ``cid``; ``None`` if there is none."""
    with database.session() as session:
        row = session.execute(
            select(Entry.polling_unit, Entry.document).where(Entry.cid == cid, Entry.kind == "tally")
        ).one_or_none()
    return None if row is None else (row.polling_unit, row.document)


def decisions_after(database: Database, cursor: int, *, limit: int) -> list[tuple[int, str, Any]]:
    """``(entry id, cid, document)`` of the decisions accepted after entry id ``cursor``,
    oldest first, at most ``limit``."""
    with database.session() as session:
        rows = session.execute(
            select(Entry.id, Entry.cid, Entry.document)
            .where(Entry.kind == "decision", Entry.id > cursor)
            .order_by(Entry.id)
            .limit(limit)
        )
        return [(row.id, row.cid, row.document) for row in rows]


def write_review_state(
    database: Database,
    units: Mapping[str, tuple[str, str | None, str | None]],
    constituencies: Mapping[str, bool],
    *,
    documents_of: Sequence[str],
    now: datetime,
) -> dict[str, dict[str, Any]]:
    """In one transaction: each unit's ``(status, accepted, certified)`` into its review row
    (units without one are left out), each constituency's certification into its row, and
    the documents of the records ``documents_of`` read back (those that are stored)."""
    documents: dict[str, dict[str, Any]] = {}
    unit_ids = list(units)
    with database.session() as session:
        for start in range(0, len(unit_ids), 500):
            for row in session.scalars(select(UnitReview).where(UnitReview.unit.in_(unit_ids[start : start + 500]))):
                row.status, row.accepted_cid, row.certified_cid = units[row.unit]
                row.updated_at = now
        for start in range(0, len(documents_of), 500):
            rows = session.execute(select(Entry.cid, Entry.document).where(Entry.cid.in_(documents_of[start : start + 500])))
            documents.update((row.cid, row.document) for row in rows)
        for constituency_id, certified in constituencies.items():
            review = session.get(ConstituencyReview, constituency_id)
            if review is None:
                session.add(ConstituencyReview(constituency_id=constituency_id, certified=certified, updated_at=now))
            else:
                review.certified, review.updated_at = certified, now
    return documents


def decision_exists(database: Database, decider: str, decision_id: str) -> bool:
    """Whether ``decider`` has a decision of id ``decision_id`` in the ledger."""
    with database.session() as session:
        found = session.scalar(
            select(Entry.id).where(Entry.kind == "decision", Entry.signer == decider, Entry.submission_id == decision_id)
        )
    return found is not None


# -- unit locations ------------------------------------------------------------------


def store_unit_locations(
    database: Database, rows: Sequence[tuple[str, float, float, str | None]]
) -> tuple[dict[str, int], list[str]]:
    """Store ``(unit, latitude, longitude, name)`` rows, replacing what was known: the counts
    added, changed and unchanged, and the units whose place is new or moved."""
    counts = {"added": 0, "changed": 0, "unchanged": 0}
    moved: list[str] = []
    with database.session() as session:
        for start in range(0, len(rows), 500):
            chunk = rows[start : start + 500]
            known = {
                row.unit: row
                for row in session.scalars(select(UnitLocation).where(UnitLocation.unit.in_([unit for unit, *_ in chunk])))
            }
            for unit, latitude, longitude, name in chunk:
                existing = known.get(unit)
                if existing is None:
                    session.add(UnitLocation(unit=unit, latitude=latitude, longitude=longitude, name=name))
                    counts["added"] += 1
                    moved.append(unit)
                elif (existing.latitude, existing.longitude, existing.name) != (latitude, longitude, name):
                    if (existing.latitude, existing.longitude) != (latitude, longitude):
                        moved.append(unit)
                    existing.latitude, existing.longitude, existing.name = latitude, longitude, name
                    counts["changed"] += 1
                else:
                    counts["unchanged"] += 1
    return counts, moved


def reviewed_units(database: Database, units: Sequence[str]) -> list[str]:
    """Those of ``units`` that have a review row (that is, reports)."""
    found: list[str] = []
    with database.session() as session:
        for start in range(0, len(units), 500):
            found += session.scalars(select(UnitReview.unit).where(UnitReview.unit.in_(units[start : start + 500])))
    return found


def set_unit_location(database: Database, unit_id: str, latitude: float, longitude: float) -> None:
    with database.session() as session:
        row = session.get(UnitLocation, unit_id)
        if row is None:
            session.add(UnitLocation(unit=unit_id, latitude=latitude, longitude=longitude))
        else:
            row.latitude, row.longitude = latitude, longitude
