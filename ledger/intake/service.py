"""The submission service: validate → canonical record → content store → index → receipt.

This is the one path by which an entry enters the ledger. It is called by the API, the
CLI and the demo alike. An accepted entry's block is in the content store and its row is
committed before a receipt is returned: nothing accepted is ever lost.

The pure half (validation, block, CID, receipt) is ``ledger.intake.preparer``; here is the
writing half: ``Ledger.commit`` stores blocks and rows, the photo index, and the reads.
``Prepared`` and ``Preparer`` stay importable from here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

from sqlalchemy import Table, TextClause, func, insert, select, text
from sqlalchemy.exc import IntegrityError

from ledger.content.store import ContentStore
from ledger.core.cid import CID
from ledger.core.record import RECEIPT_FORMAT
from ledger.core.timefmt import format_time_micro
from ledger.election import Election
from ledger.errors import ConflictingSubmission, NotFound
from ledger.intake.photos import ACCEPTED_MEDIA_TYPES, DEFAULT_MAX_PIXELS, DEFAULT_MAX_SIDE, PhotoInfo, hash_bands, ingest_photo
from ledger.intake.preparer import IndexRows, Prepared, Preparer
from ledger.store import Base, Database, Entry, Photo, PhotoHashBand
from ledger.store.entries import EntryRow, get_entry

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


TAKEN_CHUNK = 200


def _index_table(table: str | Table) -> Table:
    """The table an index row names (``Prepared`` carries table names, plain data). A
    ``Table`` handed over as such is taken as it is."""
    return table if isinstance(table, Table) else Base.metadata.tables[table]


@lru_cache(maxsize=TAKEN_CHUNK)
def _taken_statement(count: int) -> TextClause:
    """Which of ``count`` (signer, submission id) pairs are taken: an OR of
    ``(signer = :sN AND submission_id = :eN)``, one index probe per pair. (SQLite answers a
    row-value IN list by scanning the whole index, per group.) Written as text, one per
    size, because building and caching the same expression with SQLAlchemy's operators
    for every group cost as much as the rest of the commit."""
    table = Entry.__table__
    where = " OR ".join(f"(signer = :s{n} AND submission_id = :e{n})" for n in range(count))
    return text(f"SELECT signer, submission_id, content_digest, receipt FROM {table.name} WHERE {where}").columns(
        table.c.signer, table.c.submission_id, table.c.content_digest, table.c.receipt
    )


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
            if session.bind is not None and session.bind.dialect.name == "postgresql":
                # Serialize inserts so ids become visible in order: feed and aggregate
                # cursors over ids then never skip an entry committed late.
                session.execute(text("SELECT pg_advisory_xact_lock(2566)"))
            known: dict[tuple[str, str], tuple[str, dict[str, Any]]] = {}
            for start in range(0, len(keys), TAKEN_CHUNK):
                chunk = keys[start : start + TAKEN_CHUNK]
                parameters = {}
                for position, (signer, entry_id) in enumerate(chunk):
                    parameters[f"s{position}"] = signer
                    parameters[f"e{position}"] = entry_id
                for row in session.execute(_taken_statement(len(chunk)), parameters):
                    known[(row.signer, row.submission_id)] = (row.content_digest, row.receipt)
            answers: list[Accepted | ConflictingSubmission] = []
            entries: list[dict[str, Any]] = []
            index: dict[str | Table, list[dict[str, Any]]] = {}
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
            if entries:
                session.execute(insert(Entry.__table__), entries)
            for named, values_list in index.items():
                session.execute(insert(_index_table(named)), values_list)
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
    ) -> tuple[Photo, bool]:
        """Ingest a photo (CID computed while it streams, type by its bytes, EXIF read) and
        index it; returns the row and whether it is new. The same bytes give the same CID."""
        info = ingest_photo(chunks, content=self.content, max_bytes=max_bytes, max_pixels=max_pixels, max_side=max_side)
        return self.record_photo(info, uploader=uploader)

    def record_photo(self, info: PhotoInfo, *, uploader: str | None) -> tuple[Photo, bool]:
        """Index an ingested photo (first upload wins); returns the row and whether it is new."""
        return self.record_photos([(info, uploader)])[0]

    def record_photos(self, photos: Sequence[tuple[PhotoInfo, str | None]]) -> list[tuple[Photo, bool]]:
        """Index many ingested photos in one transaction (the API's group commit); per photo,
        in order, its row (the first upload's) and whether this call created it."""
        now = self.clock()
        values = [
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
        answers: list[tuple[Photo, bool]] = []
        try:
            with self.database.session() as session:
                known = {row.cid: row for row in session.scalars(select(Photo).where(Photo.cid.in_({v["cid"] for v in values})))}
                new = []
                for value in values:
                    existing = known.get(value["cid"])
                    if existing is not None:
                        answers.append((existing, False))
                        continue
                    known[value["cid"]] = row = Photo(**value)
                    new.append(value)
                    answers.append((row, True))
                if new:
                    session.execute(insert(Photo.__table__), new)
                    bands = [
                        {"band": band, "value": value, "photo_cid": row["cid"], "perceptual_hash": row["perceptual_hash"]}
                        for row in new
                        if row["perceptual_hash"]
                        for band, value in enumerate(hash_bands(row["perceptual_hash"]))
                    ]
                    if bands:
                        session.execute(insert(PhotoHashBand.__table__), bands)
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
        wanted = sorted(set(cids))
        if not wanted:
            return set()
        with self.database.session() as session:
            return set(
                session.scalars(select(Photo.cid).where(Photo.cid.in_(wanted), Photo.media_type.in_(ACCEPTED_MEDIA_TYPES)))
            )

    def photo(self, cid: str) -> Photo:
        with self.database.session() as session:
            row = session.get(Photo, cid)
        if row is None:
            raise NotFound(f"no photo {cid} was uploaded here")
        return row

    # -- reading ------------------------------------------------------------------

    def entry(self, cid: str) -> EntryRow:
        row = get_entry(self.database, cid)
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
        with self.database.session() as session:
            query = select(Entry).where(Entry.id > after)
            high = after
            if view == "certified":
                # Filtered in the database, up to the newest entry now visible (ids become
                # visible in order), so the cursor moves past everything that was looked at.
                high = session.scalar(select(func.max(Entry.id))) or after
                query = query.where(
                    Entry.id <= high, Entry.kind == "decision", Entry.document["action"].as_string().in_(CERTIFIED_FEED_ACTIONS)
                )
            rows = session.scalars(query.order_by(Entry.id).limit(limit)).all()
            certified = [
                str((row.document.get("record") or {}).get("/"))
                for row in rows
                if view == "certified" and row.document.get("action") == "certify"
            ]
            documents = (
                dict(session.execute(select(Entry.cid, Entry.document).where(Entry.cid.in_(certified))).tuples().all())
                if certified
                else {}
            )
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
            items.append(item)
        if len(rows) == limit or view == "unofficial":
            return items, (rows[-1].id if rows else after)
        return items, max(high, after)

    def unit_entries(self, unit_id: str) -> list[Entry]:
        unit = self.election.polling_unit(unit_id)
        with self.database.session() as session:
            return list(session.scalars(select(Entry).where(Entry.polling_unit == unit.id).order_by(Entry.id)))
