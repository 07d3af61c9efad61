"""The photo check of ``tally verify all``: every photo a record links, re-hashed block by block.

A tally record links its photos (``photos``: role → CID, IPLD links in the signed record),
so the record's signature and anchor commit to the photos' root CIDs. The check fetches
each photo's whole UnixFS DAG (dag-pb nodes and raw leaves, ``ContentSource.check_file``)
and re-hashes every block, so a photo block altered or lost after the night is named with
the record that links it and the photo's role and CID.

Each photo is checked once however many records link it (reused photos, a head's
correction citing the photos of the report it corrects): ``PhotoAudit`` keeps the CIDs
already queued, and names the first record that linked a photo.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from concurrent.futures import Executor, Future

from ledger.audit.report import AuditReport, Mismatch
from ledger.audit.sources import ContentSource
from ledger.core.cid import CID
from ledger.errors import LedgerError

__all__ = ["PhotoAudit", "PhotoItem", "check_photos"]

PhotoItem = tuple[str, str]
"""One photo to check: (photo CID, where it is linked: batch, record and role)."""

PhotoWork = Callable[[list[PhotoItem]], tuple[list[Mismatch], int]]


def check_photos(source: ContentSource, items: list[PhotoItem]) -> tuple[list[Mismatch], int]:
    """Check each photo's whole file DAG; the mismatches, and how many photos were checked."""
    mismatches: list[Mismatch] = []
    for photo_cid, where in items:
        try:
            source.check_file(CID.parse(photo_cid))
        except (LedgerError, ValueError) as exc:
            mismatches.append(Mismatch("photo", f"{where} {photo_cid}", "a photo whose every block hashes to its CID", str(exc)))
    return mismatches, len(items)


class PhotoAudit:
    """Photos queued as records are read, checked in chunks in this process or in ``pool``.

    ``add`` takes a record's photo links; a photo already queued is not queued again.
    ``finish`` waits for the rest and adds the mismatches and the count to ``report``.
    At most ``in_flight`` chunks wait in the pool, so memory stays bounded."""

    def __init__(
        self,
        source: ContentSource,
        report: AuditReport,
        *,
        pool: Executor | None = None,
        work: PhotoWork | None = None,
        chunk: int = 200,
        in_flight: int = 16,
    ):
        self.source = source
        self.report = report
        self.pool = pool
        self.work = work
        self.chunk = chunk
        self.in_flight = in_flight
        self._seen: set[str] = set()
        self._queue: list[PhotoItem] = []
        self._pending: deque[Future[tuple[list[Mismatch], int]]] = deque()

    def add(self, where: str, links: list[tuple[str, str]]) -> None:
        """``links`` of the record at ``where``: (role, photo CID) pairs."""
        for role, photo_cid in links:
            if photo_cid not in self._seen:
                self._seen.add(photo_cid)
                self._queue.append((photo_cid, f"{where}, photo {role}"))
        if len(self._queue) >= self.chunk:
            self._send()

    def _send(self) -> None:
        items, self._queue = self._queue, []
        if not items:
            return
        if self.pool is None or self.work is None:
            self._take(check_photos(self.source, items))
            return
        self._pending.append(self.pool.submit(self.work, items))
        while len(self._pending) > self.in_flight:
            self._take(self._pending.popleft().result())

    def _take(self, result: tuple[list[Mismatch], int]) -> None:
        mismatches, checked = result
        self.report.mismatches.extend(mismatches)
        self.report.photos += checked

    def finish(self) -> None:
        self._send()
        while self._pending:
            self._take(self._pending.popleft().result())
