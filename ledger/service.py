"""The submission service: validate → canonical record → content store → index → receipt.

This is the one path by which an entry enters the ledger. It is called by the API, the
CLI and the demo alike. An accepted entry's block is in the content store and its row is
committed before a receipt is returned: nothing accepted is ever lost.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ledger.content.store import ContentStore
from ledger.core.cid import CID
from ledger.core.leaf import leaf_hash, leaf_values
from ledger.core.record import RECEIPT_FORMAT, encode_entry, node_to_json, sign_entry
from ledger.core.record import content_digest as record_content_digest
from ledger.core.signing import address_from_private_key
from ledger.db import Database, Entry, Photo
from ledger.election import Election
from ledger.errors import ConflictingSubmission, NotFound
from ledger.photos import PhotoInfo, ingest_photo
from ledger.validation import validate_tally

__all__ = ["CERTIFIED_FEED_ACTIONS", "RECEIPT_FORMAT", "Ledger", "format_time"]

CERTIFIED_FEED_ACTIONS = ("certify", "exclude", "reopen", "certify_constituency")
"""Decisions that change the certified results, and so appear in the certified feed."""



def format_time(moment: datetime) -> str:
    """UTC time as ``YYYY-MM-DDTHH:MM:SS.ffffffZ`` (the form receipts carry)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class Accepted:
    """What a submission returns: the receipt, and whether this call created the entry."""

    receipt: dict[str, Any]
    created: bool


