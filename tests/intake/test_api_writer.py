"""The API's writing thread: group commit, answers in order, faults reported to each caller."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest

from ledger.errors import InvalidTally, LedgerError
from ledger.intake.service import Accepted
from ledger.intake.writer import Writer


class SlowLedger:
    """Stands in for ``ReviewService.submit_reports`` (the real one is exercised through the
    API in test_api_flows): slow enough that reports queue up behind a group."""

    def __init__(self) -> None:
        self.groups: list[list[Any]] = []
        self.prepared: list[Any] = []
        self.thread_names: set[str] = set()

    def submit_reports(self, reports: list[tuple[Any, Any]], prepared: list[Any]) -> list[Accepted | LedgerError]:
        assert len(prepared) == len(reports)
        self.groups.append([submission for submission, _ in reports])
        self.prepared.extend(prepared)
        self.thread_names.add(threading.current_thread().name)
        time.sleep(0.02)
        return [
            InvalidTally([]) if submission == "bad" else Accepted(receipt={"n": submission}, created=True)
            for submission, _ in reports
        ]


def test_reports_that_wait_are_committed_together_and_answered_in_order() -> None:
    ledger = SlowLedger()
    writer = Writer(ledger.submit_reports, max_group=16)

    async def main() -> list[Any]:
        jobs = [
            writer.report(n if n != 7 else "bad", None, f"prepared {n}" if n % 3 else None)  # type: ignore[arg-type]
            for n in range(40)
        ]
        order: list[str] = []
        jobs.insert(20, writer.run(lambda: order.append("single") or "ran"))  # type: ignore[func-returntype]
        return await asyncio.gather(*jobs, return_exceptions=True)

    try:
        answers = asyncio.run(main())
    finally:
        writer.shutdown()
    reports = [a for i, a in enumerate(answers) if i != 20]
    assert answers[20] == "ran"
    assert isinstance(reports[7], InvalidTally)
    assert [a.receipt["n"] for i, a in enumerate(reports) if i != 7] == [n for n in range(40) if n != 7]
    assert sum(len(g) for g in ledger.groups) == 40
    assert len(ledger.groups) < 40 and max(len(g) for g in ledger.groups) <= 16  # grouped, within the limit
    assert ledger.thread_names == {"tally-writer"}
    assert writer.grouped == 40
    assert ledger.prepared == [f"prepared {n}" if n % 3 else None for n in range(40)]  # each with its own report


def test_a_fault_of_the_server_reaches_every_report_of_the_group() -> None:
    def broken(reports: list[Any], prepared: list[Any]) -> list[Any]:
        raise RuntimeError("disk full")

    writer = Writer(broken)

    async def main() -> list[Any]:
        return await asyncio.gather(*(writer.report({}, None) for _ in range(5)), return_exceptions=True)

    try:
        answers = asyncio.run(main())
    finally:
        writer.shutdown()
    assert all(isinstance(a, RuntimeError) and "disk full" in str(a) for a in answers)


def test_an_item_that_breaks_its_group_fails_alone() -> None:
    """A report that makes the group's transaction fail (as a poisoned tally did: 9 of 60
    good reports from other volunteers got 500) is answered with its own error, and every
    other report of the group is committed and answered."""
    committed: list[Any] = []

    def fragile(reports: list[tuple[Any, Any]], prepared: list[Any]) -> list[Any]:
        time.sleep(0.01)
        if any(submission == "poison" for submission, _ in reports):
            raise KeyError("๓๑")
        committed.extend(submission for submission, _ in reports)
        return [Accepted(receipt={"n": submission}, created=True) for submission, _ in reports]

    writer = Writer(fragile)
    items = [("poison" if n % 6 == 0 else n) for n in range(24)]

    async def main() -> list[Any]:
        return await asyncio.gather(*(writer.report(item, None) for item in items), return_exceptions=True)

    try:
        answers = asyncio.run(main())
    finally:
        writer.shutdown()
    for item, answer in zip(items, answers, strict=True):
        if item == "poison":
            assert isinstance(answer, KeyError)
        else:
            assert isinstance(answer, Accepted) and answer.receipt == {"n": item}
    assert sorted(committed) == sorted(item for item in items if item != "poison")
    assert writer.ungrouped >= 1


def test_a_fault_of_the_database_is_not_retried_item_by_item() -> None:
    """A locked or lost database is every item's answer at once: splitting the group would
    only hold the writer thread up, one lock timeout per item."""
    from sqlalchemy.exc import OperationalError

    calls: list[int] = []

    def locked(reports: list[Any], prepared: list[Any]) -> list[Any]:
        calls.append(len(reports))
        time.sleep(0.02)
        raise OperationalError("INSERT …", {}, Exception("database is locked"))

    writer = Writer(locked)

    async def main() -> list[Any]:
        return await asyncio.gather(*(writer.report(n, None) for n in range(12)), return_exceptions=True)

    try:
        answers = asyncio.run(main())
    finally:
        writer.shutdown()
    assert all(isinstance(a, OperationalError) for a in answers)
    assert sum(calls) == 12  # each report was tried once, in whatever groups it queued


def test_single_jobs_raise_their_own_errors() -> None:
    writer = Writer(SlowLedger().submit_reports)

    def refuse() -> None:
        raise LedgerError("refused")

    try:
        with pytest.raises(LedgerError, match="refused"):
            asyncio.run(writer.run(refuse))
    finally:
        writer.shutdown()
