"""The national night's photos: valid JPEGs of the asked size, each with its own bytes."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bench.photos import PhotoMaker, check_photo, com_segment


def test_com_segment_length_counts_itself() -> None:
    assert com_segment(b"abc") == b"\xff\xfe\x00\x05abc"
    with pytest.raises(ValueError, match="65,533"):
        com_segment(bytes(65534))


@pytest.mark.parametrize("size", [2048, 20_000, 150_000])
def test_photos_are_valid_unique_and_of_the_size(size: int) -> None:
    maker = PhotoMaker(size, taken_at=datetime(2023, 5, 14, 11, 30, tzinfo=UTC), location=(13.7563, 100.5018))
    first = maker.photo("board", "BKK_1-0001/civic-watch/board")
    second = maker.photo("board", "BKK_1-0002/civic-watch/board")
    form = maker.photo("form", "BKK_1-0001/civic-watch/form")
    assert first != second and first != form
    if size > 4096:  # smaller ones are the smallest base photo, a little over the size
        assert len(first) == len(second) == len(form) == size
    exif = check_photo(first)
    assert exif["taken_at"].startswith("2023-05-14T18:30:00")
    assert exif["gps"] == {"lat": 13.7563, "lon": 100.5018}


def test_a_broken_photo_is_refused() -> None:
    with pytest.raises(OSError):  # PIL's UnidentifiedImageError
        check_photo(b"\xff\xd8not a jpeg")
