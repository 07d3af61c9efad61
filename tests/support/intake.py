"""Test helpers and fixtures, moved out of the test module that first needed them."""

from __future__ import annotations

from datetime import UTC, datetime

RECEIPT_KEY = bytes.fromhex("0303030303030303030303030303030303030303030303030303030303030303")


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2023, 5, 14, 10, 30, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now
