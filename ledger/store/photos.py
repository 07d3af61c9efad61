"""The queries of the photo index, answering with frozen rows.

A photo's bytes live in the content store; its row here says what it is (type, size,
pixels, EXIF) and who uploaded it first. :class:`PhotoRow` outlives its session, so intake,
the facade and the demo read a photo without holding a database row. The perceptual hash's
bands (``photo_hash_bands``) are written with the photo, for the review's near-duplicate search.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, insert, select
from sqlalchemy.orm import Session

from ledger.store.models import Photo
from ledger.store.review_models import PhotoHashBand
from ledger.store.session import Database

__all__ = ["PhotoRow", "get_photo", "image_photos", "insert_photos", "photos_by_cid"]


@dataclass(frozen=True, slots=True)
class PhotoRow:
    """One uploaded photo, as indexed (its first upload)."""

    cid: str
    size: int
    media_type: str
    uploaded_at: datetime
    uploader: str | None
    exif: dict[str, Any]
    width: int | None
    height: int | None
    perceptual_hash: str | None


_PHOTO_COLUMNS = tuple(Photo.__table__.c[field.name] for field in fields(PhotoRow))
# Built once, over the table's columns (no ORM entity to compile for): asked for every group
# of uploads the writer commits, a quarter of what building it per call costs.
_PHOTOS_BY_CID = select(*_PHOTO_COLUMNS).where(Photo.__table__.c.cid.in_(bindparam("cids", expanding=True)))


def get_photo(database: Database, cid: str) -> PhotoRow | None:
    with database.session() as session:
        row = session.execute(select(*_PHOTO_COLUMNS).where(Photo.cid == cid)).one_or_none()
    return None if row is None else PhotoRow(*row)


def image_photos(database: Database, cids: Iterable[str], *, media_types: Collection[str]) -> set[str]:
    """Which of ``cids`` are indexed photos of one of ``media_types``: one query, by primary
    key (none for no CIDs)."""
    wanted = sorted(set(cids))
    if not wanted:
        return set()
    with database.session() as session:
        return set(session.scalars(select(Photo.cid).where(Photo.cid.in_(wanted), Photo.media_type.in_(media_types))))


def photos_by_cid(session: Session, cids: Collection[str]) -> dict[str, PhotoRow]:
    """The indexed photos among ``cids``, by CID."""
    return {row.cid: PhotoRow(*row) for row in session.execute(_PHOTOS_BY_CID, {"cids": list(cids)})}


def insert_photos(session: Session, photos: Sequence[Mapping[str, Any]], bands: Sequence[Mapping[str, Any]]) -> None:
    """Index new ``photos`` (rows of ``photos``, none indexed yet) and their perceptual hash
    ``bands`` (rows of ``photo_hash_bands``): one statement each."""
    if photos:
        session.execute(insert(Photo.__table__), photos)
    if bands:
        session.execute(insert(PhotoHashBand.__table__), bands)
