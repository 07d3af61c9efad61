"""Test helpers and fixtures, moved out of the test module that first needed them."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from ledger.content.local import LocalBlockStore
from ledger.election import Election
from ledger.intake.service import Ledger
from ledger.results.aggregates import Aggregates
from ledger.review.service import ReviewService
from ledger.store import Database
from tests.support.factories import tally_json
from tests.support.intake import RECEIPT_KEY, Clock
from tests.support.photos import scene
from wallets.tally_client import sign_tally

VERIFIER_KEY = bytes.fromhex("06" * 32)


def key(name: str) -> bytes:
    return hashlib.sha256(name.encode()).digest()


def jpeg(
    seed: int,
    *,
    taken: str | None = "2023:05:14 17:40:00",
    gps: bool = True,
    quality: int = 90,
    source: Image.Image | None = None,
) -> bytes:
    """A phone-like photo: a scene, with EXIF time (+07:00) and Bangkok's GPS when asked."""
    exif = Image.Exif()
    exif[0x0110] = "Test phone"
    if taken is not None:
        exif[0x8769] = {0x9003: taken, 0x9011: "+07:00"}
    if gps:
        exif[0x8825] = {1: "N", 2: (13.0, 45.0, 23.4), 3: "E", 4: (100.0, 30.0, 6.48)}
    buffer = io.BytesIO()
    (source or scene(seed)).save(buffer, "JPEG", quality=quality, exif=exif.tobytes())
    return buffer.getvalue()


@pytest.fixture
def review(database: Database, tmp_path: Path, election: Election) -> ReviewService:
    ledger = Ledger(
        database=database,
        content=LocalBlockStore(tmp_path / "blocks"),
        election=election,
        receipt_key=RECEIPT_KEY,
        batch_max_records=50,
        batch_max_age_seconds=60,
        clock=Clock(),
    )
    return ReviewService(
        ledger=ledger, aggregates=Aggregates(database=database, election=election), verifier_key=VERIFIER_KEY, open_reporting=True
    )


def upload(review: ReviewService, data: bytes) -> str:
    row, _ = review.ledger.store_photo(data, uploader=None, max_bytes=1 << 24)
    return row.cid


def report(review: ReviewService, who: str, unit: str, board: bytes, form: bytes) -> Any:
    document = tally_json(review.election, unit, submission_id=f"{who}-{unit}")
    document["photos"] = {"tally_board": upload(review, board), "form_5_18": upload(review, form)}
    answer = review.submit_reports([(sign_tally(document, key(who), review.election), None)])[0]
    assert not isinstance(answer, Exception), answer
    return answer
