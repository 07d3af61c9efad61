"""Decisions: a head's or the war room's signed ``tally-decision-v1``, checked for its shape
and signature, for who may decide it (the decider's level, and a head's constituencies),
then against the replayed rules, committed and replayed."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ledger.core.decision import DecisionRefused
from ledger.core.signing import to_checksum_address
from ledger.election.validation import validate_decision
from ledger.errors import Forbidden, LedgerError, NotFound
from ledger.intake.service import Accepted, Ledger, Prepared
from ledger.people.assignments import Assignments
from ledger.people.registry import PeopleRegistry
from ledger.people.roles import CONSTITUENCY_HEAD, LEVEL_ROLES, VOLUNTEER
from ledger.review.replay import DecisionReplay, node_view
from ledger.store import reviews as store
from ledger.store.people import MemberRow

__all__ = ["Decisions"]


class Decisions:
    """Accepts people's decisions into the ledger. Thread-safe."""

    def __init__(
        self,
        *,
        ledger: Ledger,
        people: PeopleRegistry,
        assignments: Assignments,
        decisions: DecisionReplay,
        max_excluded_share: float = 0.05,
    ):
        """``max_excluded_share``: the largest share of a constituency's units that may be
        excluded when the war room certifies it without giving a reason."""
        self.ledger = ledger
        self.max_excluded_share = max_excluded_share
        self.database = ledger.database
        self.election = ledger.election
        self.people = people
        self.assignments = assignments
        self._decisions = decisions

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
        members: dict[str, MemberRow | NotFound] = {}
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
        self, submission: Mapping[str, Any], signed_in_as: str | None, members: dict[str, MemberRow | NotFound]
    ) -> dict[str, object]:
        """The decision validated, from a member who may decide it (``members`` caches look-ups)."""
        node = validate_decision(submission, election=self.election)
        decider = str(node["decider"])
        if signed_in_as is not None and to_checksum_address(signed_in_as) != decider:
            raise Forbidden(f"this decision is signed by {decider}, but you are signed in as {signed_in_as}")
        if decider not in members:
            try:
                members[decider] = self.people.member(decider)
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
            if constituency not in self.assignments.assigned_areas(decider):
                raise Forbidden(f"head {member.public_id} does not oversee constituency {constituency}")
        elif role == VOLUNTEER:
            raise Forbidden("unit volunteers report counts; decisions are for heads and the war room")
        authority = self.people.authority
        refused = None if authority is None else authority.may_decide(decider, role, subject)
        if refused is not None:  # the database and the log disagree: the log is what an auditor checks
            raise Forbidden(f"the authority log does not let this decision through: {refused}")
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
        with self._decisions.lock:
            group: list[Prepared] = []
            positions: list[int] = []
            for position, node in run:
                try:
                    self._decisions.replay.check(node_view(node))
                    self._check_basis(node)
                except DecisionRefused as refused:
                    # A retry of a decision already applied is refused by the rules as they
                    # stand now; the ledger answers it with its first receipt (or 409 if it differs).
                    if not self._existing_decision(str(node["decider"]), str(node["decision_id"])):
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
                self._decisions.load()

    def _check_basis(self, node: Mapping[str, object]) -> None:
        """A constituency certified with more of its units excluded than the share allowed
        needs the war room's reason: its result then rests on few units, which the reason
        (published with the decision) explains."""
        if node["action"] != "certify_constituency" or str(node.get("reason") or "").strip():
            return
        basis = self._decisions.replay.basis(str(node["subject"]))
        if basis.excluded_share > self.max_excluded_share:
            raise DecisionRefused(
                f"constituency {node['subject']} has {basis.units_excluded} of its {basis.units_total} units excluded "
                f"({basis.excluded_share:.0%}), more than the {self.max_excluded_share:.0%} a certification may rest on "
                "without a reason; give the reason with the decision"
            )

    def _existing_decision(self, decider: str, decision_id: str) -> bool:
        return store.decision_exists(self.database, decider, decision_id)
