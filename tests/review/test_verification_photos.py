"""Issue 11, hole 11 (pure): a photo's time, place and look are screened.

Before, a photo taken at 09:00, or one with no time or place, passed silently, and a
re-saved copy of another unit's photo was not seen. ``assess_unit`` now takes each photo's
evidence (``PhotoEvidence``), the count window and the photos that look alike
(``Lookalike``), and flags ``photo_outside_window``, ``photo_undated``,
``photo_unplaced`` and ``photo_similar``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from ledger.review.screening import Lookalike, PhotoEvidence, Report, assess_unit
from tests.support.screening import document

ICT = timezone(timedelta(hours=7))
CLOSE = datetime(2023, 5, 14, 17, 0, tzinfo=ICT)
WINDOW = (CLOSE - timedelta(minutes=30), CLOSE + timedelta(hours=7))
BANGKOK = (13.7565, 100.5018)


def at(hour: int, minute: int = 0, day: int = 14) -> datetime:
    return datetime(2023, 5, day, hour, minute, tzinfo=ICT)


def reports() -> list[Report]:
    return [
        Report("bafyrecord1", 1, "0xsigner1", "org-a", document(photos=("p1a", "p1b"))),
        Report("bafyrecord2", 2, "0xsigner2", "org-b", document(photos=("p2a", "p2b"))),
    ]


def good() -> dict[str, PhotoEvidence]:
    return {photo: PhotoEvidence(at(17, 40), BANGKOK) for photo in ("p1a", "p1b", "p2a", "p2b")}


def assess(evidence: dict[str, PhotoEvidence] | None, **context: Any) -> Any:
    return assess_unit("U-0001", reports(), photo_evidence=evidence, count_window=WINDOW, **context)


def codes(assessment: Any) -> list[tuple[str, str | None]]:
    return [(flag.code, flag.record_cid) for flag in assessment.flags]


def test_photos_taken_in_the_window_with_a_place_pass() -> None:
    assessment = assess(good())
    assert assessment.outcome == "agreed" and assessment.flags == ()


@pytest.mark.parametrize(
    ("moment", "shown"),
    [
        (at(9, 0), "2023-05-14 09:00"),  # the morning of polling day: not a photo of the count
        (at(16, 29), "2023-05-14 16:29"),
        (at(0, 1, day=15), "2023-05-15 00:01"),
        (datetime(2023, 5, 13, 10, 0, tzinfo=UTC), "2023-05-13 17:00"),  # shown in local time
        (datetime(2019, 3, 24, 18, 0, tzinfo=ICT), "2019-03-24 18:00"),  # an old photo (the 2019 election)
    ],
)
def test_a_photo_taken_outside_the_count_window_is_flagged(moment: datetime, shown: str) -> None:
    evidence = {**good(), "p2a": PhotoEvidence(moment, BANGKOK)}
    assessment = assess(evidence)
    assert assessment.outcome == "needs_review"
    assert codes(assessment) == [("photo_outside_window", "bafyrecord2")]
    detail = assessment.flags[0].detail
    assert f"photo tally_board was taken at {shown} (EXIF DateTimeOriginal)" in detail
    assert "outside the count window 2023-05-14 16:30 to 2023-05-15 00:00 +0700" in detail


@pytest.mark.parametrize("moment", [at(16, 30), at(17, 0), at(23, 59), at(0, 0, day=15)])
def test_the_window_is_inclusive(moment: datetime) -> None:
    assert assess({**good(), "p1b": PhotoEvidence(moment, BANGKOK)}).flags == ()


def test_a_photo_without_time_or_place_is_flagged() -> None:
    evidence = {**good(), "p1a": PhotoEvidence(None, BANGKOK), "p1b": PhotoEvidence(at(18), None)}
    assessment = assess(evidence)
    # Advisory: missing metadata alone (a messaging app strips EXIF) does not hold an agreed unit.
    assert assessment.outcome == "agreed" and assessment.accepted_cid is not None
    assert codes(assessment) == [("photo_unplaced", "bafyrecord1"), ("photo_undated", "bafyrecord1")]  # roles in order
    assert "photo form_5_18 says nothing of where" in assessment.flags[0].detail
    assert "photo tally_board says nothing of when" in assessment.flags[1].detail


def test_missing_metadata_goes_with_a_blocking_flag_to_review() -> None:
    evidence = {**good(), "p1a": PhotoEvidence(None, BANGKOK), "p2b": PhotoEvidence(at(9), BANGKOK)}
    assessment = assess(evidence)
    assert assessment.outcome == "needs_review"
    assert {code for code, _ in codes(assessment)} == {"photo_undated", "photo_outside_window"}


def test_a_photo_nothing_is_known_of_has_neither() -> None:
    evidence = good()
    del evidence["p2b"]
    assert codes(assess(evidence)) == [("photo_undated", "bafyrecord2"), ("photo_unplaced", "bafyrecord2")]


def test_without_evidence_given_nothing_is_flagged_for_it() -> None:
    """Callers that know nothing of photos (old tests, tools) keep the old screening."""
    assert assess(None).flags == ()


def test_a_photo_like_one_of_another_unit_is_flagged() -> None:
    lookalikes = {"p2a": [Lookalike("p9z", frozenset({"U-0002"}), 4), Lookalike("p8z", frozenset({"U-0003"}), 2)]}
    assessment = assess(good(), photo_lookalikes=lookalikes)
    assert assessment.outcome == "needs_review"
    assert codes(assessment) == [("photo_similar", "bafyrecord2")]
    assert "photo tally_board (p2a) looks like photo p8z submitted for U-0003 (2 of 64 bits differ" in assessment.flags[0].detail


def test_photos_alike_within_the_unit_are_not_flagged() -> None:
    """Two organisations photograph the same board: their photos look alike, rightly."""
    lookalikes = {"p1a": [Lookalike("p2a", frozenset({"U-0001"}), 3)], "p2a": [Lookalike("p1a", frozenset({"U-0001"}), 3)]}
    assert assess(good(), photo_lookalikes=lookalikes).flags == ()
