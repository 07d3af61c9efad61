"""The queries of screening runs (``ledger.review.screener``, ``ledger.review.evidence``):
the reports of units with their signers' membership, what the review index has seen, the
index write of a chunk's assessments in two statements, and the photo index's evidence
(photo uses, EXIF, perceptual-hash bands, unit places). The rules stay in the review; the
SQL is here."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, func, insert, select, update

from ledger.store.models import Entry, Photo
from ledger.store.review_models import Member, PhotoHashBand, PhotoUse, UnitLocation, UnitReview
from ledger.store.session import Database

__all__ = [
    "PhotoFacts",
    "ScreenedEntry",
    "band_candidates",
    "photo_facts",
    "report_counts",
    "taken_submission_ids",
    "unit_locations",
    "unit_tallies",
    "units_of_photos",
    "write_assessments",
]

_ASSESSED = ("outcome", "flags", "report_count", "status", "updated_at")


@dataclass(frozen=True, slots=True)
class ScreenedEntry:
    """A tally of a unit, with its signer's organisation and whether they are flagged."""

    id: int
    cid: str
    signer: str
    document: dict[str, Any]
    polling_unit: str
    organisation_id: str | None
    flagged: bool


def report_counts(database: Database) -> tuple[dict[str, int], dict[str, int]]:
    """Per unit: the tallies in the ledger, and the reports its review row has seen."""
    with database.session() as session:
        counts = dict(
            session.execute(
                select(Entry.polling_unit, func.count()).where(Entry.kind == "tally").group_by(Entry.polling_unit)
            ).all()
        )
        seen = dict(session.execute(select(UnitReview.unit, UnitReview.report_count)).all())
    return counts, seen


def unit_tallies(database: Database, unit_ids: Sequence[str]) -> list[ScreenedEntry]:
    """The tallies of these units, oldest first, with their signers' membership."""
    with database.session() as session:
        rows = session.execute(
            select(
                Entry.id,
                Entry.cid,
                Entry.signer,
                Entry.document,
                Entry.polling_unit,
                Member.organisation_id,
                Member.flagged_at,
            )
            .outerjoin(Member, Member.address == Entry.signer)
            .where(Entry.polling_unit.in_(unit_ids), Entry.kind == "tally")
            .order_by(Entry.id)
        ).all()
    return [
        ScreenedEntry(
            row.id, row.cid, row.signer, row.document, row.polling_unit, row.organisation_id, row.flagged_at is not None
        )
        for row in rows
    ]


def write_assessments(
    database: Database, values: Mapping[str, Mapping[str, Any]], constituency_of: Mapping[str, str], *, now: datetime
) -> None:
    """Each unit's assessed values (``outcome``, ``flags``, ``report_count``, ``status``,
    ``updated_at``) into the review index, in two statements for the whole chunk: rows for
    new units (first reported ``now``, in ``constituency_of[unit]``), updates of known ones."""
    table = UnitReview.__table__
    with database.session() as session:
        known = set(session.scalars(select(UnitReview.unit).where(UnitReview.unit.in_(list(values)))))
        new, changed = [], []
        for unit_id, assessed in values.items():
            if unit_id in known:
                changed.append({"unit_id": unit_id, **assessed})
            else:
                new.append({"unit": unit_id, "constituency_id": constituency_of[unit_id], "first_report_at": now, **assessed})
        if new:
            session.execute(insert(table), new)
        if changed:
            session.execute(
                update(table).where(table.c.unit == bindparam("unit_id")).values({name: bindparam(name) for name in _ASSESSED}),
                changed,
            )


def taken_submission_ids(database: Database, signer: str, submission_ids: Sequence[str]) -> set[str]:
    """Those of ``submission_ids`` that ``signer`` has used already."""
    with database.session() as session:
        return set(
            session.scalars(select(Entry.submission_id).where(Entry.signer == signer, Entry.submission_id.in_(submission_ids)))
        )


# -- evidence ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PhotoFacts:
    """What the photo index says of a photo: its EXIF summary and its perceptual hash."""

    cid: str
    exif: dict[str, Any]
    perceptual_hash: str | None


def units_of_photos(database: Database, photo_cids: Sequence[str]) -> dict[str, set[str]]:
    """Per photo, the units reports used it for (photos no report used are left out)."""
    units: dict[str, set[str]] = {}
    with database.session() as session:
        for start in range(0, len(photo_cids), 500):
            chunk = photo_cids[start : start + 500]
            for use in session.execute(select(PhotoUse.photo_cid, PhotoUse.unit).where(PhotoUse.photo_cid.in_(chunk))):
                units.setdefault(use.photo_cid, set()).add(use.unit)
    return units


def photo_facts(database: Database, photo_cids: Sequence[str]) -> list[PhotoFacts]:
    """The stored photos among ``photo_cids``, with their EXIF summary and perceptual hash."""
    facts: list[PhotoFacts] = []
    with database.session() as session:
        for start in range(0, len(photo_cids), 500):
            chunk = photo_cids[start : start + 500]
            rows = session.execute(select(Photo.cid, Photo.exif, Photo.perceptual_hash).where(Photo.cid.in_(chunk)))
            facts += [PhotoFacts(row.cid, row.exif or {}, row.perceptual_hash) for row in rows]
    return facts


def band_candidates(database: Database, band: int, values: Sequence[int], *, limit: int) -> list[tuple[int, str, str]]:
    """``(band value, photo CID, perceptual hash)`` of photos whose hash has one of ``values``
    in ``band``, through the primary key of ``photo_hash_bands``; at most ``limit`` rows."""
    with database.session() as session:
        rows = session.execute(
            select(PhotoHashBand.value, PhotoHashBand.photo_cid, PhotoHashBand.perceptual_hash)
            .where(PhotoHashBand.band == band, PhotoHashBand.value.in_(values))
            .limit(limit)
        )
        return [(row.value, row.photo_cid, row.perceptual_hash) for row in rows]


def unit_locations(database: Database, unit_ids: Sequence[str]) -> dict[str, tuple[float, float]]:
    """``(latitude, longitude)`` of the units among ``unit_ids`` whose place is known."""
    with database.session() as session:
        return {
            row.unit: (row.latitude, row.longitude)
            for row in session.scalars(select(UnitLocation).where(UnitLocation.unit.in_(unit_ids)))
        }
