"""Queue views: the units waiting for a head's or the war room's decision, a unit's
reports side by side (publicly, or in full for those who judge them), and the members
whose reports keep being rejected. Who sees which view is decided here too."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from ledger.core.timefmt import format_time_micro
from ledger.election import Election
from ledger.errors import Forbidden
from ledger.people.assignments import Assignments
from ledger.people.callers import Caller
from ledger.people.registry import PeopleRegistry
from ledger.people.roles import CONSTITUENCY_HEAD, REPORTER_VIEWERS
from ledger.review.replay import DecisionReplay
from ledger.store import Database
from ledger.store import reviews as store
from ledger.store.reviews import UnitReviewRow

__all__ = ["PRIVATE_RECORD_FIELDS", "Queues", "public_flags"]


class Queues:
    """Read views of the review, over the database (``ledger.store.reviews``) and the replay."""

    def __init__(
        self,
        *,
        database: Database,
        election: Election,
        people: PeopleRegistry,
        assignments: Assignments,
        decisions: DecisionReplay,
    ):
        self.database = database
        self.election = election
        self.people = people
        self.assignments = assignments
        self._decisions = decisions

    def head_queue(self, address: str, *, limit: int = 100) -> list[dict[str, Any]]:
        """Units in the head's constituencies that need a decision, oldest first: conflicts
        and flags, then units still waiting for a second organisation."""
        member = self.people.member(address)
        if member.level != 2:
            raise Forbidden("the review queue is for constituency heads")
        return self.constituency_queue(sorted(self.assignments.assigned_areas(member.address)), limit=limit)

    def constituency_queue(self, constituencies: list[str], *, limit: int = 100) -> list[dict[str, Any]]:
        """Units needing a decision in these constituencies (a head signed in with an API key)."""
        rows = store.open_units(self.database, constituencies, limit=limit * 2)
        ordered = sorted(rows, key=lambda r: (r.outcome != "needs_review", r.first_report_at))[:limit]
        return [_review_json(r) for r in ordered]

    def war_room_queue(self, *, limit: int = 100) -> dict[str, Any]:
        escalated = store.units_of_status(self.database, "escalated", limit=limit)
        to_certify = store.units_of_status(self.database, "accepted", limit=limit)
        ready = [
            cid
            for cid in self.election.constituencies
            if not self._decisions.replay.constituency(cid).certified
            and all(
                self._decisions.replay.unit(u.id).status in ("certified", "excluded") for u in self.election.polling_units(cid)
            )
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
        units = store.photo_units(self.database, photo_cid)
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
            return unit.constituency_id in self.assignments.assigned_areas(caller.address)
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
        review = store.unit_review(self.database, unit.id)
        entries = store.unit_entries(self.database, unit.id)
        state = self._decisions.replay.unit(unit.id)
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
                    "organisation": e.organisation_id,
                    "volunteer": e.public_id,
                    "received_at": format_time_micro(e.received_at),
                    "document": e.document,
                }
                if full
                else {
                    "record_cid": e.cid,
                    "organisation": e.organisation_id,
                    "received_at": format_time_micro(e.received_at),
                    "document": {k: v for k, v in e.document.items() if k not in PRIVATE_RECORD_FIELDS},
                }
                for e in entries
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
                for e in entries
                if e.kind == "decision"
            ],
        }

    def flagged_members(self, organisation_id: str | None = None) -> list[dict[str, Any]]:
        rows = store.flagged_members(self.database, organisation_id)
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


PRIVATE_RECORD_FIELDS = frozenset({"submitter", "signature"})
"""Left out of the public unit review's copy of each record (they are in the record by CID)."""
_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")


def public_flags(flags: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Flags as the public sees them: any address in a detail becomes "the submitter"."""
    return [{**flag, "detail": _ADDRESS.sub("the submitter", str(flag.get("detail", "")))} for flag in flags]


def _review_json(row: UnitReviewRow) -> dict[str, Any]:
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
