"""The ledger's one way to write a moment as text: UTC, ISO 8601, a ``Z`` suffix.

Two precisions, each used by formats that are signed or anchored, so neither may change:

- ``format_time_micro``: ``YYYY-MM-DDTHH:MM:SS.ffffffZ``, always six digits of fraction.
  Receipts (``received_at``, ``seal_deadline``), decisions' ``decided_at``, batch and feed
  times, the server's JSON answers.
- ``format_time_seconds``: ``YYYY-MM-DDTHH:MM:SSZ``. Sign-in challenges (the text a wallet
  signs), a tally's ``submitted_at`` as devices send it, validation messages and the
  quarantine's log.

Both take an aware ``datetime`` in any zone and write it in UTC (a naive one is read as
local time, as ``datetime.astimezone`` does).
"""

from __future__ import annotations

from datetime import UTC, datetime

__all__ = ["format_time_micro", "format_time_seconds"]


def format_time_micro(moment: datetime) -> str:
    """``moment`` in UTC as ``YYYY-MM-DDTHH:MM:SS.ffffffZ`` (``2023-05-14T10:31:07.000250Z``)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def format_time_seconds(moment: datetime) -> str:
    """``moment`` in UTC as ``YYYY-MM-DDTHH:MM:SSZ``, the fraction dropped (``2023-05-14T10:31:07Z``)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
