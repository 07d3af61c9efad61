"""What ``tally verify`` finds: one ``Mismatch`` per thing that does not check out, gathered in an ``AuditReport``."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

__all__ = ["AuditReport", "Mismatch", "iter_report_lines"]


@dataclass(frozen=True)
class Mismatch:
    """One thing that does not check out: what, where, what was expected and what was found."""

    what: str
    where: str
    expected: str
    found: str

    def __str__(self) -> str:
        return f"{self.what} at {self.where}: expected {self.expected}, found {self.found}"


@dataclass
class AuditReport:
    """The verdict of one verify command: what was checked, and every mismatch found.

    ``photos`` counts the distinct photo files re-hashed block by block (a photo linked by
    several records is checked once); ``photos_skipped`` says the photos were left out
    (``--skip-photos``), so a clean report then vouches for the records only."""

    batches: int = 0
    records: int = 0
    decisions: int = 0
    authority_entries: int = 0
    photos: int = 0
    photos_skipped: bool = False
    mismatches: list[Mismatch] = field(default_factory=list)
    certified: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.mismatches


def iter_report_lines(report: AuditReport) -> Iterator[str]:
    for mismatch in report.mismatches:
        yield f"MISMATCH {mismatch}"
