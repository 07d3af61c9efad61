"""What the application facade (``ledger.app.LedgerApp``) answers with: frozen read models.

Database rows never leave the ledger: the facade copies what a caller may read into these
plain, immutable values (times already in the ledger's one format, ``ledger.core.timefmt``),
and the HTTP layer shapes its answers from them. Nothing here does I/O or imports the store.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

__all__ = [
    "BatchView",
    "ChallengeView",
    "InvitationView",
    "MemberView",
    "OrganisationView",
    "PhotoView",
    "PrincipalView",
    "RecordView",
    "RenderedAggregate",
    "SessionView",
    "SessionsEndedView",
    "VolunteerView",
    "strong_etag",
]


@dataclass(frozen=True, slots=True)
class PhotoView:
    cid: str
    size: int
    media_type: str
    width: int | None
    height: int | None
    exif: dict[str, Any]
    uploaded_at: str
    uploader: str | None


@dataclass(frozen=True, slots=True)
class RecordView:
    record_cid: str
    kind: str
    polling_unit: str
    constituency_id: str
    signer: str
    submission_id: str
    received_at: str
    batch_id: int | None
    record: dict[str, Any]
    receipt: dict[str, Any]


@dataclass(frozen=True, slots=True)
class BatchView:
    id: int
    root: str
    record_count: int
    sealed_at: str
    manifest_cid: str
    status: str
    anchor: dict[str, Any] | None
    """Where the root is anchored (chain, contract, transaction, block), once it is."""


@dataclass(frozen=True, slots=True)
class PrincipalView:
    id: int
    role: str
    name: str
    scope: dict[str, Any] | None
    token_hint: str
    created_at: str
    revoked_at: str | None


@dataclass(frozen=True, slots=True)
class VolunteerView:
    address: str
    name: str | None
    registered_at: str
    revoked_at: str | None


@dataclass(frozen=True, slots=True)
class SessionsEndedView:
    address: str
    sessions_ended_at: str


@dataclass(frozen=True, slots=True)
class ChallengeView:
    address: str
    nonce: str
    message: str
    issued_at: str
    expires_at: str


@dataclass(frozen=True, slots=True)
class SessionView:
    token: str
    address: str
    expires_at: str


@dataclass(frozen=True, slots=True)
class InvitationView:
    """A custodial volunteer's sign-in code, shown once to the coordinator who asked."""

    code: str
    address: str
    public_id: str
    expires_at: str


@dataclass(frozen=True, slots=True)
class OrganisationView:
    id: str
    name: str
    kind: str


@dataclass(frozen=True, slots=True)
class MemberView:
    """A member with personal data (name, contact): for the admin and their coordinator only."""

    address: str
    public_id: str
    level: int
    organisation: str | None
    name: str
    contact: str | None
    custodial: bool
    refused_attempts: int
    rejected_reports: int
    flagged: bool


@dataclass(frozen=True, slots=True)
class RenderedAggregate:
    """One aggregate document as served (``AggregateView.rendered``): its bytes, their ETag
    (``strong_etag`` of the bytes), and what describes them,
    all taken under the view's lock from the version the bytes were rendered from."""

    body: bytes
    etag: str
    media_type: str
    view: str
    computed_at: str
    units_reporting: int
    filename: str | None
    """The download name of a CSV table (``None`` for JSON)."""


def strong_etag(body: bytes) -> str:
    """The one kind of ETag of what the ledger serves: derived from the bytes, so equal
    bodies have equal tags whatever process served them, and a tag always matches its body."""
    return '"' + hashlib.blake2b(body, digest_size=12).hexdigest() + '"'
