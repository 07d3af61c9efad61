"""Verification decisions as ledger entries, and the replay that turns them into certified results.

CONSENSUS-CRITICAL (format ``tally-decision-v1``). A decision is signed by the deciding
person's key exactly like a tally (EIP-712 ``LedgerEntry``, see ``ledger.core.signing``:
subject ↔ ``subject``, entryId ↔ ``decision_id``, createdAt ↔ ``decided_at``, signer ↔
``decider``), stored as DAG-CBOR, batched and anchored like tallies. Its leaf is
``(decision CID, subject, decider)``.

A ``tally-decision-v1`` node::

    format        "tally-decision-v1"
    election      election id
    decision_id   8-64 chars of [A-Za-z0-9_-], chosen by the decider's client (idempotency)
    decided_at    UTC time "YYYY-MM-DDTHH:MM:SS(.ffffff)Z"
    decider       EIP-55 address of the person (or of the ledger, for automatic acceptance)
    role          "constituency_head" | "war_room" | "ledger"
    action        see below
    subject       polling unit id, or constituency id for *_constituency actions
    record        CID link, where the action concerns a record (see below)
    reopens       CID link of the decision being reopened (reopen only)
    reason        free text; required for reject, correct, escalate, exclude and reopen
    signature     65 bytes

Actions and the unit state they need (``replay`` enforces these, so a log that breaks
them is refused, whoever wrote it):

    accept     record = a report of the unit          open|accepted|escalated → accepted
    correct    record = a corrected record of the unit (its ``corrects`` lists the
               reports it corrects)                   open|accepted|escalated → accepted
    reject     record = a report of the unit          any but certified (accepted → open
                                                      when it rejects the accepted record)
    escalate   —                                      open|accepted → escalated
    certify    record = the accepted record           accepted → certified     (war room)
    exclude    —                                      any but certified → excluded (war room)
    certify_constituency  subject = constituency     all units certified or excluded (war room)
    reopen     reopens = a decision                   unit: accepted|certified|excluded|escalated → open;
                                                      constituency: certified → not certified (war room)

Heads may accept, correct, reject and escalate; the war room may do everything; the
ledger's own key only accepts (automatic acceptance of agreeing reports).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ledger.core.errors import LedgerError

__all__ = [
    "ACTIONS",
    "DECISION_FORMAT",
    "Basis",
    "ConstituencyState",
    "DecisionRefused",
    "Replay",
    "UnitState",
    "link_text",
]

DECISION_FORMAT = "tally-decision-v1"
ACTIONS = ("accept", "correct", "reject", "escalate", "certify", "exclude", "certify_constituency", "reopen")
ROLE_ACTIONS = {
    "ledger": {"accept"},
    "constituency_head": {"accept", "correct", "reject", "escalate"},
    "war_room": set(ACTIONS),
}
REASON_REQUIRED = {"reject", "correct", "escalate", "exclude", "reopen"}
RECORD_REQUIRED = {"accept", "correct", "reject", "certify"}


class DecisionRefused(LedgerError, ValueError):
    """A decision that the rules do not allow in the current state."""


@dataclass
class UnitState:
    unit: str
    status: str = "open"  # open | accepted | escalated | certified | excluded
    accepted: str | None = None
    certified: str | None = None
    rejected: set[str] = field(default_factory=set)
    last_decision: str | None = None


@dataclass
class ConstituencyState:
    constituency_id: str
    certified: bool = False
    last_decision: str | None = None


@dataclass(frozen=True)
class Basis:
    """What a constituency's certified result rests on, as the replay stands: of its units,
    how many are certified, excluded, and neither (pending), and whether it is certified.
    Derived from the unit states; not part of any signed format."""

    units_total: int
    units_certified: int
    units_excluded: int
    certified: bool

    @property
    def units_pending(self) -> int:
        return self.units_total - self.units_certified - self.units_excluded

    @property
    def excluded_share(self) -> float:
        return self.units_excluded / self.units_total if self.units_total else 0.0

    def as_json(self) -> dict[str, Any]:
        return {
            "certified": self.certified,
            "units_total": self.units_total,
            "units_certified": self.units_certified,
            "units_excluded": self.units_excluded,
            "units_pending": self.units_pending,
            "excluded_share": round(self.excluded_share, 6),
        }


def link_text(value: object) -> str | None:
    """A link as its CID text: ``{"/": cid}`` (DAG-JSON), a CID, or a string; None stays None."""
    if value is None:
        return None
    if isinstance(value, Mapping):
        return str(value.get("/"))
    return str(value)


class Replay:
    """Applies decisions in ledger order; ``apply`` refuses what the rules forbid.

    ``record_unit(cid)`` tells which unit a record reports (None if unknown), and
    ``corrects(cid)`` which reports a corrected record corrects; ``units_of(constituency)``
    lists a constituency's unit ids.
    """

    def __init__(
        self,
        *,
        record_unit: Callable[[str], str | None],
        corrects: Callable[[str], list[str]],
        units_of: Callable[[str], Iterable[str]],
    ):
        self.units: dict[str, UnitState] = {}
        self.constituencies: dict[str, ConstituencyState] = {}
        self.decisions: dict[str, tuple[str, str]] = {}
        """Each applied decision's (action, subject), all a later ``reopen`` reads of it:
        kept small, since a national night applies a few hundred thousand decisions."""
        self._record_unit = record_unit
        self._corrects = corrects
        self._units_of = units_of

    def unit(self, unit_id: str) -> UnitState:
        return self.units.setdefault(unit_id, UnitState(unit_id))

    def constituency(self, constituency_id: str) -> ConstituencyState:
        return self.constituencies.setdefault(constituency_id, ConstituencyState(constituency_id))

    def basis(self, constituency_id: str) -> Basis:
        """How many of the constituency's units are certified and excluded, now."""
        statuses = [self.units[u].status if u in self.units else "open" for u in self._units_of(constituency_id)]
        return Basis(
            units_total=len(statuses),
            units_certified=statuses.count("certified"),
            units_excluded=statuses.count("excluded"),
            certified=self.constituency(constituency_id).certified,
        )

    def check(self, decision: Mapping[str, Any]) -> None:
        """Raise ``DecisionRefused`` unless ``decision`` may be applied now."""
        self._apply(decision, dry_run=True)

    def apply(self, decision_cid: str, decision: Mapping[str, Any]) -> None:
        self._apply(decision, dry_run=False)
        self.decisions[decision_cid] = (str(decision.get("action")), str(decision.get("subject")))

    def _apply(self, decision: Mapping[str, Any], *, dry_run: bool) -> None:
        action, subject, record = self._check_entry(decision)
        decision_id = str(decision.get("decision_id"))
        if action == "certify_constituency":
            self._certify_constituency(subject, decision_id, dry_run=dry_run)
        elif action == "reopen":
            self._reopen(subject, link_text(decision.get("reopens")), decision_id, dry_run=dry_run)
        else:
            self._decide_unit(action, subject, record, decision_id, dry_run=dry_run)

    @staticmethod
    def _check_entry(decision: Mapping[str, Any]) -> tuple[str, str, str | None]:
        """The rules any decision follows, whatever the state: its format, action, the role
        that may take it, its reason and record; returns (action, subject, record)."""
        action, role, subject = decision.get("action"), decision.get("role"), str(decision.get("subject"))
        if decision.get("format") != DECISION_FORMAT:
            raise DecisionRefused(f"not a {DECISION_FORMAT} entry")
        if action not in ACTIONS:
            raise DecisionRefused(f"unknown action {action!r}; actions are {', '.join(ACTIONS)}")
        if action not in ROLE_ACTIONS.get(str(role), set()):
            raise DecisionRefused(f"a {role} may not {action}")
        if action in REASON_REQUIRED and not str(decision.get("reason") or "").strip():
            raise DecisionRefused(f"{action} needs a reason")
        record = link_text(decision.get("record"))
        if action in RECORD_REQUIRED and not record:
            raise DecisionRefused(f"{action} needs the record it concerns")
        return str(action), subject, record

    def _certify_constituency(self, subject: str, decision_id: str, *, dry_run: bool) -> None:
        state = self.constituency(subject)
        if state.certified:
            raise DecisionRefused(f"constituency {subject} is already certified")
        pending = [u for u in self._units_of(subject) if self.unit(u).status not in ("certified", "excluded")]
        if pending:
            raise DecisionRefused(
                f"constituency {subject} has {len(pending)} units neither certified nor excluded, e.g. {pending[0]}"
            )
        if not dry_run:
            state.certified, state.last_decision = True, decision_id

    def _reopen(self, subject: str, reopens: str | None, decision_id: str, *, dry_run: bool) -> None:
        reopened = self.decisions.get(reopens or "")
        if reopened is None:
            raise DecisionRefused("reopen must name an earlier decision (reopens) of this ledger")
        reopened_action, reopened_subject = reopened
        if reopened_action == "certify_constituency":
            state = self.constituency(subject)
            if not state.certified:
                raise DecisionRefused(f"constituency {subject} is not certified")
            if not dry_run:
                state.certified, state.last_decision = False, decision_id
            return
        unit = self.unit(subject)
        if reopened_subject != subject:
            raise DecisionRefused("reopen's subject must be the subject of the decision it reopens")
        if unit.status == "open":
            raise DecisionRefused(f"unit {subject} is already open")
        if not dry_run:
            unit.status, unit.accepted, unit.certified, unit.last_decision = "open", None, None, decision_id

    def _decide_unit(self, action: str, subject: str, record: str | None, decision_id: str, *, dry_run: bool) -> None:
        """accept, correct, reject, escalate, certify or exclude, on the unit ``subject``."""
        unit = self.unit(subject)
        if record is not None and action != "correct" and self._record_unit(record) != subject:
            raise DecisionRefused(f"record {record} is not a report of unit {subject}")
        if action in ("accept", "correct"):
            if unit.status not in ("open", "accepted", "escalated"):
                raise DecisionRefused(f"unit {subject} is {unit.status}; reopen it first")
            if action == "accept" and record in unit.rejected:
                raise DecisionRefused(f"record {record} was rejected")
            if action == "correct":
                if self._record_unit(record or "") != subject:
                    raise DecisionRefused(f"corrected record {record} is not a record of unit {subject}")
                corrected = [c for c in self._corrects(record or "") if self._record_unit(c) == subject]
                if not corrected:
                    raise DecisionRefused("a corrected record must name the reports of this unit it corrects")
            if not dry_run:
                unit.status, unit.accepted, unit.last_decision = "accepted", record, decision_id
        elif action == "reject":
            if unit.status == "certified":
                raise DecisionRefused(f"unit {subject} is certified; reopen it first")
            if not dry_run:
                unit.rejected.add(record or "")
                if unit.accepted == record:
                    unit.status, unit.accepted = "open", None
                unit.last_decision = decision_id
        elif action == "escalate":
            if unit.status not in ("open", "accepted"):
                raise DecisionRefused(f"unit {subject} is {unit.status} and cannot be escalated")
            if not dry_run:
                unit.status, unit.last_decision = "escalated", decision_id
        elif action == "certify":
            if unit.status != "accepted" or unit.accepted != record:
                raise DecisionRefused(
                    f"only the accepted record of unit {subject} can be certified ({unit.status}, accepted {unit.accepted})"
                )
            if not dry_run:
                unit.status, unit.certified, unit.last_decision = "certified", record, decision_id
        elif action == "exclude":
            if unit.status == "certified":
                raise DecisionRefused(f"unit {subject} is certified; reopen it first")
            if not dry_run:
                unit.status, unit.accepted, unit.last_decision = "excluded", None, decision_id

    def certified_records(self) -> dict[str, str]:
        """unit id → CID of its certified record."""
        return {u.unit: u.certified for u in self.units.values() if u.status == "certified" and u.certified}
