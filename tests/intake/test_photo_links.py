"""Issue 11, hole 7: a tally's photo link must name an uploaded photo of an image type.

Before, any stored block passed (``content.has_block``): a record, a batch manifest, or
the blocks of an upload that was refused. Now the in-process preparer asks the photo index
(``Ledger.is_photo``), and tallies prepared by a worker (which sees only the content store)
are checked against the index in one query per group (``ReviewService.submit_reports``).
Both give the same answer: 422 with the path ``photos.<role>``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ledger.content.local import LocalBlockStore
from ledger.core.cid import CID, RAW
from ledger.election import Election
from ledger.errors import InvalidTally
from ledger.intake.service import Ledger, Preparer
from ledger.results.aggregates import Aggregates
from ledger.review.service import ReviewService
from ledger.store import Database, Photo
from tests.support.factories import BOARD, VOLUNTEER_KEY, stand_in_photos, tally_json
from tests.support.intake import RECEIPT_KEY, Clock
from wallets.tally_client import sign_tally

VERIFIER_KEY = bytes.fromhex("05" * 32)


@pytest.fixture
def review(database: Database, tmp_path: Path, election: Election) -> ReviewService:
    ledger = stand_in_photos(
        Ledger(
            database=database,
            content=LocalBlockStore(tmp_path / "blocks"),
            election=election,
            receipt_key=RECEIPT_KEY,
            batch_max_records=50,
            batch_max_age_seconds=60,
            clock=Clock(),
        )
    )
    return ReviewService(
        ledger=ledger, aggregates=Aggregates(database=database, election=election), verifier_key=VERIFIER_KEY, open_reporting=True
    )


def linking(election: Election, board: CID | str, submission_id: str) -> dict[str, object]:
    document = tally_json(election, submission_id=submission_id)
    document["photos"]["tally_board"] = str(board)  # type: ignore[index]
    return sign_tally(document, VOLUNTEER_KEY, election)


def not_photos(review: ReviewService, election: Election) -> dict[str, str]:
    """Stored blocks that are not uploaded photos."""
    record = review.ledger.submit_tally(linking(election, BOARD, "a-real-report")).receipt["record_cid"]
    stray = b"\xff\xd8\xff blocks of an upload that was refused"
    review.ledger.content.put_block(CID.of(RAW, stray), stray)
    text = b"a text file indexed as text"
    review.ledger.content.put_block(CID.of(RAW, text), text)
    with review.database.session() as session:  # no upload makes such a row; the index must still say no
        session.add(
            Photo(
                cid=str(CID.of(RAW, text)), size=len(text), media_type="text/plain", uploaded_at=Clock()(), uploader=None, exif={}
            )
        )
    return {"a record": record, "unindexed blocks": str(CID.of(RAW, stray)), "a row of another type": str(CID.of(RAW, text))}


def test_a_photo_link_must_name_an_uploaded_image(review: ReviewService, election: Election) -> None:
    for name, cid in not_photos(review, election).items():
        assert review.ledger.content.has_block(CID.parse(cid)), name  # stored: the old check let it through
        for how in ("in process", "prepared elsewhere"):
            submission = linking(election, cid, f"{name}-{how}".replace(" ", "-"))
            if how == "in process":
                answer = review.submit_reports([(submission, None)])[0]
            else:  # what a prepare worker makes of it: the same Preparer, with only the content store
                worker = Preparer(
                    content=review.ledger.content, election=election, receipt_key=RECEIPT_KEY, batch_max_age_seconds=60
                )
                answer = review.submit_reports([(submission, None)], prepared=[worker.tally(submission)])[0]
            assert isinstance(answer, InvalidTally), (name, how, answer)
            assert [(error.path, error.message) for error in answer.errors] == [
                (("photos", "tally_board"), f"photo {cid} is not stored here; upload it first")
            ], (name, how)


def test_a_worker_prepared_group_is_judged_per_tally(review: ReviewService, election: Election) -> None:
    record = review.ledger.submit_tally(linking(election, BOARD, "first-report")).receipt["record_cid"]
    worker = Preparer(content=review.ledger.content, election=election, receipt_key=RECEIPT_KEY, batch_max_age_seconds=60)
    good = sign_tally(tally_json(election, "BKK_1-0002", submission_id="good-report"), VOLUNTEER_KEY, election)
    bad = linking(election, record, "bad-report")
    answers = review.submit_reports([(good, None), (bad, None)], prepared=[worker.tally(good), worker.tally(bad)])
    assert not isinstance(answers[0], Exception) and answers[0].created
    assert isinstance(answers[1], InvalidTally) and answers[1].errors[0].path == ("photos", "tally_board")


def test_the_photo_index_is_asked_by_primary_key(review: ReviewService) -> None:
    statements: list[str] = []
    from sqlalchemy import event

    engine = review.database.engine
    if engine.dialect.name != "sqlite":
        pytest.skip("the query plan is read from SQLite")

    def remember(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", remember)
    try:
        assert review.ledger.image_photos([str(BOARD), "bafkreinothere"]) == {str(BOARD)}
    finally:
        event.remove(engine, "before_cursor_execute", remember)
    (query,) = [s for s in statements if "photos" in s]
    with engine.connect() as connection:
        plan = " ".join(
            str(row[-1])
            for row in connection.exec_driver_sql(
                "EXPLAIN QUERY PLAN " + query, (str(BOARD), "bafkreinothere", "image/jpeg", "image/png", "image/heic")
            )
        )
    assert "USING INDEX" in plan and "SCAN" not in plan, plan
