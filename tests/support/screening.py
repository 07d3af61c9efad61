"""Test helpers and fixtures, moved out of the test module that first needed them."""

from __future__ import annotations

from typing import Any


def document(
    c1: int = 200, p1: int = 150, photos: tuple[str, str] = ("bafkphoto1", "bafkphoto2"), **extra: Any
) -> dict[str, Any]:
    return {
        "registered_voters": 549,
        "constituency": {"ballots_cast": c1 + 110, "votes": {"1": c1, "2": 100}, "invalid": 6, "no_vote": 4},
        "party_list": {"ballots_cast": p1 + 160, "votes": {"1": p1, "2": 150}, "invalid": 5, "no_vote": 5},
        "photos": {"tally_board": {"/": photos[0]}, "form_5_18": {"/": photos[1]}},
        **extra,
    }
