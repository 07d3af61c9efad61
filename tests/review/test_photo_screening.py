"""Issue 11, hole 11, over the database: real photos (JPEGs with EXIF, uploaded through
``Ledger.store_photo``) screened by ``ReviewService``.

- a photo taken at 09:00, or one without EXIF, sends its unit to the head with a flag;
- a re-saved copy of another unit's photo (other bytes, so not ``photo_reused``) is found
  through the perceptual-hash bands and flagged ``photo_similar``;
- every query of that screening finds its rows through an index.
"""

from __future__ import annotations

from typing import Any

import pytest

from ledger.review.service import ReviewService
from tests.support.photo_reports import jpeg, report
from tests.support.photos import scene


def flags(review: ReviewService, unit: str) -> list[tuple[str, str]]:
    return [(flag["code"], flag["detail"]) for flag in review.unit_review(unit)["flags"]]


def test_time_and_place_are_screened(review: ReviewService) -> None:
    report(review, "org-a", "BKK_1-0001", jpeg(1), jpeg(2))
    report(review, "org-b", "BKK_1-0001", jpeg(3), jpeg(4))
    assert review.replay.unit("BKK_1-0001").status == "accepted"  # good photos: agreement is accepted as before

    report(review, "org-a", "BKK_1-0002", jpeg(5), jpeg(6))
    report(review, "org-b", "BKK_1-0002", jpeg(7, taken="2023:05:14 09:00:00"), jpeg(8))
    assert review.replay.unit("BKK_1-0002").status == "open"
    (found,) = flags(review, "BKK_1-0002")
    assert found[0] == "photo_outside_window"
    assert "taken at 2023-05-14 09:00 (EXIF DateTimeOriginal), outside the count window 2023-05-14 16:30" in found[1]

    report(review, "org-a", "BKK_1-0003", jpeg(9, taken=None, gps=False), jpeg(10))
    assert [code for code, _ in flags(review, "BKK_1-0003")] == ["photo_undated", "photo_unplaced"]
    queue = review.constituency_queue(["BKK_1"])
    assert {item["unit"] for item in queue if item["outcome"] == "needs_review"} == {"BKK_1-0002"}
    # Missing metadata is advisory: a second organisation that agrees gets the unit accepted,
    # with the flags kept for the head to see.
    report(review, "org-b", "BKK_1-0003", jpeg(11), jpeg(12))
    assert review.replay.unit("BKK_1-0003").status == "accepted"
    assert [code for code, _ in flags(review, "BKK_1-0003")] == ["photo_undated", "photo_unplaced"]


def test_a_resaved_copy_of_another_units_photo_is_found(review: ReviewService) -> None:
    original = scene(21)
    report(review, "org-a", "BKK_1-0001", jpeg(0, source=original), jpeg(22))
    copy = jpeg(0, source=original.resize((600, 450)), quality=50)  # resized and re-compressed: other bytes
    report(review, "org-c", "BKK_1-0004", copy, jpeg(23))
    (found,) = flags(review, "BKK_1-0004")
    assert found[0] == "photo_similar" and "submitted for BKK_1-0001" in found[1], found
    assert not any(code == "photo_reused" for code, _ in flags(review, "BKK_1-0004"))
    assert flags(review, "BKK_1-0001") == []  # the first unit is screened before the copy came


def test_the_screening_of_photos_never_scans_a_growing_table(review: ReviewService) -> None:
    if review.database.engine.dialect.name != "sqlite":
        pytest.skip("reads SQLite's query plans")
    from sqlalchemy import event

    for n, unit in enumerate(["BKK_1-0001", "BKK_1-0002", "BKK_1-0003"]):
        report(review, "org-a", unit, jpeg(30 + n), jpeg(40 + n))
    statements: list[tuple[str, Any]] = []

    def record(_conn, _cursor, statement, parameters, _context, executemany):  # type: ignore[no-untyped-def]
        if statement.lstrip().upper().startswith("SELECT") and not executemany:
            statements.append((statement, parameters))

    event.listen(review.database.engine, "before_cursor_execute", record)
    try:
        review.screen_units(["BKK_1-0001", "BKK_1-0002", "BKK_1-0003"])
    finally:
        event.remove(review.database.engine, "before_cursor_execute", record)
    assert any("photo_hash_bands" in statement for statement, _ in statements)
    growing = ("entries", "photos", "photo_uses", "photo_hash_bands", "unit_locations", "unit_reviews", "members")
    with review.database.engine.connect() as connection:
        for statement, parameters in statements:
            plan = connection.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters).all()
            scans = [row[3] for row in plan if row[3].startswith("SCAN") and row[3].split()[1] in growing]
            assert not scans, f"{statement}\n{scans}"


def test_flat_bands_are_not_looked_up() -> None:
    """The bands of flat regions are shared by countless photos: looking them up would read
    a growing share of the index for every photo screened."""
    from ledger.review.evidence import informative_band

    assert [informative_band(part) for part in (0x0000, 0xFFFF, 0x0003, 0xFFFC)] == [False] * 4
    assert all(informative_band(part) for part in (0x0007, 0x0F0F, 0xA5A5, 0x1FFF))
