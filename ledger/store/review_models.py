"""Models of the volunteer hierarchy and the review of counts. The rules live in
``ledger.review`` (its parts composed by ``ledger.review.service``) and ``ledger.core.decision``,
the queries in ``ledger.store.reviews`` and ``ledger.store.screening``; decisions themselves are
ledger entries (``entries.kind == "decision"``), and these tables are an index over them for queues."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Float, ForeignKey, Index, Integer, SmallInteger, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from ledger.store.models import Base, UTCDateTime

__all__ = [
    "Assignment",
    "ConstituencyReview",
    "Member",
    "Organisation",
    "PhotoHashBand",
    "PhotoUse",
    "UnitLocation",
    "UnitReview",
]


class Organisation(Base):
    """A coalition member that recruits its own volunteers (civil society, party, university...)."""

    __tablename__ = "organisations"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)  # a slug, e.g. "ilaw"
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Member(Base):
    """A person in the hierarchy: level 1 unit volunteer, 2 constituency head, 3 war room.

    ``contact`` and ``name`` are personal data and never public; public views show only the
    organisation and ``public_id``.
    """

    __tablename__ = "members"

    address: Mapped[str] = mapped_column(String(42), primary_key=True)
    public_id: Mapped[str] = mapped_column(String(24), unique=True)
    organisation_id: Mapped[str | None] = mapped_column(ForeignKey("organisations.id"), nullable=True, index=True)
    level: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(200))
    contact: Mapped[str | None] = mapped_column(String(200), nullable=True)
    custodial: Mapped[bool] = mapped_column(Boolean, default=False)
    registered_at: Mapped[datetime] = mapped_column(UTCDateTime())
    registered_by: Mapped[str | None] = mapped_column(String(100), nullable=True)
    refused_attempts: Mapped[int] = mapped_column(Integer, default=0)
    rejected_reports: Mapped[int] = mapped_column(Integer, default=0)
    flagged_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class Assignment(Base):
    """Which units a level-1 volunteer may report, and which constituencies a head oversees."""

    __tablename__ = "assignments"
    __table_args__ = (UniqueConstraint("address", "area", name="uq_assignments_address_area"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    address: Mapped[str] = mapped_column(ForeignKey("members.address"), index=True)
    area: Mapped[str] = mapped_column(String(32), index=True)  # a unit id (level 1) or constituency id (level 2)
    constituency_id: Mapped[str] = mapped_column(String(32), index=True)
    assigned_at: Mapped[datetime] = mapped_column(UTCDateTime())
    assigned_by: Mapped[str | None] = mapped_column(String(100), nullable=True)


class UnitReview(Base):
    """Where each reported unit stands: the screening outcome and the decided state."""

    __tablename__ = "unit_reviews"
    __table_args__ = (Index("ix_unit_reviews_queue", "constituency_id", "outcome", "status", "first_report_at"),)

    unit: Mapped[str] = mapped_column(String(32), primary_key=True)
    constituency_id: Mapped[str] = mapped_column(String(32), index=True)
    outcome: Mapped[str] = mapped_column(String(16))  # waiting | agreed | needs_review
    status: Mapped[str] = mapped_column(String(16), index=True)  # open | accepted | escalated | certified | excluded
    flags: Mapped[list[Any]] = mapped_column(JSON, default=list)
    accepted_cid: Mapped[str | None] = mapped_column(String(100), nullable=True)
    certified_cid: Mapped[str | None] = mapped_column(String(100), nullable=True)
    report_count: Mapped[int] = mapped_column(Integer, default=0)
    first_report_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ConstituencyReview(Base):
    __tablename__ = "constituency_reviews"

    constituency_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    certified: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class PhotoUse(Base):
    """Which records (and units) each photo was submitted with: finds reused photos."""

    __tablename__ = "photo_uses"

    photo_cid: Mapped[str] = mapped_column(String(100), primary_key=True)
    record_cid: Mapped[str] = mapped_column(String(100), primary_key=True)
    unit: Mapped[str] = mapped_column(String(32))


class PhotoHashBand(Base):
    """One of the four 16-bit bands of a photo's perceptual hash. Photos sharing a band with a
    report's photo are the candidates for a near duplicate, found through the primary key
    (``band, value``) and then compared whole by Hamming distance (``ledger.review.service``)."""

    __tablename__ = "photo_hash_bands"

    band: Mapped[int] = mapped_column(SmallInteger, primary_key=True)  # 0..3, most significant first
    value: Mapped[int] = mapped_column(Integer, primary_key=True)  # 0..65535
    photo_cid: Mapped[str] = mapped_column(String(100), primary_key=True)
    perceptual_hash: Mapped[str] = mapped_column(String(16))


class UnitLocation(Base):
    """A unit's known location, when the coalition has one (photos far from it are flagged);
    imported with ``tally units import`` (``ledger.election.unit_list``)."""

    __tablename__ = "unit_locations"

    unit: Mapped[str] = mapped_column(String(32), primary_key=True)
    latitude: Mapped[float] = mapped_column(Float)
    longitude: Mapped[float] = mapped_column(Float)
    name: Mapped[str | None] = mapped_column(String(200), nullable=True)  # the unit's name in the ECT list
