"""The API's one writing thread, with group commit.

Every submission that changes the ledger runs here, in arrival order. Reports that arrive
while a group is being committed wait in the queue and are then validated and committed
together, in one transaction (``ReviewService.submit_reports``): under load the cost of a
transaction (its statements and commit, the write lock, on PostgreSQL the flush of its log)
is shared by the whole group, and when the server is idle a report is committed alone, at once. Each
report still gets its own answer; one bad report never refuses its neighbours. If a group's
commit fails all the same, it is split in halves until the item that fails is alone, so
that a failure is only the answer of the item that caused it; a fault of the database or
the store itself is every item's answer at once.

Photo uploads are indexed the same way (``Ledger.record_photos``), and decisions are
decided the same way (``ReviewService.decide_many``), each kind in groups of its own.
Other writes run as single jobs between groups.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from ledger.errors import LedgerError
from ledger.intake.bridge import settle
from ledger.intake.photos import PhotoInfo
from ledger.intake.prepare import PrepareAnswer
from ledger.intake.service import Accepted
from ledger.store.photos import PhotoRow

__all__ = ["Writer"]

log = logging.getLogger("tally.writer")
T = TypeVar("T")
Report = tuple[Mapping[str, Any], str | None]
SubmitReports = Callable[[list[Report], list[PrepareAnswer]], list[Accepted | LedgerError]]
"""``ReviewService.submit_reports``: reports, and per report what a prepare pool made of it."""


def _is_operational(failure: BaseException) -> bool:
    """A fault of the database, the disk or the content store, not of any one item."""
    from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

    from ledger.errors import ContentStoreError

    if isinstance(failure, (OperationalError, InterfaceError, OSError, ContentStoreError)):
        return True
    return isinstance(failure, DBAPIError) and bool(failure.connection_invalidated)


class _Job:
    __slots__ = ("future", "kind", "payload")

    def __init__(self, future: asyncio.Future[Any], kind: str, payload: Any):
        self.future = future
        self.kind = kind  # "report", "photo" and "decision" are grouped; "work" is a callable run alone
        self.payload = payload


class Writer:
    """Runs writes on one thread; consecutive reports (or photos, or decisions) are committed as a group."""

    def __init__(
        self,
        submit_reports: SubmitReports,
        record_photos: Callable[[list[tuple[PhotoInfo, str | None]]], list[tuple[PhotoRow, bool]]] | None = None,
        decide_many: Callable[[list[tuple[Mapping[str, Any], str | None]]], list[Accepted | LedgerError]] | None = None,
        *,
        max_group: int = 256,
    ):
        def reports(payloads: list[tuple[Mapping[str, Any], str | None, PrepareAnswer]]) -> list[Accepted | LedgerError]:
            return submit_reports(
                [(submission, reporter) for submission, reporter, _ in payloads], [prepared for _, _, prepared in payloads]
            )

        self._groups: dict[str, Callable[[list[Any]], list[Any]]] = {"report": reports}
        if record_photos is not None:
            self._groups["photo"] = record_photos
        if decide_many is not None:
            self._groups["decision"] = decide_many
        self.max_group = max_group
        self.groups = 0
        self.grouped = 0
        self.ungrouped = 0
        """Groups whose commit failed and were committed item by item instead."""
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="tally-writer", daemon=True)
        self._thread.start()

    async def report(self, submission: Mapping[str, Any], reporter: str | None, prepared: PrepareAnswer = None) -> Accepted:
        """Submit one report (with what a prepare pool made of it, if one did); it is
        committed with whatever else is waiting."""
        return await self._put("report", (submission, reporter, prepared))  # type: ignore[no-any-return]

    async def photo(self, info: PhotoInfo, uploader: str | None) -> tuple[PhotoRow, bool]:
        """Index one stored photo (first upload wins); returns its row and whether it is new."""
        return await self._put("photo", (info, uploader))  # type: ignore[no-any-return]

    async def decision(self, submission: Mapping[str, Any], signed_in_as: str | None) -> Accepted:
        """Submit one signed decision; it is committed with the decisions waiting beside it
        (``ReviewService.decide_many``: as if one by one)."""
        return await self._put("decision", (submission, signed_in_as))  # type: ignore[no-any-return]

    async def run(self, work: Callable[[], T]) -> T:
        """Run ``work`` on the writing thread, in order with everything else."""
        return await self._put("work", work)  # type: ignore[no-any-return]

    async def _put(self, kind: str, payload: Any) -> Any:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._queue.put(_Job(future, kind, payload))
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
                if group and (job is None or job.kind != group[0].kind):
                    self._commit(group)
                    group = []
                if job is None:
                    return
                if job.kind in self._groups:
                    group.append(job)
                else:
                    self._single(job)
            self._commit(group)

    def _commit(self, group: list[_Job]) -> None:
        if not group:
            return
        try:
            answers = self._groups[group[0].kind]([job.payload for job in group])
        except Exception as failure:
            if len(group) == 1 or _is_operational(failure):
                # A fault of the server itself (the database is locked or gone, the disk is
                # full, the content store fails) is every item's answer: retrying them one
                # by one would only hold the one writer thread up.
                log.exception("committing a group of %d %ss failed", len(group), group[0].kind)
                settle((job.future, None, failure) for job in group)
                return
            # One item may have broken the group's transaction: split the group in halves
            # until the item is alone, so that its error is its own answer and never
            # another's. (Every kind is idempotent: an item that did commit before the
            # failure is answered as a retry.)
            log.warning("committing a group of %d %ss failed (%s); splitting it", len(group), group[0].kind, failure)
            self.ungrouped += 1
            half = len(group) // 2
            self._commit(group[:half])
            self._commit(group[half:])
            return
        self.groups += 1
        self.grouped += len(group)
        settle(
            (job.future, None, answer) if isinstance(answer, LedgerError) else (job.future, answer, None)
            for job, answer in zip(group, answers, strict=True)
        )

    @staticmethod
    def _single(job: _Job) -> None:
        try:
            result = job.payload()
        except BaseException as failure:
            settle([(job.future, None, failure)])
        else:
            settle([(job.future, result, None)])
