"""The photo check of ``tally verify all``: every photo a record links, re-hashed block by block.

A tally record links its photos (``photos``: role → CID, IPLD links in the signed record),
so the record's signature and anchor commit to the photos' root CIDs. The check fetches
each photo's whole UnixFS DAG (dag-pb nodes and raw leaves, ``ContentSource.check_file``)
and re-hashes every block, so a photo block altered or lost after the night is named with
the record that links it and the photo's role and CID.

Each photo is checked once however many records link it (reused photos, a head's
correction citing the photos of the report it corrects): ``PhotoAudit`` remembers the
photos already queued, and names the first record that linked a photo. It remembers a
64-bit keyed hash of each CID (BLAKE2b with a key drawn for the run, so no one can make a
photo collide with another on purpose): about 60 bytes a photo, 35 MiB for the ~570,000
photos of a national night, where the CID strings would take twice that. Two photos of a
night collide by chance with a probability near n²/2⁶⁵ (10⁻⁸ for a national night); the
later one would go unchecked.
"""

from __future__ import annotations

import hashlib
import os
from collections import deque
from collections.abc import Callable
from concurrent.futures import Executor, Future

from ledger.audit.report import AuditReport, Mismatch
from ledger.audit.sources import ContentSource
from ledger.core.cid import CID
from ledger.errors import LedgerError

__all__ = ["PhotoAudit", "PhotoItem", "check_photos"]

PhotoItem = tuple[bytes, str]
"""One photo to check: (its binary CID, where it is linked: batch, record and role)."""

PhotoWork = Callable[[list[PhotoItem]], tuple[list[Mismatch], int]]


def check_photos(source: ContentSource, items: list[PhotoItem]) -> tuple[list[Mismatch], int]:
    """Check each photo's whole file DAG; the mismatches, and how many photos were checked."""
    mismatches: list[Mismatch] = []
    for binary_cid, where in items:
        try:
            photo_cid = CID.from_bytes(binary_cid)
        except (LedgerError, ValueError) as exc:
            mismatches.append(Mismatch("photo", where, "a photo link that is a CID", str(exc)))
            continue
        try:
            source.check_file(photo_cid)
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
        self._key = os.urandom(16)
        self._seen: set[int] = set()
        self._queue: list[PhotoItem] = []
        self._pending: deque[Future[tuple[list[Mismatch], int]]] = deque()

    def add(self, where: str, links: list[tuple[str, bytes]]) -> None:
        """``links`` of the record at ``where``: (role, binary photo CID) pairs."""
        for role, binary_cid in links:
            fingerprint = int.from_bytes(hashlib.blake2b(binary_cid, key=self._key, digest_size=8).digest(), "big")
            if fingerprint not in self._seen:
                self._seen.add(fingerprint)
                self._queue.append((binary_cid, f"{where}, photo {role}"))
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
        self._seen = set()  # no longer needed: the certified replay that follows has the memory
