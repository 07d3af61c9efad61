"""Test helpers and fixtures, moved out of the test module that first needed them."""

from __future__ import annotations

from pathlib import Path

import pytest

from ledger.chain.evidence import EvidenceAnchorClient
from ledger.content.local import LocalBlockStore
from ledger.core.cid import CID, RAW
from ledger.election import Election
from ledger.intake.service import Ledger
from ledger.sealing.anchoring import AnchorWorker
from ledger.sealing.batches import Batcher
from ledger.store import Database
from tests.support.factories import signed_tally, stand_in_photos
from tests.support.intake import RECEIPT_KEY, Clock


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def ledger(database: Database, tmp_path: Path, election: Election, clock: Clock) -> Ledger:
    content = LocalBlockStore(tmp_path / "blocks")
    content.put_block(CID.of(RAW, b"board"), b"board")
    content.put_block(CID.of(RAW, b"form"), b"form")
    return stand_in_photos(
        Ledger(
            database=database,
            content=content,
            election=election,
            receipt_key=RECEIPT_KEY,
            batch_max_records=2,
            batch_max_age_seconds=60,
            clock=clock,
        )
    )


def fill(ledger: Ledger, election: Election, batches: int) -> list[str]:
    units = [u.id for u in election.polling_units("CMI_1")][: 2 * batches]
    cids = [ledger.submit_tally(signed_tally(election, u, submission_id=f"anchor-{u}")).receipt["record_cid"] for u in units]
    Batcher(ledger).seal_due()
    return cids


def worker(ledger: Ledger, client: EvidenceAnchorClient, clock: Clock, **kwargs: float) -> AnchorWorker:
    return AnchorWorker(database=ledger.database, content=ledger.content, client=client, clock=clock, **kwargs)
