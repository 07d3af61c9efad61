"""Database access: engine and sessions (``session``), models (``models``), migrations.

Importing the model modules here registers their tables with ``Base.metadata`` (Alembic
compares against it)."""

from ledger.store.access_models import AuthChallenge, Principal, Volunteer  # noqa: I001  (after Base: registers with it)
from ledger.store.models import Base, Batch, Entry, Photo
from ledger.store.review_models import (  # noqa: I001
    Assignment,
    ConstituencyReview,
    Member,
    Organisation,
    PhotoHashBand,
    PhotoUse,
    UnitLocation,
    UnitReview,
)
from ledger.store.session import Database, migrate

__all__ = [
    "Assignment",
    "AuthChallenge",
    "Base",
    "Batch",
    "ConstituencyReview",
    "Database",
    "Entry",
    "Member",
    "Organisation",
    "Photo",
    "PhotoHashBand",
    "PhotoUse",
    "Principal",
    "UnitLocation",
    "UnitReview",
    "Volunteer",
    "migrate",
]
