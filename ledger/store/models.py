"""SQLAlchemy 2 models. The database indexes the ledger; the content store holds the evidence.

Every accepted entry keeps its canonical block in the content store; the row here is an
index over it (unit, signer, batch) plus a JSON copy for aggregation. Nothing is ever
updated in place except the batch assignment and anchoring fields, which only move forward.
Schema changes go through Alembic (``ledger/migrations``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, DateTime, ForeignKey, Index, Integer, LargeBinary, String, UniqueConstraint
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

__all__ = ["Base", "Batch", "Entry", "Photo", "UTCDateTime"]


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite keeps them naive)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored; use UTC-aware ones")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON}


class Batch(Base):
    """A sealed Merkle batch and, once anchored, where its root sits on chain."""

    __tablename__ = "batches"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    root: Mapped[str] = mapped_column(String(66))
    record_count: Mapped[int] = mapped_column(Integer)
    sealed_at: Mapped[datetime] = mapped_column(UTCDateTime())
    manifest_cid: Mapped[str] = mapped_column(String(100))
    tree: Mapped[bytes] = mapped_column(LargeBinary)
    # sealed → sending → anchored (confirmed); a reorg moves anchored/sending back to sealed.
    status: Mapped[str] = mapped_column(String(16), default="sealed", index=True)
    anchor_chain_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    anchor_contract: Mapped[str | None] = mapped_column(String(42), nullable=True)
    anchor_tx: Mapped[str | None] = mapped_column(String(66), nullable=True)
    anchor_nonce: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    anchor_block: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    anchor_block_hash: Mapped[str | None] = mapped_column(String(66), nullable=True)
    anchored_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # The signed anchor transaction, stored before it is sent, so a crash never loses it.
    anchor_pending: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    anchor_sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class Entry(Base):
    """One accepted ledger entry: a tally record or (later) a verification decision."""

    __tablename__ = "entries"
    __table_args__ = (
        UniqueConstraint("signer", "submission_id", name="uq_entries_signer_submission"),
        Index("ix_entries_pending", "batch_id", "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    cid: Mapped[str] = mapped_column(String(100), unique=True)
    kind: Mapped[str] = mapped_column(String(16))
    election: Mapped[str] = mapped_column(String(32))
    polling_unit: Mapped[str] = mapped_column(String(80), index=True)
    """A tally's or a decision's polling unit (or constituency); an authority entry's subject
    (an address, an organisation, a key's SHA-256)."""
    constituency_id: Mapped[str] = mapped_column(String(32), index=True)
    signer: Mapped[str] = mapped_column(String(42), index=True)
    submission_id: Mapped[str] = mapped_column(String(64))
    content_digest: Mapped[str] = mapped_column(String(66))
    leaf_hash: Mapped[str] = mapped_column(String(66))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())
    seal_deadline: Mapped[datetime] = mapped_column(UTCDateTime())
    document: Mapped[dict[str, Any]] = mapped_column(JSON)
    receipt: Mapped[dict[str, Any]] = mapped_column(JSON)
    batch_id: Mapped[int | None] = mapped_column(ForeignKey("batches.id"), nullable=True)
    batch_position: Mapped[int | None] = mapped_column(Integer, nullable=True)
    tree_index: Mapped[int | None] = mapped_column(Integer, nullable=True)


class Photo(Base):
    """Metadata of an uploaded photo; its bytes live untouched in the content store."""

    __tablename__ = "photos"

    cid: Mapped[str] = mapped_column(String(100), primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger)
    media_type: Mapped[str] = mapped_column(String(32))
    uploaded_at: Mapped[datetime] = mapped_column(UTCDateTime())
    uploader: Mapped[str | None] = mapped_column(String(42), nullable=True)
    exif: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    width: Mapped[int | None] = mapped_column(Integer, nullable=True)  # as the image header declares
    height: Mapped[int | None] = mapped_column(Integer, nullable=True)
    perceptual_hash: Mapped[str | None] = mapped_column(String(16), nullable=True)  # ledger.intake.photos.perceptual_hash
