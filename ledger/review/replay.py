"""The decisions replayed: the state of every unit and constituency by the rules of
``ledger.core.decision``, rebuilt from the ledger's decision entries at start and kept up
to date as decisions are accepted; the review index (``unit_reviews``,
``constituency_reviews``) and the certified aggregates follow it."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from ledger.core.cid import CID
from ledger.core.decision import Replay, link_text
from ledger.election import Election
from ledger.results.aggregates import Aggregates
from ledger.store import Database
from ledger.store import reviews as store

__all__ = ["DecisionReplay", "node_view"]


class DecisionReplay:
    """The replay of every decision accepted so far (``replay``), and what it needs to know
    of the records they name. ``lock`` guards the replay: whoever checks decisions against
    it and commits them holds it until they are replayed."""

    def __init__(
        self,
        *,
        database: Database,
        election: Election,
        aggregates: Aggregates,
        clock: Callable[[], datetime],
        on_rejected: Callable[[str], None],
    ):
        """``on_rejected(record_cid)`` is told of each report a replayed decision rejects."""
        self.database = database
        self.election = election
        self.aggregates = aggregates
        self.clock = clock
        self._on_rejected = on_rejected
        self.lock = threading.RLock()
        self._record_units: dict[str, str] = {}
        self._record_corrects: dict[str, list[str]] = {}
        self._decision_cursor = 0
        self.certification_bases: dict[str, dict[str, Any]] = {}
        """Each applied ``certify_constituency`` (by CID): its constituency's basis just after."""
        self.replay = self._new_replay()

    def _new_replay(self) -> Replay:
        return Replay(
            record_unit=self._record_unit,
            corrects=self._record_corrections,
            units_of=lambda constituency: [u.id for u in self.election.polling_units(constituency)],
        )

    def _load_record(self, cid: str) -> tuple[str | None, list[str]]:
        found = store.tally_record(self.database, cid)
        if found is None:
            return None, []
        unit, document = found
        return unit, self.remember_record(cid, unit, document)

    def remember_record(self, cid: str, unit: str, document: Mapping[str, Any]) -> list[str]:
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
        with self.lock:
            applied = 0
            while True:
                rows = store.decisions_after(self.database, self._decision_cursor, limit=5000)
                if not rows:
                    return applied
                units: set[str] = set()
                constituencies: set[str] = set()
                rejected: list[str] = []
                for entry_id, cid, document in rows:
                    self._decision_cursor = entry_id
                    try:
                        decision = node_view(document)
                        self.replay.apply(cid, decision)
                    except Exception as exc:  # noqa: BLE001 - a lost or corrupt row: set aside, serve the rest
                        subject_text = document.get("subject") if isinstance(document, Mapping) else None
                        self.aggregates.quarantine.add("replay", cid, str(subject_text or ""), exc)
                        continue
                    subject = str(decision["subject"])
                    if decision["action"] == "certify_constituency":  # what it rested on, for the feed
                        self.certification_bases[cid] = self.replay.basis(subject).as_json()
                    if decision["action"] == "certify_constituency" or subject in self.election.constituencies:
                        constituencies.add(subject)
                    else:
                        units.add(subject)
                        if decision["action"] == "reject":
                            rejected.append(str(link_text(decision.get("record"))))
                    applied += 1
                self._write_back(sorted(units), sorted(constituencies))
                for record_cid in rejected:
                    self._on_rejected(record_cid)

    def _write_back(self, units: list[str], constituencies: list[str]) -> None:
        """Bring the review index and the certified aggregates to the replay's state for
        ``units`` and ``constituencies`` (after their decisions were applied)."""
        now = self.clock()
        certified_records = {
            unit_id: state.certified
            for unit_id in units
            if (state := self.replay.unit(unit_id)).status == "certified" and state.certified
        }
        states = {}
        for unit_id in units:
            state = self.replay.unit(unit_id)
            states[unit_id] = (state.status, state.accepted, state.certified)
        documents = store.write_review_state(
            self.database,
            states,
            {constituency_id: self.replay.constituency(constituency_id).certified for constituency_id in constituencies},
            documents_of=[certified_records[u] for u in units if u in certified_records],
            now=now,
        )
        touched = {*constituencies, *(self.election.polling_unit(u).constituency_id for u in units)}
        for constituency_id in sorted(touched):
            self.aggregates.set_basis(constituency_id, self.replay.basis(constituency_id))
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


def node_view(node: Mapping[str, Any]) -> dict[str, Any]:
    """A decision with its links as CID strings (the form ``Replay`` reads)."""
    return {k: (str(v) if isinstance(v, CID) else link_text(v) if isinstance(v, Mapping) else v) for k, v in node.items()}
