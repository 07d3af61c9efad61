"""The submission service: validate → canonical record → content store → index → receipt.

This is the one path by which an entry enters the ledger. It is called by the API, the
CLI and the demo alike. An accepted entry's block is in the content store and its row is
committed before a receipt is returned: nothing accepted is ever lost.

The pure half (validation, block, CID, receipt) is ``ledger.intake.preparer``; here is the
writing half: ``Ledger.commit`` stores blocks and rows, the photo index, and the reads.
Their SQL is the store's (``ledger.store.entries``, ``ledger.store.photos``), and what they
answer are its frozen rows (``EntryRow``, ``PhotoRow``), never database rows.
``Prepared`` and ``Preparer`` stay importable from here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.exc import IntegrityError

from ledger.content.store import ContentStore
from ledger.core.cid import CID
from ledger.core.record import RECEIPT_FORMAT
from ledger.core.timefmt import format_time_micro
from ledger.election import Election
from ledger.errors import ConflictingSubmission, NotFound
from ledger.intake.photos import ACCEPTED_MEDIA_TYPES, DEFAULT_MAX_PIXELS, DEFAULT_MAX_SIDE, PhotoInfo, hash_bands, ingest_photo
from ledger.intake.preparer import IndexRows, Prepared, Preparer
from ledger.store import Database
from ledger.store import entries as entry_queries
from ledger.store import photos as photo_queries
from ledger.store.entries import EntryRow
from ledger.store.photos import PhotoRow

__all__ = ["CERTIFIED_FEED_ACTIONS", "RECEIPT_FORMAT", "Accepted", "Ledger", "Prepared", "Preparer"]

CERTIFIED_FEED_ACTIONS = ("certify", "exclude", "reopen", "certify_constituency")
"""Decisions that change the certified results, and so appear in the certified feed."""


def _single(answers: list[Accepted | ConflictingSubmission]) -> Accepted:
    (answer,) = answers
    if isinstance(answer, ConflictingSubmission):
        raise answer
    return answer


def _replay(prior: tuple[str, dict[str, Any]], prepared: Prepared) -> Accepted | ConflictingSubmission:
    """The answer to a submission whose (signer, submission id) is already taken."""
    digest, receipt = prior
    if digest != prepared.row["content_digest"]:
        signer, entry_id = prepared.key
        return ConflictingSubmission(
            f"submission id {entry_id!r} was already used by {signer} for record "
            f"{receipt['record_cid']} with different content; choose a new submission id for a new report"
        )
    return Accepted(receipt=receipt, created=False)


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
        self.basis_of: Callable[[str], dict[str, Any] | None] | None = None
        """What a ``certify_constituency`` (by CID) rested on when it was applied, for the
        certified feed; set by the review service, which replays the decisions."""
        self.batch_max_records = batch_max_records
        self.preparer = Preparer(
            content=content,
            election=election,
            receipt_key=receipt_key,
            batch_max_age_seconds=batch_max_age_seconds,
            clock=clock,
            photo_exists=self.is_photo,
        )

    @property
    def clock(self) -> Callable[[], datetime]:
        return self.preparer.clock

    @clock.setter
    def clock(self, clock: Callable[[], datetime]) -> None:
        self.preparer.clock = clock

    @property
    def receipt_signer(self) -> str:
        return self.preparer.receipt_signer

    @property
    def batch_max_age(self) -> timedelta:
        return self.preparer.batch_max_age

    # -- submitting ---------------------------------------------------------------
    #
    # Two steps, so that a busy server commits many submissions in one transaction:
    # ``prepare_*`` (pure work: validation, canonical block, CID, receipt; ``Preparer``) and
    # ``commit`` (content store, then one transaction for a whole group). ``submit_*`` do both for one.

    def submit_tally(self, submission: Mapping[str, Any]) -> Accepted:
        """Accept one signed tally. Idempotent per (submitter, submission id).

        Raises ``InvalidTally`` (with field errors) or ``ConflictingSubmission`` when the
        submission id was already used by this submitter for different content.
        """
        return _single(self.commit([self.prepare_tally(submission)]))

    def submit_entry(
        self, node: dict[str, object], *, kind: str, subject: str, constituency_id: str, signer: str, entry_id: str
    ) -> Accepted:
        """Accept an already validated and signed entry (a decision, or a tally checked by the caller)."""
        return _single(
            self.commit(
                [
                    self.prepare(
                        node, kind=kind, subject=subject, constituency_id=constituency_id, signer=signer, entry_id=entry_id
                    )
                ]
            )
        )

    def prepare_tally(
        self, submission: Mapping[str, Any], *, index: IndexRows | None = None, links_checked_by_caller: bool = False
    ) -> Prepared:
        """Validate a signed tally (``InvalidTally`` with every field error) and prepare it.

        Its photo links must name photos of the index (one query each), unless
        ``links_checked_by_caller``: then only their blocks must be stored, and the caller
        checks the links of a whole group in one query (``ReviewService.submit_reports``)."""
        return self.preparer.tally(
            submission, index=index, photo_exists=self.content.has_block if links_checked_by_caller else None
        )

    def prepare(
        self,
        node: dict[str, object],
        *,
        kind: str,
        subject: str,
        constituency_id: str,
        signer: str,
        entry_id: str,
        index: IndexRows | None = None,
    ) -> Prepared:
        """The block, row and signed receipt of a validated entry; nothing is stored yet."""
        return self.preparer.entry(
            node, kind=kind, subject=subject, constituency_id=constituency_id, signer=signer, entry_id=entry_id, index=index
        )

    def commit(self, group: Sequence[Prepared]) -> list[Accepted | ConflictingSubmission]:
        """Store a group of prepared entries: blocks to the content store first (nothing
        accepted is ever missing its content), then every row in one transaction.

        One answer per entry, in order: ``Accepted`` (``created`` False for a retry of an
        accepted submission, with its original receipt, also within the group), or
        ``ConflictingSubmission`` for a submission id reused with different content.
        """
        if not group:
            return []
        for prepared in group:
            if not prepared.stored:
                self.content.put_block(prepared.cid, prepared.block)
        try:
            return self._commit_group(group)
        except IntegrityError:
            if len(group) == 1:
                # A concurrent writer (another process) committed the same submission
                # between our look-up and our insert: its row is visible now.
                return self._commit_group(group)
            # Someone else's row collided with one of ours: settle each on its own.
            return [self.commit([prepared])[0] for prepared in group]

    def _commit_group(self, group: Sequence[Prepared]) -> list[Accepted | ConflictingSubmission]:
        keys = list({prepared.key for prepared in group})
        with self.database.session() as session:
            entry_queries.serialize_entry_ids(session)
            known = entry_queries.taken_submissions(session, keys)
            answers: list[Accepted | ConflictingSubmission] = []
            entries: list[dict[str, Any]] = []
            index: dict[str, list[dict[str, Any]]] = {}
            for prepared in group:
                prior = known.get(prepared.key)
                if prior is not None:
                    answers.append(_replay(prior, prepared))
                    continue
                known[prepared.key] = (prepared.row["content_digest"], prepared.receipt)
                entries.append(prepared.row)
                for table, values in prepared.index:
                    index.setdefault(table, []).append(values)
                answers.append(Accepted(receipt=prepared.receipt, created=True))
            entry_queries.insert_entries(session, entries, index)
        return answers

    # -- photos -------------------------------------------------------------------

    def store_photo(
        self,
        chunks: Iterable[bytes] | bytes,
        *,
        uploader: str | None,
        max_bytes: int,
        max_pixels: int = DEFAULT_MAX_PIXELS,
        max_side: int = DEFAULT_MAX_SIDE,
    ) -> tuple[PhotoRow, bool]:
        """Ingest a photo (CID computed while it streams, type by its bytes, EXIF read) and
        index it; returns the row and whether it is new. The same bytes give the same CID."""
        info = ingest_photo(chunks, content=self.content, max_bytes=max_bytes, max_pixels=max_pixels, max_side=max_side)
        return self.record_photo(info, uploader=uploader)

    def record_photo(self, info: PhotoInfo, *, uploader: str | None) -> tuple[PhotoRow, bool]:
        """Index an ingested photo (first upload wins); returns the row and whether it is new."""
        return self.record_photos([(info, uploader)])[0]

    def record_photos(self, photos: Sequence[tuple[PhotoInfo, str | None]]) -> list[tuple[PhotoRow, bool]]:
        """Index many ingested photos in one transaction (the API's group commit); per photo,
        in order, its row (the first upload's) and whether this call created it."""
        now = self.clock()
        values: list[dict[str, Any]] = [
            {
                "cid": str(info.cid),
                "size": info.size,
                "media_type": info.media_type,
                "uploaded_at": now,
                "uploader": uploader,
                "exif": {**info.exif, **({"error": info.exif_error} if info.exif_error else {})},
                "width": info.width,
                "height": info.height,
                "perceptual_hash": info.perceptual_hash,
            }
            for info, uploader in photos
        ]
        answers: list[tuple[PhotoRow, bool]] = []
        try:
            with self.database.session() as session:
                known = photo_queries.photos_by_cid(session, {value["cid"] for value in values})
                new = []
                for value in values:
                    existing = known.get(value["cid"])
                    if existing is not None:
                        answers.append((existing, False))
                        continue
                    known[value["cid"]] = row = PhotoRow(**value)
                    new.append(value)
                    answers.append((row, True))
                if new:
                    bands = [
                        {"band": band, "value": value, "photo_cid": row["cid"], "perceptual_hash": row["perceptual_hash"]}
                        for row in new
                        if row["perceptual_hash"]
                        for band, value in enumerate(hash_bands(row["perceptual_hash"]))
                    ]
                    photo_queries.insert_photos(session, new, bands)
        except IntegrityError:  # uploaded concurrently by another process: settle one by one
            if len(photos) == 1:
                return [(self.photo(values[0]["cid"]), False)]
            return [self.record_photo(info, uploader=uploader) for info, uploader in photos]
        return answers

    def is_photo(self, cid: CID) -> bool:
        """Whether ``cid`` names an uploaded photo of an image type (a row of the photo index),
        not a record, a manifest or any other stored block: what a tally's photo link must name."""
        return bool(self.image_photos([str(cid)]))

    def image_photos(self, cids: Iterable[str]) -> set[str]:
        """Which of ``cids`` are uploaded photos of an image type, in one query (by primary key)."""
        return photo_queries.image_photos(self.database, cids, media_types=ACCEPTED_MEDIA_TYPES)

    def photo(self, cid: str) -> PhotoRow:
        row = photo_queries.get_photo(self.database, cid)
        if row is None:
            raise NotFound(f"no photo {cid} was uploaded here")
        return row

    # -- reading ------------------------------------------------------------------

    def entry(self, cid: str) -> EntryRow:
        row = entry_queries.get_entry(self.database, cid)
        if row is None:
            raise NotFound(f"no record {cid} in this ledger")
        return row

    def signer_records(self, signer: str, *, limit: int) -> list[EntryRow]:
        """The newest tallies signed by ``signer``, newest first."""
        return entry_queries.signer_entries(self.database, signer, kind="tally", limit=limit)

    def changes(self, *, after: int = 0, limit: int = 100, view: str = "unofficial") -> tuple[list[dict[str, Any]], int]:
        """Entries accepted after cursor ``after`` (oldest first) and the cursor to ask next.

        ``unofficial``: every accepted report and decision, labelled by its kind.
        ``certified``: only what changes the certified results (units certified, excluded or
        reopened, constituencies certified), each certification with the certified numbers.
        ``authority``: the authority log's entries (``ledger.core.authority``), who was granted
        and revoked what, for anyone who checks the log as it grows.
        """
        if view not in ("unofficial", "certified", "authority"):
            raise NotFound(f"no feed view {view!r}; views are unofficial, certified, authority")
        with self.database.session() as session:
            high = after
            if view == "certified":
                # Filtered in the database, up to the newest entry now visible (ids become
                # visible in order), so the cursor moves past everything that was looked at.
                high = entry_queries.newest_entry_id(session) or after
                rows = entry_queries.entries_after(session, after, limit=limit, up_to=high, actions=CERTIFIED_FEED_ACTIONS)
            else:
                kinds = ("authority",) if view == "authority" else ("tally", "decision")
                rows = entry_queries.entries_after(session, after, limit=limit, kinds=kinds)
            certified = [
                str((row.document.get("record") or {}).get("/"))
                for row in rows
                if view == "certified" and row.document.get("action") == "certify"
            ]
            documents = entry_queries.entry_documents(session, certified)
        items: list[dict[str, Any]] = []
        for row in rows:
            item = {
                "cursor": row.id,
                "view": view,
                "kind": row.kind,
                "record_cid": row.cid,
                "polling_unit": row.polling_unit,
                "constituency_id": row.constituency_id,
                "signer": row.signer,
                "received_at": format_time_micro(row.received_at),
                "document": row.document,
            }
            if view == "certified" and row.document.get("action") == "certify":
                record_cid = str((row.document.get("record") or {}).get("/"))
                if record_cid not in documents:
                    raise NotFound(f"certified record {record_cid} is not in this ledger")
                item["certified_record"] = documents[record_cid]
            if view == "certified" and row.document.get("action") == "certify_constituency" and self.basis_of is not None:
                item["basis"] = self.basis_of(row.cid)
            items.append(item)
        if len(rows) == limit or view != "certified":
            return items, (rows[-1].id if rows else after)
        return items, max(high, after)

    def unit_entries(self, unit_id: str) -> list[EntryRow]:
        unit = self.election.polling_unit(unit_id)
        return entry_queries.unit_entries(self.database, unit.id)
