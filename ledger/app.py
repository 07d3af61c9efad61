"""The application facade: the ledger's services built from settings, and what callers ask of them.

The CLI, the demo and the HTTP layer reach the ledger through ``LedgerApp`` (``open_app``).
It composes the services (intake, review, sealing, aggregates, access control, the group-commit
writer and the prepare pool of a serving process) and answers with plain data: receipts and
documents as dicts, and rows copied into the frozen read models of ``ledger.views``, so that
no database row travels up to a caller. The background loops of a serving process are in
``ledger.runtime``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cached_property
from typing import Any

import anyio.to_thread

from ledger.content import open_content_store
from ledger.content.car import encode_car_header
from ledger.content.local import iter_dag_blocks
from ledger.content.store import ContentStore
from ledger.core.cid import CID, encode_varint
from ledger.core.signing import address_from_private_key
from ledger.core.timefmt import format_time_micro as format_time
from ledger.election import Election, load_election
from ledger.errors import LedgerError
from ledger.intake.photos import PhotoInfo, PhotoTooLarge, UnsupportedPhotoType, ingest_photo
from ledger.intake.prepare import PreparePool, default_workers
from ledger.intake.service import Accepted, Ledger
from ledger.intake.writer import Writer
from ledger.people.access import (
    AccessService,
    Caller,
    Forbidden,
    InvalidScope,
    RateLimited,
    SessionSigner,
    Unauthenticated,
    check_relay,
    check_submitter,
    load_or_create_session_secret,
    require_role,
)
from ledger.people.authority import AuthorityLog
from ledger.people.roles import (
    ADMIN,
    ADMIN_ONLY,
    ANONYMOUS,
    ASSIGNING_ROLES,
    AUDITOR,
    CONSTITUENCY_HEAD,
    COORDINATOR,
    DECIDERS,
    EVERYONE,
    FEED_READERS,
    KEY_ROLES,
    LEVEL_ROLES,
    NEWSROOM,
    OVERSIGHT,
    PEOPLE_MANAGERS,
    REASON_READERS,
    RELAYING_ROLES,
    ROLES,
    SIGNED_IN_ROLES,
    VOLUNTEER,
    VOLUNTEERS,
    WAR_ROOM,
)
from ledger.presenting import (
    batch_view,
    member_view,
    photo_view,
    principal_view,
    record_view,
    sessions_ended_view,
    volunteer_view,
)
from ledger.quarantine import Quarantine
from ledger.results.aggregates import Aggregates
from ledger.results.seats import InvalidSeatInput
from ledger.review.service import ReviewService
from ledger.sealing.batches import Batcher
from ledger.settings import Settings
from ledger.store import Database
from ledger.views import (
    BatchView,
    ChallengeView,
    InvitationView,
    MemberView,
    OrganisationView,
    PhotoView,
    PrincipalView,
    RecordView,
    SessionsEndedView,
    SessionView,
    VolunteerView,
)
from wallets.custodial import CustodialWallets
from wallets.keystore import load_or_create_signer

__all__ = [
    "ADMIN",
    "ADMIN_ONLY",
    "ANONYMOUS",
    "ASSIGNING_ROLES",
    "AUDITOR",
    "CONSTITUENCY_HEAD",
    "COORDINATOR",
    "DECIDERS",
    "EVERYONE",
    "FEED_READERS",
    "KEY_ROLES",
    "LEVEL_ROLES",
    "NEWSROOM",
    "OVERSIGHT",
    "PEOPLE_MANAGERS",
    "REASON_READERS",
    "RELAYING_ROLES",
    "ROLES",
    "SIGNED_IN_ROLES",
    "VOLUNTEER",
    "VOLUNTEERS",
    "WAR_ROOM",
    "Accepted",
    "Caller",
    "Forbidden",
    "InvalidScope",
    "InvalidSeatInput",
    "LedgerApp",
    "PhotoInfo",
    "PhotoTooLarge",
    "RateLimited",
    "Unauthenticated",
    "UnsupportedPhotoType",
    "open_app",
    "require_role",
]
"""Besides the facade: the public types and checks its callers use with it (the caller and
the role words and groups of ``ledger.people.roles``, a submission's receipt, a stored photo's
description, the refusals they raise), so that they reach the ledger through this module."""


@dataclass
class LedgerApp:
    settings: Settings
    database: Database
    content: ContentStore
    election: Election
    ledger: Ledger
    defer_screening: bool = False
    """The API screens reports in a background loop (``ReviewService.screen_pending``)."""

    quarantine: Quarantine = field(default_factory=Quarantine)
    """Entries that the loops could not use, set aside so that everything else goes on
    (``ledger.quarantine``); readiness reports them."""

    # -- the services --------------------------------------------------------------

    @cached_property
    def batcher(self) -> Batcher:
        return Batcher(self.ledger, quarantine=self.quarantine)

    @cached_property
    def aggregates(self) -> Aggregates:
        aggregates = Aggregates(database=self.database, election=self.election, quarantine=self.quarantine)
        aggregates.refresh()
        return aggregates

    @cached_property
    def verifier_key(self) -> bytes:
        """The key of the ledger's automatic acceptances (decisions with the role ``ledger``)."""
        return bytes(load_or_create_signer(self.settings, "verifier").key)

    @cached_property
    def authority(self) -> AuthorityLog:
        """Who may report, decide and certify, as signed entries (``ledger.people.authority``);
        a fresh ledger's genesis and service keys are written when it is first loaded."""
        services = {"receipt": self.ledger.preparer.receipt_signer, "auto_accept": address_from_private_key(self.verifier_key)}
        admin_key, settings = bytes(load_or_create_signer(self.settings, "authority").key), self.settings
        log = AuthorityLog(ledger=self.ledger, admin_key=admin_key, service_keys=services, clock=lambda: datetime.now(UTC))
        log.configure(
            admins=settings.authority_admins, threshold=settings.authority_threshold, open_reporting=settings.open_reporting
        )
        log.load()
        return log

    @cached_property
    def review(self) -> ReviewService:
        """The hierarchy and verification service; its decision replay is loaded on first use."""
        review = ReviewService(
            ledger=self.ledger,
            aggregates=self.aggregates,
            authority=self.authority,
            max_excluded_share=self.settings.certify_max_excluded_share,
            verifier_key=self.verifier_key,
            required_organisations=self.settings.required_organisations,
            max_photo_distance_km=self.settings.max_photo_distance_km,
            open_reporting=self.settings.open_reporting,
            defer_screening=self.defer_screening,
            photo_window=(
                timedelta(minutes=self.settings.photo_window_before_close_minutes),
                timedelta(hours=self.settings.photo_window_after_close_hours),
            ),
            photo_similarity_max_bits=self.settings.photo_similarity_max_bits,
        )
        review.load()
        return review

    @cached_property
    def access(self) -> AccessService:
        """API keys, volunteer sessions and the caller behind a token (``ledger.people.access``)."""
        settings = self.settings
        sessions = SessionSigner(
            load_or_create_session_secret(settings.keys_dir / "session.secret"),
            lifetime_seconds=settings.session_lifetime_seconds,
        )
        return AccessService(
            database=self.database,
            election=self.election,
            sessions=sessions,
            challenge_lifetime_seconds=settings.challenge_lifetime_seconds,
            cache_seconds=settings.access_cache_seconds,
            member_role=self.review.role_of,
            authority=self.authority,
        )

    @cached_property
    def writer(self) -> Writer:
        """Where a serving process's writes run: one thread, committing reports, photos and
        decisions in groups (``ledger.intake.writer``)."""
        review = self.review
        return Writer(review.submit_reports, self.ledger.record_photos, review.decide_many)

    @cached_property
    def prepare_pool(self) -> PreparePool | None:
        """Worker processes that prepare tallies and photos before the writer commits them
        (``ledger.intake.prepare``); ``None`` when they are prepared in this process
        (``TALLY_API_PREPARE_WORKERS=0``, or one CPU). Started by ``ledger.runtime.Runtime``."""
        workers = self.settings.api_prepare_workers
        if workers is None:
            workers = default_workers(os.cpu_count())
        return PreparePool(self.settings, workers, receipt_key=self.ledger.preparer.receipt_key) if workers else None

    # -- intake ---------------------------------------------------------------------

    async def submit_tally(self, caller: Caller, submission: Any) -> Accepted:
        """A signed tally from ``caller``: checked to be theirs, prepared by the pool (if
        any), committed by the writer with whatever else is waiting. Refusals raise."""
        check_submitter(caller, submission)  # API keys never submit; relaying is relay_tally
        prepared = None
        pool = self.prepare_pool
        if pool is not None and isinstance(submission, dict):
            prepared = await pool.prepare(submission)
        return await self.writer.report(submission, caller.address, prepared)

    async def relay_tally(self, caller: Caller, volunteer: str, tally: Mapping[str, Any]) -> Accepted:
        """A custodial volunteer's count, signed here with their key (``wallets.custodial``)
        and submitted: relayed by a coordinator, or sent by the volunteer, signed in with an
        invitation."""
        member = await anyio.to_thread.run_sync(self.review.member, volunteer)
        wallets = CustodialWallets(self.settings)
        signed = await anyio.to_thread.run_sync(wallets.relay_tally, caller, member, tally, self.election)
        return await self.writer.report(signed, caller.address if caller.role == VOLUNTEER else None)

    def invite_custodial(self, caller: Caller, volunteer: str) -> InvitationView:
        """A single-use, expiring sign-in code for a custodial volunteer, asked by whoever may
        relay their count (``check_relay``: a coordinator of their organisation)."""
        member = self.review.member(volunteer)
        check_relay(
            caller,
            volunteer=member.public_id,
            organisation=member.organisation_id,
            level=member.level,
            custodial=member.custodial,
        )
        lifetime = self.settings.invitation_lifetime_hours * 3600
        code, expires_at = self.access.invite(address=member.address, issued_by=caller.principal_id, lifetime_seconds=lifetime)
        return InvitationView(code=code, address=member.address, public_id=member.public_id, expires_at=format_time(expires_at))

    def submit_authority_entry(self, entry: Any) -> Accepted:
        """An authority entry one of the log's admins signed elsewhere (``ledger.people.authority``)."""
        accepted: Accepted = self.authority.submit(entry)
        return accepted

    def redeem_invitation(self, code: str) -> SessionView:
        token, expires_at, address = self.access.redeem_invitation(code)
        return SessionView(token=token, address=address, expires_at=format_time(expires_at))

    def own_records(self, caller: Caller, *, limit: int) -> list[RecordView]:
        """The newest tallies signed by the signed-in volunteer's key, with their receipts."""
        if caller.address is None:
            raise Forbidden("sign in as a volunteer to see your own reports")
        return [record_view(entry) for entry in self.ledger.signer_records(caller.address, limit=limit)]

    async def submit_decision(self, decision: Any, signed_in_as: str | None) -> Accepted:
        return await self.writer.decision(decision, signed_in_as)

    async def ingest_photo_bytes(self, body: bytes) -> PhotoInfo:
        """A photo read whole: ingested by a prepare worker, or in one step on a thread."""
        settings = self.settings
        pool = self.prepare_pool
        if pool is not None:
            answer = await pool.ingest_photo(body, max_bytes=settings.max_photo_bytes)
            if isinstance(answer, LedgerError):
                raise answer
            if answer is not None:
                return answer
        return await anyio.to_thread.run_sync(self.ingest_photo_stream, body)

    def ingest_photo_stream(self, pieces: bytes | Iterable[bytes]) -> PhotoInfo:
        """A photo from its bytes or its pieces as they arrive (blocking: run it on a thread)."""
        settings = self.settings
        return ingest_photo(
            pieces,
            content=self.content,
            max_bytes=settings.max_photo_bytes,
            max_pixels=settings.max_photo_pixels,
            max_side=settings.max_photo_side,
        )

    async def record_photo(self, info: PhotoInfo, uploader: str | None) -> tuple[PhotoView, bool]:
        """Index a stored photo (by the writer); ``True`` when this call indexed it first."""
        row, created = await self.writer.photo(info, uploader)
        return photo_view(row), created

    # -- reading ----------------------------------------------------------------------

    def photo(self, cid: str) -> PhotoView:
        return photo_view(self.ledger.photo(cid))

    def record(self, cid: str) -> RecordView:
        return record_view(self.ledger.entry(cid))

    def unit_records(self, unit_id: str) -> list[RecordView]:
        return [record_view(entry) for entry in self.ledger.unit_entries(unit_id)]

    def unit_proofs(self, unit_id: str) -> list[dict[str, Any]]:
        return [self.batcher.proof(entry.cid) for entry in self.ledger.unit_entries(unit_id)]

    def batches(self, *, offset: int, limit: int) -> list[BatchView]:
        return [batch_view(row) for row in self.batcher.batches(offset=offset, limit=limit)]

    def batch(self, batch_id: int) -> BatchView:
        return batch_view(self.batcher.batch(batch_id))

    def car(self, root: CID) -> Iterator[bytes]:
        """A CAR v1 file of ``root`` and every block it links to, piece by piece, each block
        checked against its CID as it is read (blocking: iterate it on a thread)."""
        yield encode_car_header([root])
        for cid, block in iter_dag_blocks(self.content.get_block, [root]):
            cid_bytes = cid.bytes
            yield encode_varint(len(cid_bytes) + len(block)) + cid_bytes + block

    # -- people -------------------------------------------------------------------------

    def issue_challenge(self, address: str) -> ChallengeView:
        row = self.access.issue_challenge(address)
        return ChallengeView(
            address=row.address,
            nonce=row.nonce,
            message=row.message,
            issued_at=format_time(row.issued_at),
            expires_at=format_time(row.expires_at),
        )

    def open_session(self, *, address: str, nonce: str, signature: str) -> SessionView:
        token, expires_at, signed_in = self.access.open_session(address=address, nonce=nonce, signature=signature)
        return SessionView(token=token, address=signed_in, expires_at=format_time(expires_at))

    def sign_out(self, caller: Caller) -> SessionsEndedView:
        return sessions_ended_view(self.access.sign_out(caller))

    def end_sessions(self, address: str) -> SessionsEndedView:
        return sessions_ended_view(self.access.end_sessions(address))

    def create_principal(
        self, *, role: str, name: str, scope: Mapping[str, Any] | None, created_by: int | None
    ) -> tuple[PrincipalView, str]:
        """A new API key for ``role``: the principal, and the key (shown once)."""
        row, token = self.access.create_principal(role=role, name=name, scope=scope, created_by=created_by)
        return principal_view(row), token

    def principals(self, *, include_revoked: bool) -> list[PrincipalView]:
        return [principal_view(row) for row in self.access.principals(include_revoked=include_revoked)]

    def revoke_principal(self, principal_id: int, *, revoked_by: int | None) -> PrincipalView:
        return principal_view(self.access.revoke_principal(principal_id, revoked_by=revoked_by))

    def register_volunteer(self, *, address: str, name: str | None, registered_by: int | None) -> tuple[VolunteerView, bool]:
        row, created = self.access.register_volunteer(address=address, name=name, registered_by=registered_by)
        return volunteer_view(row), created

    def volunteers(self, *, offset: int, limit: int) -> list[VolunteerView]:
        return [volunteer_view(row) for row in self.access.volunteers(offset=offset, limit=limit)]

    def revoke_volunteer(self, address: str) -> VolunteerView:
        return volunteer_view(self.access.revoke_volunteer(address))

    def create_organisation(self, *, organisation_id: str, name: str, kind: str) -> OrganisationView:
        row = self.review.create_organisation(organisation_id=organisation_id, name=name, kind=kind)
        return OrganisationView(id=row.id, name=row.name, kind=row.kind)

    def organisations(self) -> list[OrganisationView]:
        return [OrganisationView(id=row.id, name=row.name, kind=row.kind) for row in self.review.organisations()]

    def register_member(self, **member: Any) -> MemberView:
        """``ReviewService.register_member``; ``address=None`` with ``custodial`` makes the
        volunteer a key here, kept encrypted (``wallets.custodial``)."""
        if member.get("custodial") and member.get("address") is None:
            member["address"] = CustodialWallets(self.settings).create()
        return member_view(self.review.register_member(**{**member, "address": str(member["address"])}))

    def member(self, address: str) -> MemberView:
        return member_view(self.review.member(address))

    # -- lifetime ---------------------------------------------------------------------------

    def close_intake(self) -> None:
        """Stop the prepare workers and the writer, if they were started."""
        pool = self.__dict__.pop("prepare_pool", None)
        if pool is not None:
            pool.close()
        writer = self.__dict__.pop("writer", None)
        if writer is not None:
            writer.shutdown()

    def close(self) -> None:
        self.close_intake()
        self.database.dispose()


def open_app(settings: Settings | None = None) -> LedgerApp:
    """Open (and migrate) the ledger under ``settings.data_dir``."""
    settings = settings or Settings()
    settings.ensure_dirs()
    database = Database(settings.resolved_database_url)
    database.migrate()
    content = open_content_store(settings)
    election = load_election(settings.election)
    receipt_key = bytes(load_or_create_signer(settings, "receipts").key)
    ledger = Ledger(
        database=database,
        content=content,
        election=election,
        receipt_key=receipt_key,
        batch_max_records=settings.batch_max_records,
        batch_max_age_seconds=settings.batch_max_age_seconds,
    )
    return LedgerApp(settings=settings, database=database, content=content, election=election, ledger=ledger)
