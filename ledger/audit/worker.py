"""The worker processes of ``verify all``: each opens the same content source once (by its
``spec``), then checks chunks of records, certified records and photos.

Kept light: a worker imports this, the checks, the core and the content stores, not the
chain client.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ledger.audit.checks import Summary, certified_numbers, check_records
from ledger.audit.photos import PhotoItem, check_photos
from ledger.audit.report import Mismatch
from ledger.audit.sources import ContentSource, open_source
from ledger.election import Election

__all__ = ["start_worker", "worker_certified_numbers", "worker_check_photos", "worker_check_records"]

_worker_source: ContentSource | None = None
_worker_election: Election | None = None


def start_worker(spec: str, election: Election | None = None) -> None:
    """Initializer of a worker process: open the content source named by ``spec`` (a
    CAR file's blocks arrive as ``blocks:DIR``, so no worker needs scratch space)."""
    global _worker_source, _worker_election
    _worker_election = election
    if spec.startswith("car:"):
        raise ValueError("a worker reads a CAR file's blocks through blocks:DIR, not car:FILE")
    _worker_source = open_source(spec, scratch=Path("."))


def _source() -> ContentSource:
    if _worker_source is None:
        raise RuntimeError("start_worker has not run in this process")
    return _worker_source


def worker_check_records(values: list[tuple[str, str, str]], where: str) -> tuple[list[Mismatch], list[tuple[str, Summary]]]:
    return check_records(_source(), values, where, _worker_election)


def worker_certified_numbers(items: list[tuple[str, str]]) -> Any:
    return certified_numbers(_source(), items, _worker_election)


def worker_check_photos(items: list[PhotoItem]) -> tuple[list[Mismatch], int]:
    return check_photos(_source(), items)
