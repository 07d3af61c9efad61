"""The volunteer hierarchy and the verification of counts, over the database: the facade.

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

``ReviewService`` composes one part per job and answers for them all:

=====================================  ================================================
``ledger.people.registry``             organisations, volunteers and members
``ledger.people.assignments``          members' areas, and who may report which unit
``ledger.review.replay``               the decisions replayed, the index that follows it
``ledger.review.reports``              report intake (``submit_reports``)
``ledger.review.screener``             screening runs and automatic acceptances
``ledger.review.evidence``             the photo and place context of screening
``ledger.review.decisions``            people's decisions
``ledger.review.queues``               queues and the unit review views
``ledger.review.locations``            the polling units' places
=====================================  ================================================
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from ledger.core.decision import DecisionRefused, Replay
from ledger.election import Election
from ledger.election.unit_list import UnitListRow
from ledger.errors import LedgerError
from ledger.intake.service import Accepted, Ledger, Prepared
from ledger.people.assignments import Assignments
from ledger.people.authority import AuthorityLog
from ledger.people.callers import Caller
from ledger.people.registry import PeopleRegistry
from ledger.people.roles import LEVEL_ROLES
from ledger.results.aggregates import Aggregates
from ledger.review.decisions import Decisions
from ledger.review.evidence import Evidence
from ledger.review.locations import UnitLocations
from ledger.review.queues import PRIVATE_RECORD_FIELDS, Queues, public_flags
from ledger.review.replay import DecisionReplay
from ledger.review.reports import PHOTO_USES, ReportIntake
from ledger.review.screener import Screener
from ledger.review.screening import Assessment
from ledger.store.people import MemberRow, OrganisationRow

__all__ = [
    "LEVEL_ROLES",
    "PHOTO_USES",
    "PRIVATE_RECORD_FIELDS",
    "DecisionRefused",
    "ReviewService",
    "public_flags",
]


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
        authority: AuthorityLog | None = None,
        max_excluded_share: float = 0.05,
    ):
        """``photo_window``: how long before and after the polls close a photo of the count may
        be taken (default 16:30 to 24:00 on polling day); ``photo_similarity_max_bits``: the
        largest perceptual-hash distance of a near-duplicate photo; ``authority``: the log
        that registrations and assignments are stated in, and that decisions are checked
        against (``ledger.people.authority``)."""
        self.ledger = ledger
        self.database = ledger.database
        self.election: Election = ledger.election
        self.aggregates = aggregates
        self.clock = clock
        now = self._now
        close = datetime.fromisoformat(self.election.polls_close)
        self.count_window = (close - photo_window[0], close + photo_window[1])
        self.people = PeopleRegistry(database=self.database, clock=now, authority=authority)
        self.assignments = Assignments(database=self.database, election=self.election, people=self.people, clock=now)
        self.decision_replay = DecisionReplay(
            database=self.database,
            election=self.election,
            aggregates=aggregates,
            clock=now,
            on_rejected=self.people.count_rejection,
        )
        evidence = Evidence(
            database=self.database,
            election=self.election,
            aggregates=aggregates,
            count_window=self.count_window,
            photo_similarity_max_bits=photo_similarity_max_bits,
        )
        self.screener = Screener(
            ledger=ledger,
            aggregates=aggregates,
            decisions=self.decision_replay,
            evidence=evidence,
            verifier_key=verifier_key,
            required_organisations=required_organisations,
            max_photo_distance_km=max_photo_distance_km,
            clock=now,
        )
        self.verifier = self.screener.verifier
        ledger.basis_of = self.decision_replay.certification_bases.get
        self.reports = ReportIntake(
            ledger=ledger,
            assignments=self.assignments,
            screener=self.screener,
            open_reporting=open_reporting,
            defer_screening=defer_screening,
        )
        self.decisions = Decisions(
            ledger=ledger,
            people=self.people,
            assignments=self.assignments,
            decisions=self.decision_replay,
            max_excluded_share=max_excluded_share,
        )
        self.queues = Queues(
            database=self.database,
            election=self.election,
            people=self.people,
            assignments=self.assignments,
            decisions=self.decision_replay,
        )
        self.locations = UnitLocations(database=self.database, election=self.election, screener=self.screener)

    def _now(self) -> datetime:
        return self.clock()

    @property
    def replay(self) -> Replay:
        """The replay of every decision accepted so far (``ledger.core.decision``)."""
        return self.decision_replay.replay

    @property
    def open_reporting(self) -> bool:
        return self.reports.open_reporting

    @open_reporting.setter
    def open_reporting(self, value: bool) -> None:
        if self.people.authority is not None:  # the policy is stated in the authority log first
            self.people.authority.set_open_reporting(value)
        self.reports.open_reporting = value

    @property
    def defer_screening(self) -> bool:
        return self.reports.defer_screening

    @defer_screening.setter
    def defer_screening(self, value: bool) -> None:
        self.reports.defer_screening = value

    # -- replay -------------------------------------------------------------------

    def load(self) -> int:
        """Replay every decision accepted since the last call (all of them the first time)."""
        return self.decision_replay.load()

    # -- people -------------------------------------------------------------------

    def create_organisation(self, *, organisation_id: str, name: str, kind: str) -> OrganisationRow:
        return self.people.create_organisation(organisation_id=organisation_id, name=name, kind=kind)

    def organisations(self) -> list[OrganisationRow]:
        return self.people.organisations()

    def register_member(self, **member: Any) -> MemberRow:
        """``PeopleRegistry.register_member``: a person at a level, by who may register them."""
        return self.people.register_member(**member)

    def member(self, address: str) -> MemberRow:
        return self.people.member(address)

    def role_of(self, address: str) -> str | None:
        return self.people.role_of(address)

    def assign(self, **assignment: Any) -> list[str]:
        """``Assignments.assign``: units to a level-1 volunteer, constituencies to a head."""
        return self.assignments.assign(**assignment)

    def assigned_areas(self, address: str) -> set[str]:
        return self.assignments.assigned_areas(address)

    def coverage(self, constituency_id: str | None = None) -> list[dict[str, Any]]:
        return self.assignments.coverage(constituency_id)

    def uncovered_units(self, constituency_id: str, *, limit: int = 1000) -> list[str]:
        return self.assignments.uncovered_units(constituency_id, limit=limit)

    # -- reports and screening ----------------------------------------------------

    photo_uses = staticmethod(ReportIntake.photo_uses)

    def submit_report(self, submission: Mapping[str, Any], *, reporter: str | None = None) -> Accepted:
        return self.reports.submit_report(submission, reporter=reporter)

    def submit_reports(
        self,
        reports: list[tuple[Mapping[str, Any], str | None]],
        prepared: Sequence[Prepared | LedgerError | None] | None = None,
    ) -> list[Accepted | LedgerError]:
        """``ReportIntake.submit_reports``: many reports, one transaction, one answer each."""
        return self.reports.submit_reports(reports, prepared)

    def screen_pending(self) -> int:
        return self.screener.screen_pending()

    def screen_unscreened(self) -> int:
        return self.screener.screen_unscreened()

    def screen_units(self, unit_ids: Iterable[str], *, chunk: int = 256) -> dict[str, Assessment]:
        return self.screener.screen_units(unit_ids, chunk=chunk)

    def import_unit_locations(self, rows: Sequence[UnitListRow], *, rescreen: bool = True) -> dict[str, int]:
        return self.locations.import_unit_locations(rows, rescreen=rescreen)

    def set_unit_location(self, unit_id: str, latitude: float, longitude: float) -> None:
        self.locations.set_unit_location(unit_id, latitude, longitude)

    # -- decisions ----------------------------------------------------------------

    def decide(self, submission: Mapping[str, Any], *, signed_in_as: str | None = None) -> Accepted:
        return self.decisions.decide(submission, signed_in_as=signed_in_as)

    def decide_many(self, decisions: Sequence[tuple[Mapping[str, Any], str | None]]) -> list[Accepted | LedgerError]:
        return self.decisions.decide_many(decisions)

    # -- queues and views ---------------------------------------------------------

    def head_queue(self, address: str, *, limit: int = 100) -> list[dict[str, Any]]:
        return self.queues.head_queue(address, limit=limit)

    def constituency_queue(self, constituencies: list[str], *, limit: int = 100) -> list[dict[str, Any]]:
        return self.queues.constituency_queue(constituencies, limit=limit)

    def war_room_queue(self, *, limit: int = 100) -> dict[str, Any]:
        return self.queues.war_room_queue(limit=limit)

    def may_see_uploader(self, caller: Caller, photo_cid: str) -> bool:
        return self.queues.may_see_uploader(caller, photo_cid)

    def may_see_reporters(self, caller: Caller, unit_id: str) -> bool:
        return self.queues.may_see_reporters(caller, unit_id)

    def unit_review(self, unit_id: str, *, full: bool = False) -> dict[str, Any]:
        return self.queues.unit_review(unit_id, full=full)

    def flagged_members(self, organisation_id: str | None = None) -> list[dict[str, Any]]:
        return self.queues.flagged_members(organisation_id)
