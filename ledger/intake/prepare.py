"""Tallies and photos prepared in worker processes, beside the API's one interpreter.

One Python process holds one lock over its interpreter, so on a machine with more than
one CPU the API hands its pure work to ``workers`` processes and keeps its own interpreter
for HTTP and the database:

- a tally: validation, its signature, the canonical block and CID, the signed receipt
  (``ledger.intake.preparer.Preparer``), about a third of the CPU a submission costs. The worker
  also puts the block in the content store, so the block is stored before the row is
  committed, as ``Ledger.commit`` does it in process;
- a photo read whole (small uploads; large ones stream in the API process): its type, CID
  and EXIF, and its blocks stored (``ledger.intake.photos.ingest_photo``).

Jobs that arrive together go to a worker together (up to ``max_batch``, and about
``MAX_BATCH_BYTES``), so the cost of crossing processes is shared. Each answer is what the
API process would get itself: a ``Prepared`` or ``PhotoInfo``, or the ``LedgerError`` that
refuses it. ``None`` means "do it yourself": the pool is closed or broken, or the worker
failed in a way it could not send back. The caller then does the work in process, so a
failing pool never changes an answer, only where the work is done.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import pickle
import threading
from collections.abc import Mapping
from concurrent.futures import CancelledError, Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import replace
from typing import Any

from ledger.errors import LedgerError
from ledger.intake.bridge import settle
from ledger.intake.photos import PhotoInfo, ingest_photo
from ledger.intake.preparer import Prepared, Preparer
from ledger.settings import Settings

__all__ = ["MAX_BATCH_BYTES", "PhotoAnswer", "PrepareAnswer", "PreparePool", "default_workers"]

log = logging.getLogger("tally.preparing")

PrepareAnswer = Prepared | LedgerError | None
"""A prepared tally, the error that refuses it, or ``None``: prepare it in process."""
PhotoAnswer = PhotoInfo | LedgerError | None
"""A stored photo, the error that refuses it, or ``None``: ingest it in process."""
Job = tuple[str, Any]  # ("tally", submission) or ("photo", (body, max_bytes))
MAX_BATCH_BYTES = 4 << 20
"""A batch stops growing past this many bytes of photos."""


def default_workers(cpus: int | None) -> int:
    """One worker per CPU beyond the first: the API process keeps one CPU for itself."""
    return max(0, (cpus or 1) - 1)


# -- in the worker process ----------------------------------------------------------------

_preparer: Preparer | None = None


_pixel_limits: dict[str, int] = {}


def _start_worker(settings: Settings, receipt_key: bytes) -> None:
    global _preparer
    _pixel_limits.update(max_pixels=settings.max_photo_pixels, max_side=settings.max_photo_side)
    from ledger.content import open_content_store
    from ledger.election import load_election

    _preparer = Preparer(
        content=open_content_store(settings),
        election=load_election(settings.election),
        receipt_key=receipt_key,
        batch_max_age_seconds=settings.batch_max_age_seconds,
    )


def _ready() -> bool:
    return _preparer is not None


def _sendable(error: LedgerError) -> LedgerError | None:
    """``error`` if it crosses processes unchanged; else ``None``, and the API does that job itself."""
    try:
        copy = pickle.loads(pickle.dumps(error))
    except Exception:
        return None
    return error if type(copy) is type(error) and str(copy) == str(error) else None


def _run_all(jobs: list[Job]) -> list[Any]:
    assert _preparer is not None, "the worker was not started"
    answers: list[Any] = []
    for kind, payload in jobs:
        try:
            if kind == "tally":
                prepared = _preparer.tally(payload)
                _preparer.content.put_block(prepared.cid, prepared.block)  # off the API's interpreter too
                answers.append(replace(prepared, stored=True))
            else:
                body, max_bytes = payload
                answers.append(ingest_photo(body, content=_preparer.content, max_bytes=max_bytes, **_pixel_limits))
        except LedgerError as refused:
            answers.append(_sendable(refused))
        except Exception:  # not the client's mistake: the API does it again and answers for itself
            log.exception("a %s failed in a prepare worker", kind)
            answers.append(None)
    return answers


# -- in the API process -------------------------------------------------------------------


class PreparePool:
    """Prepares tallies and photos in ``workers`` processes, in batches of what arrived together."""

    def __init__(self, settings: Settings, workers: int, *, receipt_key: bytes, max_batch: int = 64):
        """``receipt_key``: the ledger's receipt key, already unlocked in this process; the
        workers get it through their start-up pipe rather than each unlocking the keystore
        again (scrypt: a second and 256 MiB of memory per worker)."""
        if workers < 1:
            raise ValueError("a prepare pool needs at least one worker")
        self.workers = workers
        self.max_batch = max_batch
        self.batches = 0
        self.prepared = 0
        self.broken = False
        self._executor = ProcessPoolExecutor(
            max_workers=workers,
            mp_context=multiprocessing.get_context("spawn"),  # no copy of the API's threads and connections
            initializer=_start_worker,
            initargs=(settings, receipt_key),
        )
        self._lock = threading.Lock()
        self._waiting: list[tuple[Job, asyncio.Future[Any]]] = []
        self._in_flight = 0
        self._closed = False

    def start(self) -> None:
        """Start the workers now (each imports the ledger and loads the election, about a
        second), so that the first tallies of the night do not wait for them."""
        for _ in range(self.workers):
            try:
                self._executor.submit(_ready)
            except (BrokenProcessPool, RuntimeError) as failure:
                self._fail(failure)
                return

    async def prepare(self, submission: Mapping[str, Any]) -> PrepareAnswer:
        """The prepared tally (its block stored), the error that refuses it, or ``None``
        (prepare it in process)."""
        return await self._run(("tally", submission))  # type: ignore[no-any-return]

    async def ingest_photo(self, body: bytes, *, max_bytes: int) -> PhotoAnswer:
        """The photo stored and described (``ledger.intake.photos.ingest_photo``), the error that
        refuses it, or ``None`` (ingest it in process)."""
        return await self._run(("photo", (body, max_bytes)))  # type: ignore[no-any-return]

    async def _run(self, job: Job) -> Any:
        if self.broken or self._closed:
            return None
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        with self._lock:
            self._waiting.append((job, future))
            batch = self._take()
        if batch:
            self._send(batch)
        return await future

    def close(self) -> None:
        """Stop the workers; whatever is waiting is answered ``None``."""
        with self._lock:
            self._closed = True
            waiting, self._waiting = self._waiting, []
        settle((future, None, None) for _, future in waiting)
        self._executor.shutdown(wait=True, cancel_futures=True)

    def _take(self) -> list[tuple[Job, asyncio.Future[Any]]]:
        """The next batch to send, if a worker is free for it (one more than the workers is
        kept in flight, so a worker finds its next batch waiting). Called under the lock."""
        if not self._waiting or self._in_flight > self.workers:
            return []
        size = taken = 0
        for (kind, payload), _ in self._waiting:
            if taken == self.max_batch or (taken and size > MAX_BATCH_BYTES):
                break
            size += len(payload[0]) if kind == "photo" else 0
            taken += 1
        batch, self._waiting = self._waiting[:taken], self._waiting[taken:]
        self._in_flight += 1
        return batch

    def _send(self, batch: list[tuple[Job, asyncio.Future[Any]]]) -> None:
        try:
            done = self._executor.submit(_run_all, [job for job, _ in batch])
        except (BrokenProcessPool, RuntimeError) as failure:  # broken, or shut down
            self._fail(failure)
            self._finish(batch, None)
            return
        done.add_done_callback(lambda finished: self._finish(batch, finished))

    def _fail(self, failure: BaseException) -> None:
        if not self.broken and not self._closed:
            log.error("the prepare pool stopped (%s); tallies are prepared in the API process", failure)
        self.broken = True

    def _finish(self, batch: list[tuple[Job, asyncio.Future[Any]]], done: Future[list[Any]] | None) -> None:
        answers: list[Any] | None = None
        if done is not None:
            try:
                answers = done.result()
            except BrokenProcessPool as failure:
                self._fail(failure)
            except CancelledError:
                pass
            except Exception:
                log.exception("a batch of %d jobs came back from a worker unreadable", len(batch))
        if answers is None or len(answers) != len(batch):
            answers = [None] * len(batch)
        else:
            self.batches += 1
            self.prepared += len(batch)
        settle((future, answer, None) for (_, future), answer in zip(batch, answers, strict=True))
        with self._lock:
            self._in_flight -= 1
            following = [] if self.broken or self._closed else self._take()
            if self.broken or self._closed:
                stranded, self._waiting = self._waiting, []
            else:
                stranded = []
        settle((future, None, None) for _, future in stranded)
        if following:
            self._send(following)
