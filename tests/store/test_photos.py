"""The photo index: photos and their hash bands written together, read back as frozen rows."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from sqlalchemy import text

from ledger.store import Database
from ledger.store.photos import PhotoRow, get_photo, image_photos, insert_photos, photos_by_cid
from tests.support.store import SIGNER, WHEN

IMAGES = ("image/jpeg", "image/png")


def _photo(cid: str, *, media_type: str = "image/jpeg", perceptual_hash: str | None = None) -> dict[str, Any]:
    """A photos row as ``Ledger.record_photos`` hands it to ``insert_photos``."""
    return {
        "cid": cid,
        "size": 1234,
        "media_type": media_type,
        "uploaded_at": WHEN,
        "uploader": SIGNER,
        "exif": {"taken_at": "2023-05-14T17:05:00Z"},
        "width": 640,
        "height": 480,
        "perceptual_hash": perceptual_hash,
    }


def test_a_photo_reads_back_whole_and_frozen(database: Database) -> None:
    with database.session() as session:
        insert_photos(session, [_photo("bafy-board", perceptual_hash="00ff00ff00ff00ff")], [])
    row = get_photo(database, "bafy-board")
    assert row == PhotoRow(**_photo("bafy-board", perceptual_hash="00ff00ff00ff00ff"))
    assert row is not None and row.uploaded_at == WHEN
    with pytest.raises(dataclasses.FrozenInstanceError):
        row.uploader = None  # type: ignore[misc]
    assert get_photo(database, "bafy-nothing") is None


def test_photos_are_found_by_cid_and_only_images_count_as_photos(database: Database) -> None:
    hash_of_board = "0007000800090010"
    bands = [{"band": band, "value": band + 7, "photo_cid": "bafy-board", "perceptual_hash": hash_of_board} for band in range(4)]
    with database.session() as session:
        insert_photos(session, [_photo("bafy-board"), _photo("bafy-notes", media_type="text/plain")], bands)
        insert_photos(session, [], [])  # nothing to write, nothing written
    with database.session() as session:
        found = photos_by_cid(session, {"bafy-board", "bafy-notes", "bafy-nothing"})
        stored_bands = session.execute(text("SELECT band, value, photo_cid FROM photo_hash_bands ORDER BY band")).all()
    assert sorted(found) == ["bafy-board", "bafy-notes"] and found["bafy-notes"].media_type == "text/plain"
    assert [tuple(band) for band in stored_bands] == [(band, band + 7, "bafy-board") for band in range(4)]
    asked = ["bafy-board", "bafy-notes", "bafy-nothing", "bafy-board"]
    assert image_photos(database, asked, media_types=IMAGES) == {"bafy-board"}
    assert image_photos(database, [], media_types=IMAGES) == set()
