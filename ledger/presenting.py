"""Rows of the store copied into the frozen read models of ``ledger.views``: what the
facade (``ledger.app``) answers with, so that no database row travels up to a caller."""

from __future__ import annotations

from ledger.core.timefmt import format_time_micro as format_time
from ledger.store.access import PrincipalRow
from ledger.store.batches import BatchRow
from ledger.store.entries import EntryRow
from ledger.store.people import MemberRow, VolunteerRow
from ledger.store.photos import PhotoRow
from ledger.views import (
    BatchView,
    MemberView,
    PhotoView,
    PrincipalView,
    RecordView,
    SessionsEndedView,
    VolunteerView,
)

__all__ = [
    "batch_view",
    "member_view",
    "photo_view",
    "principal_view",
    "record_view",
    "sessions_ended_view",
    "volunteer_view",
]


def photo_view(row: PhotoRow) -> PhotoView:
    return PhotoView(
        cid=row.cid,
        size=row.size,
        media_type=row.media_type,
        width=row.width,
        height=row.height,
        exif=dict(row.exif or {}),
        uploaded_at=format_time(row.uploaded_at),
        uploader=row.uploader,
    )


def record_view(entry: EntryRow) -> RecordView:
    return RecordView(
        record_cid=entry.cid,
        kind=entry.kind,
        polling_unit=entry.polling_unit,
        constituency_id=entry.constituency_id,
        signer=entry.signer,
        submission_id=entry.submission_id,
        received_at=format_time(entry.received_at),
        batch_id=entry.batch_id,
        record=entry.document,
        receipt=entry.receipt,
    )


def batch_view(batch: BatchRow) -> BatchView:
    return BatchView(
        id=batch.id,
        root=batch.root,
        record_count=batch.record_count,
        sealed_at=format_time(batch.sealed_at),
        manifest_cid=batch.manifest_cid,
        status=batch.status,
        anchor=batch.anchor,
    )


def principal_view(row: PrincipalRow) -> PrincipalView:
    return PrincipalView(
        id=row.id,
        role=row.role,
        name=row.name,
        scope=row.scope,
        token_hint=row.token_hint,
        created_at=format_time(row.created_at),
        revoked_at=format_time(row.revoked_at) if row.revoked_at else None,
    )


def volunteer_view(row: VolunteerRow) -> VolunteerView:
    return VolunteerView(
        address=row.address,
        name=row.name,
        registered_at=format_time(row.registered_at),
        revoked_at=format_time(row.revoked_at) if row.revoked_at else None,
    )


def sessions_ended_view(row: VolunteerRow) -> SessionsEndedView:
    assert row.sessions_ended_at is not None
    return SessionsEndedView(address=row.address, sessions_ended_at=format_time(row.sessions_ended_at))


def member_view(row: MemberRow) -> MemberView:
    return MemberView(
        address=row.address,
        public_id=row.public_id,
        level=row.level,
        organisation=row.organisation_id,
        name=row.name,
        contact=row.contact,
        custodial=row.custodial,
        refused_attempts=row.refused_attempts,
        rejected_reports=row.rejected_reports,
        flagged=row.flagged_at is not None,
    )