class Ledger:
    """The ledger's application service. Thread-safe: every call uses its own session."""

    def __init__(
        self,
        *,
        database: Database,
        content: ContentStore,
        election: Election,
        receipt_key: bytes,
        batch_max_records: int,
        batch_max_age_seconds: float,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ):
        self.database = database
        self.content = content
        self.election = election
        self._receipt_key = receipt_key
        self.receipt_signer = address_from_private_key(receipt_key)
        self.batch_max_records = batch_max_records
        self.batch_max_age = timedelta(seconds=batch_max_age_seconds)
        self.clock = clock

    # -- submitting ---------------------------------------------------------------

    def submit_tally(
        self, submission: Mapping[str, Any], *, on_insert: Callable[[Session, Entry], None] | None = None
    ) -> Accepted:
        """Accept one signed tally. Idempotent per (submitter, submission id).

        Raises ``InvalidTally`` (with field errors) or ``ConflictingSubmission`` when the
        submission id was already used by this submitter for different content.
        """
        node = validate_tally(submission, election=self.election, photo_exists=self.content.has_block)
        unit = self.election.polling_unit(str(node["polling_unit"]))
        return self._accept(node, kind="tally", subject=unit.id, constituency_id=unit.constituency_id,
                            signer=str(node["submitter"]), entry_id=str(node["submission_id"]), on_insert=on_insert)

    def submit_entry(
        self,
        node: dict[str, object],
        *,
        kind: str,
        subject: str,
        constituency_id: str,
        signer: str,
        entry_id: str,
        on_insert: Callable[[Session, Entry], None] | None = None,
    ) -> Accepted:
        """Accept an already validated and signed entry (a decision, or a tally checked by
        the caller). ``on_insert`` runs in the same transaction as the entry's row."""
        return self._accept(node, kind=kind, subject=subject, constituency_id=constituency_id, signer=signer,
                            entry_id=entry_id, on_insert=on_insert)

    def _accept(
        self,
        node: dict[str, object],
        *,
        kind: str,
        subject: str,
        constituency_id: str,
        signer: str,
        entry_id: str,
        on_insert: Callable[[Session, Entry], None] | None = None,
    ) -> Accepted:
        cid, block = encode_entry(node)
        content_digest = "0x" + record_content_digest(node).hex()
        # The block goes to the content store before the row is committed (nothing accepted
        # is ever missing its content); a retry finds its row through the unique constraint
        # below, so the common path makes no extra query.
        self.content.put_block(cid, block)
        now = self.clock()
        values = leaf_values(str(cid), subject, signer)
        leaf = "0x" + leaf_hash(values).hex()
        receipt = self._receipt(cid=cid, subject=subject, entry_id=entry_id, leaf=leaf, received_at=now)
        row = Entry(
            cid=str(cid),
            kind=kind,
            election=self.election.id,
            polling_unit=subject,
            constituency_id=constituency_id,
            signer=signer,
            submission_id=entry_id,
            content_digest=content_digest,
            leaf_hash=leaf,
            received_at=now,
            seal_deadline=now + self.batch_max_age,
            document=node_to_json(node),  # type: ignore[arg-type]
            receipt=receipt,
        )
        try:
            with self.database.session() as session:
                if session.bind is not None and session.bind.dialect.name == "postgresql":
                    # Serialize inserts so ids become visible in order: feed and aggregate
                    # cursors over ids then never skip an entry committed late.
                    session.execute(text("SELECT pg_advisory_xact_lock(2566)"))
                session.add(row)
                if on_insert is not None:
                    session.flush()
                    on_insert(session, row)
        except IntegrityError:
            # A concurrent retry of the same submission won the race: answer as it did.
            existing = self._existing(signer, entry_id)
            if existing is None:
                raise
            return self._replay(existing, content_digest, entry_id)
        return Accepted(receipt=receipt, created=True)

    def _existing(self, signer: str, entry_id: str) -> Entry | None:
        with self.database.session() as session:
            return session.scalars(
                select(Entry).where(Entry.signer == signer, Entry.submission_id == entry_id)
            ).one_or_none()

    @staticmethod
    def _replay(existing: Entry, content_digest: str, entry_id: str) -> Accepted:
        if existing.content_digest != content_digest:
            raise ConflictingSubmission(
                f"submission id {entry_id!r} was already used by {existing.signer} for record "
                f"{existing.cid} with different content; choose a new submission id for a new report"
            )
        return Accepted(receipt=existing.receipt, created=False)

    def _receipt(self, *, cid: CID, subject: str, entry_id: str, leaf: str, received_at: datetime) -> dict[str, Any]:
        """A receipt signed by the ledger's key with the same EIP-712 scheme as entries."""
        receipt: dict[str, object] = {
            "format": RECEIPT_FORMAT,
            "election": self.election.id,
            "record_cid": str(cid),
            "polling_unit": subject,
            "submission_id": entry_id,
            "leaf_hash": leaf,
            "received_at": format_time(received_at),
            "seal_deadline": format_time(received_at + self.batch_max_age),
            "ledger": self.receipt_signer,
        }
        signed = sign_entry(receipt, self._receipt_key)
        return node_to_json(signed)  # type: ignore[return-value]

    # -- photos -------------------------------------------------------------------

    def store_photo(self, chunks: Iterable[bytes] | bytes, *, uploader: str | None, max_bytes: int) -> tuple[Photo, bool]:
        """Ingest a photo (CID computed while it streams, type by its bytes, EXIF read) and
        index it; returns the row and whether it is new. The same bytes give the same CID."""
        info = ingest_photo(chunks, content=self.content, max_bytes=max_bytes)
        return self.record_photo(info, uploader=uploader)

    def record_photo(self, info: PhotoInfo, *, uploader: str | None) -> tuple[Photo, bool]:
        """Index an ingested photo (first upload wins); returns the row and whether it is new."""
        exif = dict(info.exif)
        if info.exif_error:
            exif["error"] = info.exif_error
        row = Photo(cid=str(info.cid), size=info.size, media_type=info.media_type, uploaded_at=self.clock(),
                    uploader=uploader, exif=exif)
        try:
            with self.database.session() as session:
                existing = session.get(Photo, row.cid)
                if existing is not None:
                    return existing, False
                session.add(row)
        except IntegrityError:  # the same photo, uploaded concurrently
            return self.photo(row.cid), False
        return row, True

    def photo(self, cid: str) -> Photo:
        with self.database.session() as session:
            row = session.get(Photo, cid)
        if row is None:
            raise NotFound(f"no photo {cid} was uploaded here")
        return row

    # -- reading ------------------------------------------------------------------

    def entry(self, cid: str) -> Entry:
        with self.database.session() as session:
            row = session.scalars(select(Entry).where(Entry.cid == cid)).one_or_none()
        if row is None:
            raise NotFound(f"no record {cid} in this ledger")
        return row

    def changes(self, *, after: int = 0, limit: int = 100, view: str = "unofficial") -> tuple[list[dict[str, Any]], int]:
        """Entries accepted after cursor ``after`` (oldest first) and the cursor to ask next.

        ``unofficial``: every accepted entry (reports and decisions), labelled as such.
        ``certified``: only what changes the certified results (units certified, excluded or
        reopened, constituencies certified), each certification with the certified numbers.
        """
        if view not in ("unofficial", "certified"):
            raise NotFound(f"no feed view {view!r}; views are unofficial, certified")
        items: list[dict[str, Any]] = []
        cursor = after
        while len(items) < limit:
            with self.database.session() as session:
                rows = session.scalars(select(Entry).where(Entry.id > cursor).order_by(Entry.id).limit(limit)).all()
            if not rows:
                break
            for row in rows:
                cursor = row.id
                if view == "certified" and not (
                    row.kind == "decision" and row.document.get("action") in CERTIFIED_FEED_ACTIONS
                ):
                    continue
                item = {
                    "cursor": row.id,
                    "view": view,
                    "kind": row.kind,
                    "record_cid": row.cid,
                    "polling_unit": row.polling_unit,
                    "constituency_id": row.constituency_id,
                    "signer": row.signer,
                    "received_at": format_time(row.received_at),
                    "document": row.document,
                }
                if view == "certified" and row.document.get("action") == "certify":
                    record = row.document.get("record") or {}
                    item["certified_record"] = self.entry(str(record.get("/"))).document
                items.append(item)
                if len(items) == limit:
                    break
            if view == "unofficial":
                break
        return items, cursor

    def unit_entries(self, unit_id: str) -> list[Entry]:
        unit = self.election.polling_unit(unit_id)
        with self.database.session() as session:
            return list(session.scalars(select(Entry).where(Entry.polling_unit == unit.id).order_by(Entry.id)))
