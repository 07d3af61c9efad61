"""Entries written straight into the store, for the tests of its queries (tests/store)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from ledger.store import Database, Entry

WHEN = datetime(2023, 5, 14, 11, 0, tzinfo=UTC)
SIGNER = "0x" + "11" * 20


def add_entries(database: Database, count: int, *, kind: str = "tally") -> None:
    """``count`` entries of ``kind`` for units BKK_1-0001… , received a second apart from ``WHEN``."""
    with database.session() as session:
        for number in range(count):
            session.add(
                Entry(
                    cid=f"bafy-{kind}-{number}",
                    kind=kind,
                    election="th2566",
                    polling_unit=f"BKK_1-{number + 1:04d}",
                    constituency_id="BKK_1",
                    signer=SIGNER,
                    submission_id=f"{kind}-{number}",
                    content_digest="0x" + "00" * 32,
                    leaf_hash="0x" + "00" * 32,
                    received_at=WHEN + timedelta(seconds=number),
                    seal_deadline=WHEN + timedelta(minutes=5),
                    document={"n": number},
                    receipt={},
                )
            )
