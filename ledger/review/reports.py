"""Report intake: a volunteer's tally is checked to be theirs to report (their assigned
units, a head's constituencies, the war room anywhere), prepared, checked for stored
photos, committed with the other reports of its group, and its unit screened (at once,
or by the runtime's loop with deferred screening)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from ledger.core.signing import to_checksum_address
from ledger.errors import FieldError, Forbidden, InvalidSignature, InvalidTally, LedgerError, NotFound
from ledger.intake.service import Accepted, Ledger, Prepared
from ledger.people.assignments import Assignments
from ledger.review.screener import Screener

__all__ = ["PHOTO_USES", "ReportIntake", "photo_links"]

PHOTO_USES = "photo_uses"
"""The table of a tally's index rows, by name (``Ledger.commit`` resolves it once per group)."""

Answers = list[Accepted | LedgerError | None]
"""One slot per report of a group, filled in as each step answers it."""


def photo_links(document: Mapping[str, Any]) -> list[tuple[str, str]]:
    """``(role, photo CID)`` of a tally's photo links, in role order (JSON or node form)."""
    links = document.get("photos") or {}
    return [(role, link["/"] if isinstance(link, Mapping) else str(link)) for role, link in sorted(links.items())]


class ReportIntake:
    """Accepts reports into the ledger and has their units screened. Thread-safe."""

    def __init__(
        self,
        *,
        ledger: Ledger,
        assignments: Assignments,
        screener: Screener,
        open_reporting: bool = False,
        defer_screening: bool = False,
    ):
        """``open_reporting``: anyone registered may report any unit, member or not;
        ``defer_screening``: units are screened by ``Screener.screen_pending``, not at once."""
        self.ledger = ledger
        self.assignments = assignments
        self.screener = screener
        self.open_reporting = open_reporting
        self.defer_screening = defer_screening

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
        answers: Answers = [None] * len(reports)
        self._refuse_reporters(reports, answers)
        readied = self._prepare(reports, prepared, answers)
        positions, group = self._with_stored_photos(readied, answers)
        created: set[str] = set()
        for position, answer in zip(positions, self.ledger.commit(group), strict=True):
            answers[position] = answer
            if isinstance(answer, Accepted) and answer.created:
                created.add(str(answer.receipt["polling_unit"]))
        if self.defer_screening:
            self.screener.defer(created)
        else:
            self.screener.screen_units(created)
        done = [answer for answer in answers if answer is not None]
        assert len(done) == len(reports), "every report has its answer"
        return done

    def _refuse_reporters(self, reports: list[tuple[Mapping[str, Any], str | None]], answers: Answers) -> None:
        """Answer with ``Forbidden`` each report its reporter may not make (in one query)."""
        asking: list[tuple[int, str, str]] = []
        for position, (submission, reporter) in enumerate(reports):
            submitter = submission.get("submitter") if isinstance(submission, Mapping) else None
            unit_id = submission.get("polling_unit") if isinstance(submission, Mapping) else None
            if isinstance(submitter, str) and isinstance(unit_id, str):
                try:
                    asking.append((position, to_checksum_address(reporter or submitter), unit_id))
                except InvalidSignature:
                    pass  # validation reports the malformed address with its field path
        if not asking:
            return
        allowed_each = self.assignments.may_report([(who, unit) for _, who, unit in asking])
        authority = self.assignments.people.authority
        for (position, who, unit), allowed in zip(asking, allowed_each, strict=True):
            if isinstance(allowed, Forbidden):
                answers[position] = allowed
            elif not allowed and not self.open_reporting:
                answers[position] = Forbidden(
                    f"{who} is not a member of the coalition's hierarchy; "
                    "a coordinator registers volunteers and assigns their units"
                )
            elif authority is not None and self._exists(unit):  # an unknown unit: validation names it
                refused = authority.may_report(who, unit)  # what the auditor will check, from the anchored log
                if refused is not None:
                    answers[position] = Forbidden(f"the authority log does not let this report through: {refused}")

    def _exists(self, unit_id: str) -> bool:
        try:
            self.ledger.election.polling_unit(unit_id)
        except NotFound:
            return False
        return True

    def _prepare(
        self,
        reports: list[tuple[Mapping[str, Any], str | None]],
        prepared: Sequence[Prepared | LedgerError | None] | None,
        answers: Answers,
    ) -> dict[int, Prepared]:
        """The reports not yet answered, prepared. Tallies that no prepare worker prepared are
        prepared here, their photo links checked only for stored blocks, as a worker checks
        them (it cannot see the photo index)."""
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
        return readied

    def _with_stored_photos(self, readied: dict[int, Prepared], answers: Answers) -> tuple[list[int], list[Prepared]]:
        """The prepared reports whose photo links are all in the photo index (checked for the
        whole group in one query), with their positions; the others answered."""
        photos_here = self.ledger.image_photos(cid for ready in readied.values() for _, cid in photo_links(ready.row["document"]))
        positions: list[int] = []
        group: list[Prepared] = []
        for position, ready in readied.items():
            unknown = [(role, cid) for role, cid in photo_links(ready.row["document"]) if cid not in photos_here]
            if unknown:  # the message validation gives when it checks the index itself
                answers[position] = InvalidTally(
                    [FieldError(("photos", role), f"photo {cid} is not stored here; upload it first") for role, cid in unknown]
                )
                continue
            group.append(ready)
            positions.append(position)
        return positions, group
