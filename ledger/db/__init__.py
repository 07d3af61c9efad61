"""Database access: engine and sessions (``session``), models (``models``), migrations."""

from ledger.db.models import Base, Batch, Entry, Photo
from ledger.db.access_models import AuthChallenge, Principal, Volunteer  # noqa: I001  (after Base: registers with it)
from ledger.db.session import Database, migrate

__all__ = ["AuthChallenge", "Base", "Batch", "Database", "Entry", "Photo", "Principal", "Volunteer", "migrate"]
from ledger.db.review_models import (  # noqa: E402, I001  (after Base: registers with it)
    Assignment, ConstituencyReview, Member, Organisation, PhotoUse, UnitLocation, UnitReview,
)
