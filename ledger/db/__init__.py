"""Database access: engine and sessions (``session``), models (``models``), migrations."""

from ledger.db.models import Base, Batch, Entry, Photo
from ledger.db.session import Database, migrate

__all__ = ["Base", "Batch", "Database", "Entry", "Photo", "migrate"]
