"""The queries of the review's queues and views, answering with frozen rows.

``ledger.review.queues`` decides who sees what and shapes the answers; the SQL is here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from sqlalchemy import select

from ledger.store.models import Entry
from ledger.store.people import MemberRow
from ledger.store.review_models import Member, PhotoUse, UnitReview
from ledger.store.session import Database

__all__ = [
    "ReportedEntry",
    "UnitReviewRow",
    "flagged_members",
    "open_units",
    "photo_units",
    "unit_entries",
    "unit_review",
    "units_of_status",
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
