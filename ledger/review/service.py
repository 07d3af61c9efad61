"""The volunteer hierarchy and the verification of counts, over the database.

People: organisations register and manage their own volunteers. Level 1 volunteers are
assigned polling units and may report only those; level 2 heads are assigned
constituencies and decide their conflicts; level 3 is the war room, which certifies.
The admin appoints levels 2 and 3; an organisation's coordinator registers and assigns
its own level-1 volunteers.

Counts: after every report the unit is screened (``ledger.review.screening``). Agreeing
reports from enough independent organisations are accepted automatically by a decision
signed with the ledger's own verifier key; anything else waits for the head. Every
decision is a signed ``tally-decision-v1`` entry (``ledger.core.decision``), batched and
anchored like tallies. The service keeps a ``Replay`` of all decisions in memory (rebuilt
from the ledger at start) and refuses any decision the rules forbid; the ``unit_reviews``
table is an index over that state for the work queues. Certified aggregates count only
what the replay says is certified.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, bindparam, func, insert, select, update

from ledger.core.cid import CID
from ledger.core.decision import DecisionRefused, Replay, link_text
from ledger.core.record import sign_entry
from ledger.core.signing import address_from_private_key, to_checksum_address
from ledger.core.timefmt import format_time_micro
from ledger.election import Election
from ledger.election.counting import countable
from ledger.election.unit_list import UnitListRow
from ledger.election.validation import validate_decision
from ledger.errors import FieldError, Forbidden, InvalidSignature, InvalidTally, LedgerError, NotFound
from ledger.intake.photos import hamming_distance, hash_bands, taken_at_of
from ledger.intake.service import Accepted, Ledger, Prepared
from ledger.people.access import Caller
from ledger.people.registry import PeopleRegistry
from ledger.people.roles import (
    ADMIN,
    ASSIGNING_ROLES,
    CONSTITUENCY_HEAD,
    COORDINATOR,
    LEDGER,
    LEVEL_ROLES,
    REPORTER_VIEWERS,
    VOLUNTEER,
)
from ledger.results.aggregates import Aggregates
from ledger.review.screening import Assessment, Lookalike, PhotoEvidence, Report, assess_unit
from ledger.store import (
    Assignment,
    ConstituencyReview,
    Entry,
    Member,
    Organisation,
    Photo,
    PhotoHashBand,
    PhotoUse,
    UnitLocation,
    UnitReview,
)

__all__ = ["LEVEL_ROLES", "NotPermitted", "ReviewService"]

PHOTO_USES = PhotoUse.__table__
log = logging.getLogger("tally.review")
FLAG_AFTER_REJECTIONS = 3


NotPermitted = Forbidden
"""The former name of ``ledger.errors.Forbidden`` (the same class), for importers not yet moved."""


def _now() -> datetime:
    return datetime.now(UTC)


class ReviewService:
    def __init__(
        self,
        *,
        ledger: Ledger,
        aggregates: Aggregates,
        verifier_key: bytes,
        required_organisations: int = 2,
        max_photo_distance_km: float = 5.0,
        open_reporting: bool = False,
        defer_screening: bool = False,
        clock: Callable[[], datetime] = _now,
        photo_window: tuple[timedelta, timedelta] = (timedelta(minutes=30), timedelta(hours=7)),
        photo_similarity_max_bits: int = 6,
    ):
        """``photo_window``: how long before and after the polls close a photo of the count may
        be taken (default 16:30 to 24:00 on polling day); ``photo_similarity_max_bits``: the
        largest perceptual-hash distance of a near-duplicate photo."""
        self.ledger = ledger
        self.database = ledger.database
        self.election: Election = ledger.election
        self.aggregates = aggregates
        self._verifier_key = verifier_key
        self.verifier = address_from_private_key(verifier_key)
        self.required_organisations = required_organisations
        self.max_photo_distance_km = max_photo_distance_km
        close = datetime.fromisoformat(self.election.polls_close)
        self.count_window = (close - photo_window[0], close + photo_window[1])
        self.photo_similarity_max_bits = photo_similarity_max_bits
        self.open_reporting = open_reporting
        self.defer_screening = defer_screening
        self._pending_units: set[str] = set()
        self._pending_lock = threading.Lock()
        self.clock = clock
        self.people = PeopleRegistry(database=self.database, clock=lambda: self.clock())
        self._lock = threading.RLock()
        self.replay = self._new_replay()
        self._record_units: dict[str, str] = {}
        self._record_corrects: dict[str, list[str]] = {}
        self._decision_cursor = 0
        self._set_aside_reports: set[str] = set()
        """Reports whose numbers cannot be read: screened past, so their unit's others are."""

    # -- replay -------------------------------------------------------------------

    def _new_replay(self) -> Replay:
        return Replay(
            record_unit=self._record_unit,
            corrects=self._record_corrections,
            units_of=lambda constituency: [u.id for u in self.election.polling_units(constituency)],
        )

    def _load_record(self, cid: str) -> tuple[str | None, list[str]]:
        with self.database.session() as session:
            row = session.scalars(select(Entry).where(Entry.cid == cid, Entry.kind == "tally")).one_or_none()
        if row is None:
            return None, []
        return row.polling_unit, self._remember_record(cid, row.polling_unit, row.document)

    def _remember_record(self, cid: str, unit: str, document: Mapping[str, Any]) -> list[str]:
        """Keep which unit a record reports and what it corrects, for the replay's rules
        (corrections only when there are some: most records correct nothing)."""
        corrects = [link["/"] if isinstance(link, Mapping) else str(link) for link in document.get("corrects", [])]
        self._record_units[cid] = unit
        if corrects:
            self._record_corrects[cid] = corrects
        return corrects

    def _record_corrections(self, cid: str) -> list[str]:
        if cid in self._record_units:
            return self._record_corrects.get(cid, [])
        return self._load_record(cid)[1]

    def _record_unit(self, cid: str) -> str | None:
        unit = self._record_units.get(cid)
        return unit if unit is not None else self._load_record(cid)[0]

    def load(self) -> int:
        """Replay every decision accepted since the last call (all of them the first time)."""
        with self._lock:
            applied = 0
            while True:
                with self.database.session() as session:
                    rows = session.execute(
                        select(Entry.id, Entry.cid, Entry.document)
                        .where(Entry.kind == "decision", Entry.id > self._decision_cursor)
                        .order_by(Entry.id)
                        .limit(5000)
                    ).all()
                if not rows:
                    return applied
                units: set[str] = set()
                constituencies: set[str] = set()
                rejected: list[str] = []
                for row in rows:
                    self._decision_cursor = row.id
                    try:
                        decision = _node_view(row.document)
                        self.replay.apply(row.cid, decision)
                    except Exception as exc:  # noqa: BLE001 - a lost or corrupt row: set aside, serve the rest
                        subject_text = row.document.get("subject") if isinstance(row.document, Mapping) else None
                        self.aggregates.quarantine.add("replay", row.cid, str(subject_text or ""), exc)
                        continue
                    subject = str(decision["subject"])
                    if decision["action"] == "certify_constituency" or subject in self.election.constituencies:
                        constituencies.add(subject)
                    else:
                        units.add(subject)
                        if decision["action"] == "reject":
                            rejected.append(str(link_text(decision.get("record"))))
                    applied += 1
                self._write_back(sorted(units), sorted(constituencies))
                for record_cid in rejected:
                    self._count_rejection(record_cid)

    def _write_back(self, units: list[str], constituencies: list[str]) -> None:
        """Bring the review index and the certified aggregates to the replay's state for
        ``units`` and ``constituencies`` (after their decisions were applied)."""
        now = self.clock()
        certified_records = {
            unit_id: state.certified
            for unit_id in units
            if (state := self.replay.unit(unit_id)).status == "certified" and state.certified
        }
        documents: dict[str, dict[str, Any]] = {}
        with self.database.session() as session:
            for start in range(0, len(units), 500):
                chunk = units[start : start + 500]
                for row in session.scalars(select(UnitReview).where(UnitReview.unit.in_(chunk))):
                    state = self.replay.unit(row.unit)
                    row.status, row.accepted_cid, row.certified_cid = state.status, state.accepted, state.certified
                    row.updated_at = now
                wanted = [certified_records[u] for u in chunk if u in certified_records]
                if wanted:
                    rows = session.execute(select(Entry.cid, Entry.document).where(Entry.cid.in_(wanted)))
                    documents.update((row.cid, row.document) for row in rows)
            for constituency_id in constituencies:
                certified = self.replay.constituency(constituency_id).certified
                row = session.get(ConstituencyReview, constituency_id)
                if row is None:
                    session.add(ConstituencyReview(constituency_id=constituency_id, certified=certified, updated_at=now))
                else:
                    row.certified, row.updated_at = certified, now
        for unit_id in units:
            record_cid = certified_records.get(unit_id)
            if record_cid is not None:
                if record_cid not in documents:  # a lost row: the unit is not counted as certified
                    self.aggregates.quarantine.add(
                        "certified",
                        record_cid,
                        unit_id,
                        f"certified record {record_cid} of {unit_id} is not in this ledger's database",
                    )
                    self.aggregates.set_certified(unit_id, None)
                    continue
                self.aggregates.set_certified(unit_id, documents[record_cid], record_cid)
            else:
                self.aggregates.set_certified(unit_id, None)

    # -- people -------------------------------------------------------------------

    def create_organisation(self, *, organisation_id: str, name: str, kind: str) -> Organisation:
        return self.people.create_organisation(organisation_id=organisation_id, name=name, kind=kind)

    def organisations(self) -> list[Organisation]:
        return self.people.organisations()

    def register_member(self, **member: Any) -> Member:
        """``PeopleRegistry.register_member``: a person at a level, by who may register them."""
        return self.people.register_member(**member)

    def member(self, address: str) -> Member:
        return self.people.member(address)

    def assign(
        self,
        *,
        address: str,
        areas: list[str],
        assigned_by: str | None = None,
        organisation_id: str | None = None,
        acting_role: str | None = None,
    ) -> list[str]:
        """Assign units (level 1) or constituencies (level 2); returns the areas added.

        Who may (``acting_role``; without it, ``coordinator`` when ``organisation_id`` is
        given, else ``admin``): the admin and the war room assign anyone's areas; a
        coordinator assigns only polling units, only to level-1 volunteers of their
        organisation (``organisation_id``). A head's constituencies decide whose decisions
        the ledger accepts, so no coordinator may change them."""
        role = acting_role or (COORDINATOR if organisation_id is not None else ADMIN)
        member = self.member(address)
        if role not in ASSIGNING_ROLES:
            raise Forbidden(f"assignments are made by the admin, the war room or a coordinator, not by {role}")
        if role == COORDINATOR:
            if member.level != 1:
                raise Forbidden(
                    f"{member.public_id} is a level-{member.level} {LEVEL_ROLES[member.level]}: only the admin or the war room "
                    "may change the areas of level-2 heads and level-3 members; a coordinator assigns polling units "
                    "to level-1 volunteers of their organisation"
                )
            if organisation_id is None or member.organisation_id != organisation_id:
                raise Forbidden(f"{member.public_id} belongs to {member.organisation_id}, not to {organisation_id}")
            not_units = [area for area in areas if not _is_unit_id(area)]
            if not_units:
                raise Forbidden(
                    f"{not_units[0]} is not a polling unit: a coordinator assigns polling units (like "
                    "BKK_1-0001) to level-1 volunteers; constituencies are for heads, appointed by the admin"
                )
        if member.level == 3:
            raise Forbidden("the war room covers the whole country; it has no assignments")
        rows = []
        for area in areas:
            if member.level == 1:
                constituency_id = self.election.polling_unit(area).constituency_id
            else:
                constituency_id = self.election.constituency(area).id
            rows.append((area, constituency_id))
        added = []
        with self.database.session() as session:
            existing = set(session.scalars(select(Assignment.area).where(Assignment.address == member.address)))
            for area, constituency_id in rows:
                if area not in existing:
                    session.add(
                        Assignment(
                            address=member.address,
                            area=area,
                            constituency_id=constituency_id,
                            assigned_at=self.clock(),
                            assigned_by=assigned_by,
                        )
                    )
                    existing.add(area)
                    added.append(area)
        return added

    def assigned_areas(self, address: str) -> set[str]:
        with self.database.session() as session:
            return set(session.scalars(select(Assignment.area).where(Assignment.address == to_checksum_address(address))))

    def role_of(self, address: str) -> str | None:
        return self.people.role_of(address)

    def _may_report(self, requests: list[tuple[str, str]]) -> list[bool | Forbidden]:
        """Whether each (checksummed address, unit) may be reported, in one query (it runs
        on every submission): a volunteer only their units, a head their constituencies'
        units (corrected tallies), the war room any. Per pair: True if allowed, a
        ``Forbidden`` (counted on the member) if refused, False when the address is not a
        member at all. A member and a unit that does not exist is True: validation reports
        the unit with its path."""
        units: dict[str, Any] = {}
        for _, unit_id in requests:
            try:
                units[unit_id] = self.election.polling_unit(unit_id)
            except NotFound:
                units[unit_id] = None
        areas = sorted({area for unit in units.values() if unit is not None for area in (unit.id, unit.constituency_id)})
        addresses = sorted({address for address, _ in requests})
        levels: dict[str, tuple[int, str]] = {}
        assigned: set[tuple[str, str]] = set()
        with self.database.session() as session:
            rows = session.execute(
                select(Member.address, Member.level, Member.public_id, Assignment.area)
                .outerjoin(Assignment, and_(Assignment.address == Member.address, Assignment.area.in_(areas)))
                .where(Member.address.in_(addresses))
            )
            for row in rows:
                levels[row.address] = (row.level, row.public_id)
                if row.area is not None:
                    assigned.add((row.address, row.area))
        answers: list[bool | Forbidden] = []
        refused: list[str] = []
        for address, unit_id in requests:
            unit = units[unit_id]
            if address not in levels or unit is None:
                answers.append(address in levels)
                continue
            level, public_id = levels[address]
            if (
                (level == 1 and (address, unit.id) in assigned)
                or (level == 2 and (address, unit.constituency_id) in assigned)
                or level == 3
            ):
                answers.append(True)
                continue
            refused.append(address)
            answers.append(
                Forbidden(f"volunteer {public_id} is not assigned to polling unit {unit.id}; ask your coordinator to assign it")
            )
        if refused:
            with self.database.session() as session:
                for address in refused:
                    session.execute(
                        update(Member).where(Member.address == address).values(refused_attempts=Member.refused_attempts + 1)
                    )
        return answers

    def coverage(self, constituency_id: str | None = None) -> list[dict[str, Any]]:
        """Per constituency: units with at least one volunteer, and from how many organisations."""
        with self.database.session() as session:
            query = (
                select(Assignment.constituency_id, Assignment.area, Member.organisation_id)
                .join(Member, Member.address == Assignment.address)
                .where(Member.level == 1)
            )
            if constituency_id:
                query = query.where(Assignment.constituency_id == constituency_id)
            rows = session.execute(query).all()
        per_unit: dict[str, set[str]] = {}
        for row in rows:
            per_unit.setdefault(row.area, set()).add(row.organisation_id or "")
        result = []
        ids = [constituency_id] if constituency_id else list(self.election.constituencies)
        for cid in ids:
            constituency = self.election.constituency(cid)
            units = [u.id for u in self.election.polling_units(cid)]
            covered = [u for u in units if u in per_unit]
            result.append(
                {
                    "constituency_id": cid,
                    "province_id": constituency.province_id,
                    "units_total": len(units),
                    "units_covered": len(covered),
                    "units_by_organisations": {
                        str(n): sum(1 for u in covered if len(per_unit[u]) == n)
                        for n in sorted({len(per_unit[u]) for u in covered})
                    },
                }
            )
        return result

    def uncovered_units(self, constituency_id: str, *, limit: int = 1000) -> list[str]:
        with self.database.session() as session:
            covered = set(
                session.scalars(
                    select(Assignment.area)
                    .join(Member, Member.address == Assignment.address)
                    .where(Member.level == 1, Assignment.constituency_id == constituency_id)
                )
            )
        return [u.id for u in self.election.polling_units(constituency_id) if u.id not in covered][:limit]

    # -- reports ------------------------------------------------------------------

    @staticmethod
    def photo_uses(cid: str, node: Mapping[str, Any]) -> list[tuple[Any, dict[str, Any]]]:
        """Index rows for a tally: each photo with its record and unit (finds reused photos)."""
        photos = {link["/"] if isinstance(link, Mapping) else str(link) for link in node.get("photos", {}).values()}
        return [(PHOTO_USES, {"photo_cid": photo, "record_cid": cid, "unit": node["polling_unit"]}) for photo in sorted(photos)]

    def submit_report(self, submission: Mapping[str, Any], *, reporter: str | None = None) -> Accepted:
        """A volunteer's report: permission, acceptance into the ledger, then screening."""
        answer = self.submit_reports([(submission, reporter)])[0]
        if isinstance(answer, LedgerError):
            raise answer
        return answer

    def submit_reports(
        self,
        reports: list[tuple[Mapping[str, Any], str | None]],
        prepared: Sequence[Prepared | LedgerError | None] | None = None,
    ) -> list[Accepted | LedgerError]:
        """Many reports ``(submission, reporter)`` at once, committed in one transaction: what
        a busy server does with the submissions that arrived while it committed the last
        group. One answer per report, in order: its ``Accepted``, or the ``LedgerError`` that
        refused it (permission, validation, a reused submission id). A refusal never affects
        the other reports of the group.

        ``prepared`` may hold, per report, what ``Ledger.prepare_tally`` already made of it
        elsewhere (``ledger.intake.prepare``: a ``Prepared`` or the error refusing it); ``None``
        there, or no list, means it is prepared here. Permission is checked here either way,
        and first, so the answers are the same."""
        if prepared is not None and len(prepared) != len(reports):
            raise ValueError(f"{len(prepared)} prepared answers for {len(reports)} reports")
        answers: list[Accepted | LedgerError | None] = [None] * len(reports)
        asking: list[tuple[int, str, str]] = []
        for position, (submission, reporter) in enumerate(reports):
            submitter = submission.get("submitter") if isinstance(submission, Mapping) else None
            unit_id = submission.get("polling_unit") if isinstance(submission, Mapping) else None
            if isinstance(submitter, str) and isinstance(unit_id, str):
                try:
                    asking.append((position, to_checksum_address(reporter or submitter), unit_id))
                except InvalidSignature:
                    pass  # validation reports the malformed address with its field path
        if asking:
            for (position, who, _), allowed in zip(asking, self._may_report([(w, u) for _, w, u in asking]), strict=True):
                if isinstance(allowed, Forbidden):
                    answers[position] = allowed
                elif not allowed and not self.open_reporting:
                    answers[position] = Forbidden(
                        f"{who} is not a member of the coalition's hierarchy; "
                        "a coordinator registers volunteers and assigns their units"
                    )
        # Tallies that no prepare worker prepared are prepared here, their photo links
        # checked only for stored blocks, as a worker checks them (it cannot see the photo
        # index); then every link of the group is checked against the index in one query.
        readied: dict[int, Prepared] = {}
        for position, (submission, _) in enumerate(reports):
            if answers[position] is not None:
                continue
            ready = prepared[position] if prepared is not None else None
            if isinstance(ready, LedgerError):
                answers[position] = ready
                continue
            if ready is None:
                try:
                    ready = self.ledger.prepare_tally(submission, index=self.photo_uses, links_checked_by_caller=True)
                except LedgerError as refused:
                    answers[position] = refused
                    continue
            else:
                ready = replace(ready, index=(*ready.index, *self.photo_uses(ready.row["cid"], ready.row["document"])))
            readied[position] = ready
        photos_here = self.ledger.image_photos(
            cid for ready in readied.values() for _, cid in _photo_links(ready.row["document"])
        )
        group: list[Prepared] = []
        positions: list[int] = []
        for position, ready in readied.items():
            unknown = [(role, cid) for role, cid in _photo_links(ready.row["document"]) if cid not in photos_here]
            if unknown:  # the message validation gives when it checks the index itself
                answers[position] = InvalidTally(
                    [FieldError(("photos", role), f"photo {cid} is not stored here; upload it first") for role, cid in unknown]
                )
                continue
            group.append(ready)
            positions.append(position)
        created: set[str] = set()
        for position, answer in zip(positions, self.ledger.commit(group), strict=True):
            answers[position] = answer
            if isinstance(answer, Accepted) and answer.created:
                created.add(str(answer.receipt["polling_unit"]))
        if self.defer_screening:
            with self._pending_lock:
                self._pending_units.update(created)
        else:
            self.screen_units(created)
        done = [answer for answer in answers if answer is not None]
        assert len(done) == len(reports), "every report has its answer"
        return done

    def screen_pending(self) -> int:
        """Screen every unit that received reports since the last call (deferred screening,
        which keeps the submission path short: the API's runtime calls this every moment)."""
        with self._pending_lock:
            units, self._pending_units = self._pending_units, set()
        self.screen_units(units)
        return len(units)

    def screen_unscreened(self) -> int:
        """Screen units whose reports outnumber what their review has seen (after a restart
        lost the in-memory queue of deferred screening)."""
        with self.database.session() as session:
            counts = dict(
                session.execute(
                    select(Entry.polling_unit, func.count()).where(Entry.kind == "tally").group_by(Entry.polling_unit)
                ).all()
            )
            seen = dict(session.execute(select(UnitReview.unit, UnitReview.report_count)).all())
        stale = [unit for unit, count in counts.items() if seen.get(unit, 0) < count]
        self.screen_units(stale)
        return len(stale)

    def screen_units(self, unit_ids: Iterable[str], *, chunk: int = 256) -> dict[str, Assessment]:
        """Screen many units, a chunk at a time: a few queries and one transaction per chunk
        rather than per unit, and the automatic acceptances committed as one group."""
        ordered = sorted(set(unit_ids))
        assessments: dict[str, Assessment] = {}
        for start in range(0, len(ordered), chunk):
            units = ordered[start : start + chunk]
            try:
                assessments.update(self._screen_chunk(units))
            except Exception:  # noqa: BLE001 - find the unit that fails, screen the others
                for unit_id in units:
                    try:
                        assessments.update(self._screen_chunk([unit_id]))
                    except Exception as first:  # noqa: BLE001
                        # Set aside the unit's records whose numbers cannot be read, and
                        # screen its other reports without them; the unit itself only if
                        # it still fails.
                        failure: Exception = first
                        if self._set_aside_unreadable(unit_id):
                            try:
                                assessments.update(self._screen_chunk([unit_id]))
                                continue
                            except Exception as again:  # noqa: BLE001
                                failure = again
                        self.aggregates.quarantine.add("screening", unit_id, unit_id, failure)
                    else:
                        self.aggregates.quarantine.discard("screening", unit_id)
        return assessments

    def _set_aside_unreadable(self, unit_id: str) -> bool:
        """Set aside the reports of ``unit_id`` whose numbers cannot be read; True if any."""
        constituency_id = self.election.polling_unit(unit_id).constituency_id
        found = False
        for report in self._reports([unit_id])[unit_id]:
            if not countable(constituency_id, report.document, self.election):
                self._set_aside_reports.add(report.record_cid)
                self.aggregates.quarantine.add(
                    "screening",
                    report.record_cid,
                    unit_id,
                    "its numbers cannot be read; the unit's other reports are screened without it",
                )
                found = True
        return found

    def _screen_chunk(self, unit_ids: list[str]) -> dict[str, Assessment]:
        with self._lock:
            reports = self._reports(unit_ids)
            contexts = self._contexts(unit_ids, reports)
            assessments = {
                unit_id: assess_unit(
                    unit_id,
                    reports[unit_id],
                    required_organisations=self.required_organisations,
                    max_photo_distance_km=self.max_photo_distance_km,
                    **contexts[unit_id],
                )
                for unit_id in unit_ids
            }
            self._store_assessments(assessments, {unit_id: len(reports[unit_id]) for unit_id in unit_ids})
            agreed = [
                assessment
                for unit_id, assessment in assessments.items()
                if assessment.outcome == "agreed" and assessment.accepted_cid and self.replay.unit(unit_id).status == "open"
            ]
            if agreed:
                for assessment in agreed:  # the rules ask about the record: it is at hand, not in the database
                    for report in reports[assessment.unit]:
                        if report.record_cid == assessment.accepted_cid:
                            self._remember_record(report.record_cid, assessment.unit, report.document)
                self._auto_accept(agreed)
            return assessments

    def _reports(self, unit_ids: list[str]) -> dict[str, list[Report]]:
        found: dict[str, list[Report]] = {unit_id: [] for unit_id in unit_ids}
        with self.database.session() as session:
            rows = session.execute(
                select(
                    Entry.id,
                    Entry.cid,
                    Entry.signer,
                    Entry.document,
                    Entry.polling_unit,
                    Member.organisation_id,
                    Member.flagged_at,
                )
                .outerjoin(Member, Member.address == Entry.signer)
                .where(Entry.polling_unit.in_(unit_ids), Entry.kind == "tally")
                .order_by(Entry.id)
            ).all()
        for row in rows:
            if row.cid not in self.replay.unit(row.polling_unit).rejected and row.cid not in self._set_aside_reports:
                found[row.polling_unit].append(
                    Report(row.cid, row.id, row.signer, row.organisation_id, row.document, held=row.flagged_at is not None)
                )
        return found

    def _contexts(self, unit_ids: list[str], reports: dict[str, list[Report]]) -> dict[str, dict[str, Any]]:
        photos = sorted(
            {
                (link["/"] if isinstance(link, Mapping) else str(link))
                for unit_reports in reports.values()
                for r in unit_reports
                for link in r.document.get("photos", {}).values()
            }
        )
        photo_units: dict[str, set[str]] = {}
        photo_locations = {}
        photo_evidence: dict[str, PhotoEvidence] = {}
        hashes: dict[str, str] = {}
        local_zone = self.count_window[0].tzinfo or UTC
        with self.database.session() as session:
            for start in range(0, len(photos), 500):
                chunk = photos[start : start + 500]
                for use in session.execute(select(PhotoUse.photo_cid, PhotoUse.unit).where(PhotoUse.photo_cid.in_(chunk))):
                    photo_units.setdefault(use.photo_cid, set()).add(use.unit)
                for row in session.execute(select(Photo.cid, Photo.exif, Photo.perceptual_hash).where(Photo.cid.in_(chunk))):
                    exif = row.exif or {}
                    gps = exif.get("gps") or {}
                    location = None
                    if "lat" in gps and "lon" in gps:
                        photo_locations[row.cid] = location = (float(gps["lat"]), float(gps["lon"]))
                    taken_at, source = taken_at_of(exif, local_zone=local_zone)
                    photo_evidence[row.cid] = PhotoEvidence(taken_at, location, source)
                    if row.perceptual_hash:
                        hashes[row.cid] = row.perceptual_hash
            lookalikes = self._lookalikes(session, hashes)
            locations = {
                row.unit: (row.latitude, row.longitude)
                for row in session.scalars(select(UnitLocation).where(UnitLocation.unit.in_(unit_ids)))
            }
        view = self.aggregates.view("unofficial")
        contexts = {}
        for unit_id in unit_ids:
            unit = self.election.polling_unit(unit_id)
            contexts[unit_id] = {
                "photo_units": photo_units,
                "photo_locations": photo_locations,
                "unit_location": locations.get(unit_id),
                "constituency_shares": view.constituency_party_shares(unit.constituency_id, exclude_unit=unit_id),
                "photo_evidence": photo_evidence,
                "count_window": self.count_window,
                "photo_lookalikes": lookalikes,
            }
        return contexts

    def _lookalikes(self, session: Any, hashes: Mapping[str, str]) -> dict[str, list[Lookalike]]:
        """Per photo (CID to perceptual hash), the other photos at most
        ``photo_similarity_max_bits`` away and the units they were submitted for. Candidates
        share one 16-bit band whole, found through the primary key of ``photo_hash_bands``
        (so every copy up to 3 bits away is found, and most farther ones), then compared
        whole."""
        if not hashes:
            return {}
        wanted: dict[tuple[int, int], set[str]] = {}
        for cid, value in hashes.items():
            for band, part in enumerate(hash_bands(value)):
                if _informative_band(part):
                    wanted.setdefault((band, part), set()).add(cid)
        found: dict[str, dict[str, int]] = {}
        for band in range(4):
            parts = sorted(part for b, part in wanted if b == band)
            for start in range(0, len(parts), 500):
                chunk = parts[start : start + 500]
                # Bounded: a band value that thousands of photos share says little, and
                # fetching them all for every photo would grow with the square of the night.
                rows = session.execute(
                    select(PhotoHashBand.value, PhotoHashBand.photo_cid, PhotoHashBand.perceptual_hash)
                    .where(PhotoHashBand.band == band, PhotoHashBand.value.in_(chunk))
                    .limit(_LOOKALIKE_CANDIDATES * len(chunk))
                )
                for row in rows:
                    for cid in wanted[(band, row.value)]:
                        if row.photo_cid == cid:
                            continue
                        distance = hamming_distance(hashes[cid], row.perceptual_hash)
                        if distance <= self.photo_similarity_max_bits:
                            found.setdefault(cid, {})[row.photo_cid] = distance
        others = sorted({other for near in found.values() for other in near})
        units: dict[str, set[str]] = {}
        for start in range(0, len(others), 500):
            for use in session.execute(
                select(PhotoUse.photo_cid, PhotoUse.unit).where(PhotoUse.photo_cid.in_(others[start : start + 500]))
            ):
                units.setdefault(use.photo_cid, set()).add(use.unit)
        return {
            cid: [
                Lookalike(other, frozenset(units[other]), distance) for other, distance in sorted(near.items()) if other in units
            ]
            for cid, near in found.items()
        }

    def _store_assessments(self, assessments: dict[str, Assessment], report_counts: dict[str, int]) -> None:
        """Each unit's outcome, flags and state, in two statements for the whole chunk (rows
        for new units, and updates of known ones), not an ORM object per unit."""
        now = self.clock()
        table = UnitReview.__table__
        with self.database.session() as session:
            known = set(session.scalars(select(UnitReview.unit).where(UnitReview.unit.in_(list(assessments)))))
            new, changed = [], []
            for unit_id, assessment in assessments.items():
                values = {
                    "outcome": assessment.outcome,
                    "flags": [f.as_json() for f in assessment.flags],
                    "report_count": report_counts[unit_id],
                    "status": self.replay.unit(unit_id).status,
                    "updated_at": now,
                }
                if unit_id in known:
                    changed.append({"unit_id": unit_id, **values})
                else:
                    new.append(
                        {
                            "unit": unit_id,
                            "constituency_id": self.election.polling_unit(unit_id).constituency_id,
                            "first_report_at": now,
                            **values,
                        }
                    )
            if new:
                session.execute(insert(table), new)
            if changed:
                session.execute(
                    update(table)
                    .where(table.c.unit == bindparam("unit_id"))
                    .values({name: bindparam(name) for name in ("outcome", "flags", "report_count", "status", "updated_at")}),
                    changed,
                )

    def _auto_accept(self, assessments: list[Assessment]) -> None:
        """Accept agreeing units with decisions signed by the ledger's verifier key. A unit
        the war room reopened after an automatic acceptance of the same record is left to
        people: its decision id is taken, and accepting it again would undo the reopening."""
        nodes = []
        for assessment in assessments:
            assert assessment.accepted_cid is not None
            nodes.append(
                {
                    "format": "tally-decision-v1",
                    "election": self.election.id,
                    "decision_id": f"auto-{assessment.unit}-{assessment.accepted_cid[-16:]}",
                    "decided_at": format_time_micro(self.clock()),
                    "decider": self.verifier,
                    "role": LEDGER,
                    "action": "accept",
                    "subject": assessment.unit,
                    "record": CID.parse(assessment.accepted_cid),
                    "reason": f"{len(assessment.agreeing)} reports from {len(assessment.organisations)} organisations agree",
                }
            )
        with self.database.session() as session:
            taken = set(
                session.scalars(
                    select(Entry.submission_id).where(
                        Entry.signer == self.verifier, Entry.submission_id.in_([str(n["decision_id"]) for n in nodes])
                    )
                )
            )
        group = []
        for node in nodes:
            if node["decision_id"] in taken:
                continue
            self.replay.check(_node_view(node))
            unit = self.election.polling_unit(str(node["subject"]))
            group.append(
                self.ledger.prepare(
                    sign_entry(node, self._verifier_key),
                    kind="decision",
                    subject=unit.id,
                    constituency_id=unit.constituency_id,
                    signer=self.verifier,
                    entry_id=str(node["decision_id"]),
                )
            )
        if group:
            for answer in self.ledger.commit(group):
                if isinstance(answer, LedgerError):  # its id was taken between the look-up and the commit
                    log.warning("automatic acceptance not recorded: %s", answer)
            self.load()

    # -- decisions ----------------------------------------------------------------

    def decide(self, submission: Mapping[str, Any], *, signed_in_as: str | None = None) -> Accepted:
        """A person's signed decision: shape and signature, who may decide it, then the rules."""
        (answer,) = self.decide_many([(submission, signed_in_as)])
        if isinstance(answer, LedgerError):
            raise answer
        return answer

    def decide_many(self, decisions: Sequence[tuple[Mapping[str, Any], str | None]]) -> list[Accepted | LedgerError]:
        """Many decisions ``(submission, signed_in_as)`` in order, as if one by one, each
        with its own answer: its ``Accepted`` or the ``LedgerError`` refusing it.

        Decisions that touch different units and constituencies cannot affect each other's
        rules, so a run of them is checked against the same replayed state and committed in
        one transaction; a decision touching what an earlier one of the run touched (or a
        ``reopen``, which names another decision) starts a new run, after the earlier one
        is committed and replayed."""
        answers: list[Accepted | LedgerError | None] = [None] * len(decisions)
        members: dict[str, Member | NotFound] = {}
        run: list[tuple[int, dict[str, object]]] = []
        touched: set[str] = set()
        for position, (submission, signed_in_as) in enumerate(decisions):
            try:
                node = self._permitted(submission, signed_in_as, members)
            except LedgerError as refused:
                answers[position] = refused
                continue
            touches = self._touches(node)
            if run and (touches & touched or node["action"] == "reopen" or run[-1][1]["action"] == "reopen"):
                self._accept_run(run, answers)
                run, touched = [], set()
            run.append((position, node))
            touched |= touches
        if run:
            self._accept_run(run, answers)
        done = [answer for answer in answers if answer is not None]
        assert len(done) == len(decisions), "every decision has its answer"
        return done

    def _permitted(
        self, submission: Mapping[str, Any], signed_in_as: str | None, members: dict[str, Member | NotFound]
    ) -> dict[str, object]:
        """The decision validated, from a member who may decide it (``members`` caches look-ups)."""
        node = validate_decision(submission, election=self.election)
        decider = str(node["decider"])
        if signed_in_as is not None and to_checksum_address(signed_in_as) != decider:
            raise Forbidden(f"this decision is signed by {decider}, but you are signed in as {signed_in_as}")
        if decider not in members:
            try:
                members[decider] = self.member(decider)
            except NotFound as missing:
                members[decider] = missing
        member = members[decider]
        if isinstance(member, NotFound):
            raise member
        role = LEVEL_ROLES[member.level]
        if node["role"] != role:
            raise Forbidden(f"{member.public_id} is a {role}, but the decision says {node['role']}")
        subject = str(node["subject"])
        if role == CONSTITUENCY_HEAD:
            constituency = self.election.polling_unit(subject).constituency_id
            if constituency not in self.assigned_areas(decider):
                raise Forbidden(f"head {member.public_id} does not oversee constituency {constituency}")
        elif role == VOLUNTEER:
            raise Forbidden("unit volunteers report counts; decisions are for heads and the war room")
        return node

    def _touches(self, node: Mapping[str, object]) -> set[str]:
        """The units and constituencies whose state a decision reads or changes."""
        subject = str(node["subject"])
        if subject in self.election.constituencies:
            return {subject, *(unit.id for unit in self.election.polling_units(subject))}
        return {subject}

    def _accept_run(self, run: list[tuple[int, dict[str, object]]], answers: list[Accepted | LedgerError | None]) -> None:
        """Check each decision of an independent run against the replay, commit those that
        pass in one transaction, then replay them."""
        with self._lock:
            group: list[Prepared] = []
            positions: list[int] = []
            for position, node in run:
                try:
                    self.replay.check(_node_view(node))
                except DecisionRefused as refused:
                    # A retry of a decision already applied is refused by the rules as they
                    # stand now; the ledger answers it with its first receipt (or 409 if it differs).
                    if self._existing_decision(str(node["decider"]), str(node["decision_id"])) is None:
                        answers[position] = refused
                        continue
                subject = str(node["subject"])
                if subject in self.election.constituencies:
                    constituency_id = subject
                else:
                    constituency_id = self.election.polling_unit(subject).constituency_id
                group.append(
                    self.ledger.prepare(
                        node,
                        kind="decision",
                        subject=subject,
                        constituency_id=constituency_id,
                        signer=str(node["decider"]),
                        entry_id=str(node["decision_id"]),
                    )
                )
                positions.append(position)
            created = False
            for position, answer in zip(positions, self.ledger.commit(group), strict=True):
                answers[position] = answer
                created = created or (isinstance(answer, Accepted) and answer.created)
            if created:
                self.load()

    def _existing_decision(self, decider: str, decision_id: str) -> Entry | None:
        with self.database.session() as session:
            return session.scalars(
                select(Entry).where(Entry.kind == "decision", Entry.signer == decider, Entry.submission_id == decision_id)
            ).one_or_none()

    def _count_rejection(self, record_cid: str) -> None:
        with self.database.session() as session:
            signer = session.scalar(select(Entry.signer).where(Entry.cid == record_cid))
            if signer is None:
                return
            member = session.get(Member, signer)
            if member is None:
                return
            member.rejected_reports += 1
            total = session.scalar(select(func.count()).select_from(Entry).where(Entry.signer == signer, Entry.kind == "tally"))
            if (
                member.rejected_reports >= FLAG_AFTER_REJECTIONS
                and member.rejected_reports * 2 >= (total or 0)
                and member.flagged_at is None
            ):
                member.flagged_at = self.clock()

    # -- queues and views ---------------------------------------------------------

    def head_queue(self, address: str, *, limit: int = 100) -> list[dict[str, Any]]:
        """Units in the head's constituencies that need a decision, oldest first: conflicts
        and flags, then units still waiting for a second organisation."""
        member = self.member(address)
        if member.level != 2:
            raise Forbidden("the review queue is for constituency heads")
        return self.constituency_queue(sorted(self.assigned_areas(member.address)), limit=limit)

    def constituency_queue(self, constituencies: list[str], *, limit: int = 100) -> list[dict[str, Any]]:
        """Units needing a decision in these constituencies (a head signed in with an API key)."""
        with self.database.session() as session:
            rows = session.scalars(
                select(UnitReview)
                .where(
                    UnitReview.constituency_id.in_(constituencies),
                    UnitReview.status == "open",
                    UnitReview.outcome.in_(("needs_review", "waiting")),
                )
                .order_by(UnitReview.first_report_at)
                .limit(limit * 2)
            ).all()
        ordered = sorted(rows, key=lambda r: (r.outcome != "needs_review", r.first_report_at))[:limit]
        return [_review_json(r) for r in ordered]

    def war_room_queue(self, *, limit: int = 100) -> dict[str, Any]:
        with self.database.session() as session:
            escalated = session.scalars(
                select(UnitReview).where(UnitReview.status == "escalated").order_by(UnitReview.updated_at).limit(limit)
            ).all()
            to_certify = session.scalars(
                select(UnitReview).where(UnitReview.status == "accepted").order_by(UnitReview.updated_at).limit(limit)
            ).all()
        ready = [
            cid
            for cid in self.election.constituencies
            if not self.replay.constituency(cid).certified
            and all(self.replay.unit(u.id).status in ("certified", "excluded") for u in self.election.polling_units(cid))
        ][:limit]
        return {
            "escalations": [_review_json(r) for r in escalated],
            "units_to_certify": [_review_json(r) for r in to_certify],
            "constituencies_ready": ready,
        }

    def may_see_uploader(self, caller: Caller, photo_cid: str) -> bool:
        """Whether ``caller`` sees who uploaded a photo, besides the uploader: the rule of
        ``may_see_reporters`` for any unit a report used the photo for."""
        if caller.role in REPORTER_VIEWERS:
            return True
        if caller.role != CONSTITUENCY_HEAD:
            return False
        with self.database.session() as session:
            units = set(session.scalars(select(PhotoUse.unit).where(PhotoUse.photo_cid == photo_cid)))
        return any(self.may_see_reporters(caller, unit) for unit in units)

    def may_see_reporters(self, caller: Caller, unit_id: str) -> bool:
        """Whether ``caller`` sees who reported a unit (``unit_review(full=True)``): the war
        room and the admin, and a head whose constituencies (API key scope, or assignments
        when signed in) hold the unit. Everyone else gets the public view."""
        if caller.role in REPORTER_VIEWERS:
            return True
        if caller.role != CONSTITUENCY_HEAD:
            return False
        unit = self.election.polling_unit(unit_id)
        if caller.address is not None:
            return unit.constituency_id in self.assigned_areas(caller.address)
        scope = caller.scope or {}
        province_id = self.election.constituency(unit.constituency_id).province_id
        return unit.constituency_id in scope.get("constituencies", []) or province_id in scope.get("provinces", [])

    def unit_review(self, unit_id: str, *, full: bool = False) -> dict[str, Any]:
        """The unit's reports side by side, with their photos, flags and decisions.

        The public view (``full=False``) shows each report's record CID, organisation,
        time and numbers, but neither the signer's address nor the opaque volunteer id,
        and flags name no address: the record itself (public by its CID) carries its
        submitter, so a public volunteer id would tie that address to everything else the
        id is shown with. The full view, for the people who judge the reports
        (``may_see_reporters``), adds the volunteer id and the record as signed."""
        unit = self.election.polling_unit(unit_id)
        with self.database.session() as session:
            review = session.get(UnitReview, unit.id)
            rows = session.execute(
                select(Entry, Member.organisation_id, Member.public_id)
                .outerjoin(Member, Member.address == Entry.signer)
                .where(Entry.polling_unit == unit.id)
                .order_by(Entry.id)
            ).all()
        state = self.replay.unit(unit.id)
        return {
            "unit": unit.id,
            "constituency_id": unit.constituency_id,
            "registered_voters": unit.registered_voters,
            "status": state.status,
            "accepted": state.accepted,
            "certified": state.certified,
            "rejected": sorted(state.rejected),
            "outcome": review.outcome if review else "waiting",
            "flags": (review.flags if full else public_flags(review.flags)) if review else [],
            "reports": [
                {
                    "record_cid": e.cid,
                    "organisation": org,
                    "volunteer": public_id,
                    "received_at": format_time_micro(e.received_at),
                    "document": e.document,
                }
                if full
                else {
                    "record_cid": e.cid,
                    "organisation": org,
                    "received_at": format_time_micro(e.received_at),
                    "document": {k: v for k, v in e.document.items() if k not in PRIVATE_RECORD_FIELDS},
                }
                for e, org, public_id in rows
                if e.kind == "tally"
            ],
            "view": "full" if full else "public",
            "decisions": [
                {
                    "decision_cid": e.cid,
                    "action": e.document.get("action"),
                    "role": e.document.get("role"),
                    "reason": e.document.get("reason"),
                    "decided_at": e.document.get("decided_at"),
                }
                for e, _org, _public_id in rows
                if e.kind == "decision"
            ],
        }

    def flagged_members(self, organisation_id: str | None = None) -> list[dict[str, Any]]:
        with self.database.session() as session:
            query = select(Member).where(Member.flagged_at.is_not(None))
            if organisation_id:
                query = query.where(Member.organisation_id == organisation_id)
            rows = session.scalars(query).all()
        return [
            {
                "volunteer": m.public_id,
                "address": m.address,
                "organisation": m.organisation_id,
                "rejected_reports": m.rejected_reports,
                "refused_attempts": m.refused_attempts,
                "flagged_at": format_time_micro(m.flagged_at),
            }
            for m in rows
            if m.flagged_at
        ]

    def import_unit_locations(self, rows: Sequence[UnitListRow], *, rescreen: bool = True) -> dict[str, int]:
        """Store a checked unit list (``ledger.election.unit_list``): each unit's coordinates
        and name, replacing what was known; importing the same list again changes nothing.
        Units whose location changed and that have reports are screened again, so that their
        photos are measured against the real place. Counts: added, changed, unchanged, rescreened."""
        counts = {"added": 0, "changed": 0, "unchanged": 0, "rescreened": 0}
        moved: list[str] = []
        with self.database.session() as session:
            for start in range(0, len(rows), 500):
                chunk = rows[start : start + 500]
                known = {
                    row.unit: row
                    for row in session.scalars(select(UnitLocation).where(UnitLocation.unit.in_([r.unit for r in chunk])))
                }
                for row in chunk:
                    existing = known.get(row.unit)
                    if existing is None:
                        session.add(UnitLocation(unit=row.unit, latitude=row.latitude, longitude=row.longitude, name=row.name))
                        counts["added"] += 1
                        moved.append(row.unit)
                    elif (existing.latitude, existing.longitude, existing.name) != (row.latitude, row.longitude, row.name):
                        if (existing.latitude, existing.longitude) != (row.latitude, row.longitude):
                            moved.append(row.unit)
                        existing.latitude, existing.longitude, existing.name = row.latitude, row.longitude, row.name
                        counts["changed"] += 1
                    else:
                        counts["unchanged"] += 1
        if rescreen and moved:
            reported: list[str] = []
            with self.database.session() as session:
                for start in range(0, len(moved), 500):
                    reported += session.scalars(select(UnitReview.unit).where(UnitReview.unit.in_(moved[start : start + 500])))
            self.screen_units(reported)
            counts["rescreened"] = len(reported)
        return counts

    def set_unit_location(self, unit_id: str, latitude: float, longitude: float) -> None:
        self.election.polling_unit(unit_id)
        with self.database.session() as session:
            row = session.get(UnitLocation, unit_id)
            if row is None:
                session.add(UnitLocation(unit=unit_id, latitude=latitude, longitude=longitude))
            else:
                row.latitude, row.longitude = latitude, longitude


