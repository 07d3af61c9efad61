"""Screening runs: the units that received reports are screened (``ledger.review.screening``)
a chunk at a time, their outcome and flags stored in the review index, and the units whose
reports agree accepted by a decision signed with the ledger's own verifier key."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from datetime import datetime

from ledger.core.cid import CID
from ledger.core.record import sign_entry
from ledger.core.signing import address_from_private_key
from ledger.core.timefmt import format_time_micro
from ledger.election.counting import countable
from ledger.errors import LedgerError
from ledger.intake.service import Ledger
from ledger.people.roles import LEDGER
from ledger.results.aggregates import Aggregates
from ledger.review.evidence import Evidence
from ledger.review.replay import DecisionReplay, node_view
from ledger.review.screening import Assessment, Report, assess_unit
from ledger.store import screening as store

__all__ = ["Screener"]

log = logging.getLogger("tally.review")


class Screener:
    """Screens units and accepts those whose reports agree. Thread-safe."""

    def __init__(
        self,
        *,
        ledger: Ledger,
        aggregates: Aggregates,
        decisions: DecisionReplay,
        evidence: Evidence,
        verifier_key: bytes,
        required_organisations: int,
        max_photo_distance_km: float,
        clock: Callable[[], datetime],
    ):
        self.ledger = ledger
        self.database = ledger.database
        self.election = ledger.election
        self.aggregates = aggregates
        self.evidence = evidence
        self._decisions = decisions
        self._verifier_key = verifier_key
        self.verifier = address_from_private_key(verifier_key)
        self.required_organisations = required_organisations
        self.max_photo_distance_km = max_photo_distance_km
        self.clock = clock
        self._pending_units: set[str] = set()
        self._pending_lock = threading.Lock()
        self._set_aside_reports: set[str] = set()
        """Reports whose numbers cannot be read: screened past, so their unit's others are."""

    def defer(self, unit_ids: Iterable[str]) -> None:
        """Leave units for the next ``screen_pending`` (deferred screening)."""
        with self._pending_lock:
            self._pending_units.update(unit_ids)

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
        counts, seen = store.report_counts(self.database)
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
        with self._decisions.lock:
            reports = self._reports(unit_ids)
            contexts = self.evidence.contexts(unit_ids, reports)
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
                if assessment.outcome == "agreed"
                and assessment.accepted_cid
                and self._decisions.replay.unit(unit_id).status == "open"
            ]
            if agreed:
                for assessment in agreed:  # the rules ask about the record: it is at hand, not in the database
                    for report in reports[assessment.unit]:
                        if report.record_cid == assessment.accepted_cid:
                            self._decisions.remember_record(report.record_cid, assessment.unit, report.document)
                self._auto_accept(agreed)
            return assessments

    def _reports(self, unit_ids: list[str]) -> dict[str, list[Report]]:
        found: dict[str, list[Report]] = {unit_id: [] for unit_id in unit_ids}
        for row in store.unit_tallies(self.database, unit_ids):
            if row.cid not in self._decisions.replay.unit(row.polling_unit).rejected and row.cid not in self._set_aside_reports:
                found[row.polling_unit].append(
                    Report(row.cid, row.id, row.signer, row.organisation_id, row.document, held=row.flagged)
                )
        return found

    def _store_assessments(self, assessments: dict[str, Assessment], report_counts: dict[str, int]) -> None:
        """Each unit's outcome, flags and state, in two statements for the whole chunk (rows
        for new units, and updates of known ones: ``ledger.store.screening``)."""
        now = self.clock()
        values = {
            unit_id: {
                "outcome": assessment.outcome,
                "flags": [f.as_json() for f in assessment.flags],
                "report_count": report_counts[unit_id],
                "status": self._decisions.replay.unit(unit_id).status,
                "updated_at": now,
            }
            for unit_id, assessment in assessments.items()
        }
        constituency_of = {unit_id: self.election.polling_unit(unit_id).constituency_id for unit_id in assessments}
        store.write_assessments(self.database, values, constituency_of, now=now)

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
        taken = store.taken_submission_ids(self.database, self.verifier, [str(n["decision_id"]) for n in nodes])
        group = []
        for node in nodes:
            if node["decision_id"] in taken:
                continue
            self._decisions.replay.check(node_view(node))
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
            self._decisions.load()
