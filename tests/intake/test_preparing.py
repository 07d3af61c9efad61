"""Tallies prepared in worker processes (``ledger.intake.prepare``): the same answers as in process,
through the API too, and a broken pool falls back without losing or changing an answer."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from api.main import create_app
from api.state import AppState
from ledger.core.cid import CID, RAW
from ledger.errors import Forbidden, InvalidTally, LedgerError
from ledger.intake.prepare import PreparePool, default_workers
from ledger.intake.service import Prepared
from ledger.settings import Settings
from ledger.store import PhotoUse
from tests.support.api import OTHER_VOLUNTEER, TestClient, make_settings, sign_in
from tests.support.api import VOLUNTEER as VOLUNTEER_ADDRESS
from tests.support.factories import OTHER_KEY, VOLUNTEER_KEY, signed_tally, stand_in_photos, tally_json
from tests.support.paths import VECTORS

TIMES = ("received_at", "seal_deadline", "receipt")


@pytest.fixture
def pool_state(tmp_path: Path, database_url: str) -> Iterator[AppState]:
    state = AppState.open(make_settings(tmp_path / "data", database_url, api_prepare_workers=1))
    for name in (b"board", b"form"):
        state.ledger_app.content.put_block(CID.of(RAW, name), name)
    stand_in_photos(state.ledger_app.ledger)
    yield state
    state.close()


def _without_times(prepared: Prepared) -> dict[str, Any]:
    return {name: value for name, value in prepared.row.items() if name not in TIMES}


def test_one_worker_per_cpu_beyond_the_first() -> None:
    assert [default_workers(n) for n in (None, 1, 2, 8)] == [0, 0, 1, 7]


def test_a_worker_prepares_exactly_what_the_api_process_would(pool_state: AppState) -> None:
    pool = pool_state.ledger_app.prepare_pool
    assert pool is not None
    pool.start()  # what the API's lifespan does: the worker starts before any tally comes
    assert len(pool._executor._processes) == 1  # type: ignore[attr-defined]
    ledger = pool_state.ledger
    election = ledger.election
    good = [
        signed_tally(election, unit, submission_id=f"pool-000{n}")
        for n, unit in enumerate(("BKK_1-0001", "BKK_1-0002", "CMI_1-0001"))
    ]
    bad = tally_json(election)
    bad["party_list"]["votes"]["999"] = 5
    bad["signature"] = "0x" + "00" * 65
    missing_photo = signed_tally(election, submission_id="pool-photo-1")
    missing_photo["photos"] = {**missing_photo["photos"], "tally_board": str(CID.of(RAW, b"never uploaded"))}

    async def main() -> list[Any]:
        return await asyncio.gather(*(pool.prepare(s) for s in [*good, bad, missing_photo]))

    answers = asyncio.run(main())
    for submission, answer in zip(good, answers, strict=False):
        assert isinstance(answer, Prepared)
        assert answer.stored and ledger.content.has_block(answer.cid)  # the worker stored the block
        here = ledger.prepare_tally(submission)
        assert (answer.cid, answer.block) == (here.cid, here.block)
        assert _without_times(answer) == _without_times(here)
        assert answer.receipt["record_cid"] == str(here.cid) and answer.receipt["ledger"] == ledger.receipt_signer
    for submission, answer in zip([bad, missing_photo], answers[3:], strict=True):
        assert isinstance(answer, InvalidTally)
        with pytest.raises(InvalidTally) as here:
            ledger.prepare_tally(submission)
        assert [e.as_dict() for e in answer.errors] == [e.as_dict() for e in here.value.errors]
    assert pool.prepared == 5 and 1 <= pool.batches <= 5  # what arrived together went together


def test_the_api_answers_the_same_with_a_pool(pool_state: AppState) -> None:
    pool_state.access.register_volunteer(address=VOLUNTEER_ADDRESS, name="volunteer 42")
    pool_state.access.register_volunteer(address=OTHER_VOLUNTEER, name="volunteer 43")
    election = pool_state.ledger_app.election
    with TestClient(create_app(app_state=pool_state), raise_server_exceptions=False) as client:
        headers = {"Authorization": f"Bearer {sign_in(client, VOLUNTEER_KEY)}"}
        first = client.post("/v1/tallies", json=signed_tally(election), headers=headers)
        assert first.status_code == 201, first.text
        retry = client.post("/v1/tallies", json=signed_tally(election), headers=headers)
        assert retry.status_code == 200 and retry.json() == first.json()
        assert client.post("/v1/tallies", json=signed_tally(election, cast=401), headers=headers).status_code == 409
        invalid = tally_json(election, submission_id="pool-invalid-1")
        invalid["constituency"]["invalid"] = -1
        answer = client.post("/v1/tallies", json=invalid, headers=headers)
        assert answer.status_code == 422 and answer.json()["error"] == "invalid_tally"
        assert client.post("/v1/tallies", json=signed_tally(election, key=OTHER_KEY), headers=headers).status_code == 403
        record = client.get(f"/v1/records/{first.json()['record_cid']}")
        assert record.status_code == 200
        assert client.get("/v1/health").json()["prepare_workers"] == 1
    assert pool_state.ledger_app.prepare_pool is not None and pool_state.ledger_app.prepare_pool.prepared >= 3
    with pool_state.ledger_app.database.session() as session:  # the photo index rows came with it
        uses = session.execute(select(PhotoUse.photo_cid).where(PhotoUse.record_cid == first.json()["record_cid"]))
        assert sorted(uses.scalars()) == sorted(signed_tally(election)["photos"].values())


def test_permission_is_still_checked_first(pool_state: AppState) -> None:
    """A report prepared elsewhere (even refused there) from someone who may not report
    gets the permission answer, as it would in process."""
    review = pool_state.review
    review.open_reporting = False
    election = pool_state.ledger_app.election
    tally = signed_tally(election, submission_id="unpermitted")
    answers = review.submit_reports([(tally, None), (tally, None)], [InvalidTally([]), pool_state.ledger.prepare_tally(tally)])
    assert all(isinstance(answer, Forbidden) for answer in answers)


def test_a_dead_worker_leaves_the_api_preparing_in_process(pool_state: AppState) -> None:
    pool = pool_state.ledger_app.prepare_pool
    assert pool is not None
    election = pool_state.ledger_app.election
    assert isinstance(asyncio.run(pool.prepare(signed_tally(election, submission_id="before-01"))), Prepared)
    for process in list(pool._executor._processes.values()):  # type: ignore[attr-defined]
        os.kill(process.pid, signal.SIGKILL)
        process.join()
    assert asyncio.run(pool.prepare(signed_tally(election, submission_id="after-001"))) is None
    assert pool.broken
    assert asyncio.run(pool.prepare(signed_tally(election, submission_id="later-001"))) is None  # no new batches are sent
    accepted = pool_state.review.submit_reports([(signed_tally(election, submission_id="after-001"), None)], [None])
    assert accepted[0].created  # type: ignore[union-attr]


def test_a_closed_pool_answers_none(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    pool = PreparePool(settings, 1, receipt_key=bytes(31) + b"\x01")
    pool.close()
    assert asyncio.run(pool.prepare({"polling_unit": "BKK_1-0001"})) is None
    with pytest.raises(ValueError, match="at least one worker"):
        PreparePool(settings, 0, receipt_key=bytes(31) + b"\x01")


def test_photos_ingested_by_a_worker_are_the_photos_ingested_here(pool_state: AppState, tmp_path: Path) -> None:
    from ledger.content.local import LocalBlockStore
    from ledger.intake.photos import PhotoInfo, ingest_photo

    pool = pool_state.ledger_app.prepare_pool
    assert pool is not None
    photos = sorted(path for path in (VECTORS / "photos").iterdir() if path.suffix in (".jpg", ".png", ".heic"))
    bodies = [photo.read_bytes() for photo in photos] + [b"hello, this is text", b"\xff\xd8\xff" + bytes(100)]

    async def main() -> list[Any]:
        return await asyncio.gather(
            *(
                pool.ingest_photo(body, max_bytes=50) if n == len(bodies) - 1 else pool.ingest_photo(body, max_bytes=1 << 20)
                for n, body in enumerate(bodies)
            )
        )

    answers = asyncio.run(main())
    here = LocalBlockStore(tmp_path / "here")
    for body, answer in zip(bodies[:-2], answers, strict=False):
        assert isinstance(answer, PhotoInfo)
        assert answer == ingest_photo(body, content=here, max_bytes=1 << 20)
        assert pool_state.ledger_app.content.has_block(answer.cid)  # stored by the worker
    for body, answer, max_bytes in ((bodies[-2], answers[-2], 1 << 20), (bodies[-1], answers[-1], 50)):
        with pytest.raises(LedgerError) as here_error:
            ingest_photo(body, content=here, max_bytes=max_bytes)
        assert type(answer) is here_error.type and str(answer) == str(here_error.value)  # the same refusal


def test_the_api_takes_photos_through_a_pool(pool_state: AppState) -> None:
    pool_state.access.register_volunteer(address=VOLUNTEER_ADDRESS, name="volunteer 42")
    data = (VECTORS / "photos" / "jpeg_exif_gps.jpg").read_bytes()
    with TestClient(create_app(app_state=pool_state), raise_server_exceptions=False) as client:
        headers = {"Authorization": f"Bearer {sign_in(client, VOLUNTEER_KEY)}", "Content-Type": "image/jpeg"}
        first = client.post("/v1/photos", content=data, headers=headers)
        assert first.status_code == 201, first.text
        before = pool_state.ledger_app.prepare_pool.prepared  # type: ignore[union-attr]
        streamed = client.post("/v1/photos", content=iter([data[:100], data[100:]]), headers=headers)  # no length
        assert streamed.status_code == 200 and streamed.json() == first.json()
        assert pool_state.ledger_app.prepare_pool.prepared == before  # type: ignore[union-attr]  # it streamed here
        text = client.post("/v1/photos", content=b"hello, this is text", headers=headers)
        assert text.status_code == 415 and text.json()["error"] == "unsupported_photo_type"
    assert pool_state.ledger_app.prepare_pool is not None and pool_state.ledger_app.prepare_pool.prepared >= 2


def test_ledger_errors_cross_processes_unchanged() -> None:
    import pickle

    from api.errors import BadRequestBody
    from ledger.errors import ConflictingSubmission, FieldError
    from ledger.intake.photos import PhotoTooLarge, UnsupportedPhotoType

    errors = [
        UnsupportedPhotoType("a text file"),
        PhotoTooLarge(max_bytes=50, bytes_read=51),
        InvalidTally([FieldError(("party_list", "votes", "9"), "no party number 9")]),
        BadRequestBody("too big", status=413, path=("body",)),
        ConflictingSubmission("taken"),
    ]
    for error in errors:
        copy = pickle.loads(pickle.dumps(error))
        assert (type(copy), str(copy), copy.args, copy.__dict__) == (type(error), str(error), error.args, error.__dict__)