PRIVATE_RECORD_FIELDS = frozenset({"submitter", "signature"})
"""Left out of the public unit review's copy of each record (they are in the record by CID)."""
_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")


def public_flags(flags: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Flags as the public sees them: any address in a detail becomes "the submitter"."""
    return [{**flag, "detail": _ADDRESS.sub("the submitter", str(flag.get("detail", "")))} for flag in flags]


def _is_unit_id(area: str) -> bool:
    """A polling unit id has the form ``<constituency>-<4 digits>``; a constituency id has no dash."""
    constituency, dash, number = area.rpartition("-")
    return bool(dash and constituency) and len(number) == 4 and number.isascii() and number.isdigit()


_LOOKALIKE_CANDIDATES = 64
"""Candidates read per band value looked up (the query's limit is this times the values)."""


def _informative_band(part: int) -> bool:
    """A 16-bit band of a perceptual hash worth looking up: not (nearly) all one way, as the
    bands of flat regions (sky, a blank wall, the margin of a form) are."""
    return 3 <= part.bit_count() <= 13


def _photo_links(document: Mapping[str, Any]) -> list[tuple[str, str]]:
    """``(role, photo CID)`` of a tally's photo links, in role order (JSON or node form)."""
    links = document.get("photos") or {}
    return [(role, link["/"] if isinstance(link, Mapping) else str(link)) for role, link in sorted(links.items())]


def _node_view(node: Mapping[str, Any]) -> dict[str, Any]:
    """A decision with its links as CID strings (the form ``Replay`` reads)."""
    return {k: (str(v) if isinstance(v, CID) else link_text(v) if isinstance(v, Mapping) else v) for k, v in node.items()}


def _review_json(row: UnitReview) -> dict[str, Any]:
    return {
        "unit": row.unit,
        "constituency_id": row.constituency_id,
        "status": row.status,
        "outcome": row.outcome,
        "flags": row.flags,
        "accepted_cid": row.accepted_cid,
        "report_count": row.report_count,
        "first_report_at": format_time_micro(row.first_report_at),
    }


__all__ += ["DecisionRefused"]
