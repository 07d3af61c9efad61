"""The pure half of intake (``ledger.intake.preparer``): plain data out, no database in."""

from __future__ import annotations

import pickle
import subprocess
import sys

import pytest
from sqlalchemy import select

from ledger.content.local import LocalBlockStore
from ledger.core.cid import CID, RAW
from ledger.election import Election
from ledger.intake.preparer import Prepared, Preparer
from ledger.intake.service import Ledger
from ledger.store import Database, PhotoUse
from tests.support.factories import signed_tally, stand_in_photos
from tests.support.intake import RECEIPT_KEY
from tests.support.paths import REPO


@pytest.fixture
def ledger(database: Database, content: LocalBlockStore, election: Election) -> Ledger:
    content.put_block(CID.of(RAW, b"board"), b"board")
    content.put_block(CID.of(RAW, b"form"), b"form")
    return stand_in_photos(
        Ledger(
            database=database,
            content=content,
            election=election,
            receipt_key=RECEIPT_KEY,
            batch_max_records=3,
            batch_max_age_seconds=60,
        )
    )


def test_the_preparer_loads_no_database_layer() -> None:
    """The prepare pool's workers run it; they never need SQLAlchemy."""
    script = "import sys, ledger.intake.preparer, ledger.intake.prepare; print('sqlalchemy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_index_rows_name_their_table_and_the_ledger_writes_them_there(ledger: Ledger, election: Election) -> None:
    def uses(cid: str, node: object) -> list[tuple[str, dict[str, object]]]:
        return [("photo_uses", {"photo_cid": "bafy-stand-in", "record_cid": cid, "unit": "BKK_1-0001"})]

    preparer = Preparer(content=ledger.content, election=election, receipt_key=RECEIPT_KEY, batch_max_age_seconds=60)
    prepared = preparer.tally(signed_tally(election), index=uses)
    assert isinstance(prepared, Prepared)
    assert [table for table, _ in prepared.index] == ["photo_uses"]
    assert pickle.loads(pickle.dumps(prepared)) == prepared  # plain data: it crosses processes as it is
    (accepted,) = ledger.commit([prepared])
    with ledger.database.session() as session:
        rows = session.execute(select(PhotoUse.photo_cid, PhotoUse.record_cid)).all()
    assert [tuple(row) for row in rows] == [("bafy-stand-in", accepted.receipt["record_cid"])]  # type: ignore[union-attr]
