"""The API's one writing thread, with group commit.

Every submission that changes the ledger runs here, in arrival order. Reports that arrive
while a group is being committed wait in the queue and are then validated and committed
together, in one transaction (``ReviewService.submit_reports``): under load the cost of a
transaction (a disk sync on SQLite and PostgreSQL alike, a lock on both) is shared by the
whole group, and when the server is idle a report is committed alone, at once. Each
report still gets its own answer; one bad report never refuses its neighbours.

Other writes (decisions, relayed custodial tallies) run as single jobs between groups.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from ledger.errors import LedgerError
from ledger.service import Accepted

__all__ = ["Writer"]

log = logging.getLogger("tally.writer")
T = TypeVar("T")
Report = tuple[Mapping[str, Any], str | None]


class _Job:
    __slots__ = ("future", "loop", "report", "work")

    def __init__(self, loop: asyncio.AbstractEventLoop, future: asyncio.Future[Any], *,
                 report: Report | None = None, work: Callable[[], Any] | None = None):
        self.loop = loop
        self.future = future
        self.report = report
        self.work = work

    def settle(self, result: Any = None, error: BaseException | None = None) -> None:
        def settle() -> None:
            if self.future.cancelled():  # the client went away; the write stands
                return
            if error is not None:
                self.future.set_exception(error)
            else:
                self.future.set_result(result)

        try:
            self.loop.call_soon_threadsafe(settle)
        except RuntimeError:  # that event loop has closed
            pass


class Writer:
    """Runs writes on one thread; ``submit_reports`` commits a group of reports at once."""

    def __init__(self, submit_reports: Callable[[list[Report]], list[Accepted | LedgerError]], *, max_group: int = 256):
        self._submit_reports = submit_reports
        self.max_group = max_group
        self.groups = 0
        self.reports = 0
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="tally-writer", daemon=True)
        self._thread.start()

    async def report(self, submission: Mapping[str, Any], reporter: str | None) -> Accepted:
        """Submit one report; it is committed with whatever else is waiting."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Accepted] = loop.create_future()
        self._queue.put(_Job(loop, future, report=(submission, reporter)))
        return await future

    async def run(self, work: Callable[[], T]) -> T:
        """Run ``work`` on the writing thread, in order with the reports."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._queue.put(_Job(loop, future, work=work))
        return await future

    def shutdown(self) -> None:
        """Finish what is queued, then stop."""
        self._queue.put(None)
        self._thread.join()

    def _run(self) -> None:
        while True:
            job = self._queue.get()
            jobs = [job]
            while job is not None and len(jobs) < self.max_group:
                try:
                    job = self._queue.get_nowait()
                except queue.Empty:
                    break
                jobs.append(job)
            group: list[_Job] = []
            for job in jobs:
                if job is not None and job.report is not None:
                    group.append(job)
                    continue
                self._commit(group)
                group = []
                if job is None:
                    return
                self._single(job)
            self._commit(group)

    def _commit(self, group: list[_Job]) -> None:
        if not group:
            return
        try:
            answers = self._submit_reports([job.report for job in group if job.report is not None])
        except Exception as failure:  # a fault of the server, not of a report: each gets it
            log.exception("committing a group of %d reports failed", len(group))
            for job in group:
                job.settle(error=failure)
            return
        self.groups += 1
        self.reports += len(group)
        for job, answer in zip(group, answers, strict=True):
            if isinstance(answer, LedgerError):
                job.settle(error=answer)
            else:
                job.settle(answer)

    @staticmethod
    def _single(job: _Job) -> None:
        assert job.work is not None
        try:
            result = job.work()
        except BaseException as failure:
            job.settle(error=failure)
        else:
            job.settle(result)
