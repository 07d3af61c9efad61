"""Entries that could not be used, set aside so that everything else goes on.

The ledger is append-only and its entries are anchored: an entry that got in cannot be
taken out. If one of them cannot be counted, screened or replayed (a record written before
validation was strict, a database row that was lost or edited by hand), the loops that
consume entries must not stop on it: the published results would freeze while later
reports still got receipts, and the server would refuse to start. Each consumer instead
hands the entry to the :class:`Quarantine` with the reason, and goes on with the next one.

The quarantine is rebuilt by every process as it reads the ledger (nothing is stored):
readiness (``GET /v1/ready``) lists it, each entry is logged once, and ``tally verify all
--api`` reports what the server has set aside next to what the audit itself finds.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ledger.core.timefmt import format_time_seconds

__all__ = ["STAGES", "Quarantine", "QuarantinedEntry"]

log = logging.getLogger("tally.quarantine")

STAGES = ("aggregates", "certified", "screening", "replay", "sealing")
"""Where an entry was set aside: counted in the unofficial view, counted in the certified
view, screened with its unit's other reports, replayed as a decision, sealed into a batch."""


@dataclass(frozen=True, slots=True)
class QuarantinedEntry:
    stage: str
    entry: str
    """The entry's CID, or the polling unit when a whole unit could not be screened."""
    subject: str
    """The polling unit or constituency the entry is about."""
    reason: str
    since: str

    def as_json(self) -> dict[str, Any]:
        return {"stage": self.stage, "entry": self.entry, "subject": self.subject, "reason": self.reason, "since": self.since}


def _describe(error: BaseException) -> str:
    text = str(error)
    if isinstance(error, KeyError) or not text:  # KeyError('๓๑') says only "'๓๑'"
        return f"{type(error).__name__}: {text or 'no message'}"
    return text


class Quarantine:
    """A thread-safe set of entries set aside, keyed by (stage, entry). Bounded: past
    ``limit`` entries only the count grows, so a flood of bad entries cannot fill memory."""

    def __init__(self, *, limit: int = 10_000):
        self.limit = limit
        self._items: dict[tuple[str, str], QuarantinedEntry] = {}
        self._overflow = 0
        self._lock = threading.Lock()

    def add(self, stage: str, entry: str, subject: str, error: BaseException | str) -> None:
        """Set ``entry`` aside at ``stage``, logged the first time it is seen there."""
        if stage not in STAGES:
            raise ValueError(f"unknown quarantine stage {stage!r}; stages are {', '.join(STAGES)}")
        reason = error if isinstance(error, str) else _describe(error)
        key = (stage, entry)
        with self._lock:
            if key in self._items:
                return
            if len(self._items) >= self.limit:
                self._overflow += 1
                return
            self._items[key] = QuarantinedEntry(stage, entry, subject, reason, format_time_seconds(datetime.now(UTC)))
        log.error("set aside at %s: entry %s (%s): %s; everything else goes on", stage, entry, subject, reason)

    def discard(self, stage: str, entry: str) -> None:
        """``entry`` went through ``stage`` after all (a lost row came back)."""
        with self._lock:
            self._items.pop((stage, entry), None)

    def __contains__(self, key: tuple[str, str]) -> bool:
        return key in self._items

    def __len__(self) -> int:
        return len(self._items) + self._overflow

    def items(self, limit: int | None = None) -> list[QuarantinedEntry]:
        with self._lock:
            values = list(self._items.values())
        return values if limit is None else values[:limit]

    def as_json(self, *, limit: int = 100) -> dict[str, Any]:
        return {"count": len(self), "entries": [item.as_json() for item in self.items(limit)]}
