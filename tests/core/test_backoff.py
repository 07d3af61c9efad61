"""The one retry schedule (ledger/core/backoff.py), and the schedules its four users had
before it: the anchor worker, the runtime's repeating loops and its anchor loop, and the
auditor's polite GET."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.core.backoff import Backoff


def take(backoff: Backoff, count: int) -> list[float]:
    return [backoff.next() for _ in range(count)]


def test_docstring_example() -> None:
    assert take(Backoff(first=0.5, cap=60.0), 9) == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0]


def test_reset_starts_again_from_first() -> None:
    backoff = Backoff(first=1.0, cap=60.0)
    assert take(backoff, 3) == [1.0, 2.0, 4.0]
    backoff.reset()
    assert take(backoff, 2) == [1.0, 2.0]


def test_factor_one_is_a_constant_pause() -> None:
    assert take(Backoff(first=1.0, cap=30.0, factor=1.0), 4) == [1.0, 1.0, 1.0, 1.0]


def test_the_first_pause_is_first_even_above_the_cap() -> None:
    assert take(Backoff(first=5.0, cap=2.0), 3) == [5.0, 2.0, 2.0]


def test_a_stated_pause_is_kept_within_floor_and_cap_and_does_not_advance() -> None:
    backoff = Backoff(first=1.0, cap=30.0, floor=0.05)
    assert backoff.next(0.0) == 0.05
    assert backoff.next(12.5) == 12.5
    assert backoff.next(3600.0) == 30.0
    assert backoff.next(math.inf) == 30.0
    assert backoff.next() == 1.0  # the schedule did not move


@pytest.mark.parametrize(
    "arguments",
    [
        {"first": -1.0, "cap": 1.0},
        {"first": 1.0, "cap": -1.0},
        {"first": 1.0, "cap": 1.0, "factor": 0.5},
        {"first": 1.0, "cap": 1.0, "floor": -1.0},
    ],
)
def test_refuses_a_schedule_that_makes_no_sense(arguments: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="a backoff needs"):
        Backoff(**arguments)


# --- the loops it replaced, written out as they were ------------------------------------


def anchor_worker_before(poll_interval: float, max_backoff: float, count: int) -> list[float]:
    """AnchorWorker.run: pause, then double up to max_backoff."""
    backoff, pauses = poll_interval, []
    for _ in range(count):
        pauses.append(backoff)
        backoff = min(max_backoff, backoff * 2)
    return pauses


def repeat_before(interval: float, count: int) -> list[float]:
    """Runtime._repeat: after a failure, double (at least 1 s, at most 60 s), then pause."""
    backoff, pauses = interval, []
    for _ in range(count):
        backoff = min(60.0, max(backoff * 2, 1.0))
        pauses.append(backoff)
    return pauses


def polite_get_before(header: str | None) -> float:
    try:
        delay = float(header if header is not None else "1")
    except ValueError:
        delay = 1.0
    return min(max(delay, 0.05), 30.0)


intervals = st.floats(min_value=0.0, max_value=500.0, allow_nan=False)


@given(intervals, st.floats(min_value=0.0, max_value=500.0, allow_nan=False), st.integers(1, 20))
def test_same_pauses_as_the_anchor_worker_had(poll_interval: float, max_backoff: float, count: int) -> None:
    assert take(Backoff(first=poll_interval, cap=max_backoff), count) == anchor_worker_before(poll_interval, max_backoff, count)


@given(intervals, st.integers(1, 20))
def test_same_pauses_as_the_runtime_loops_had(interval: float, count: int) -> None:
    backoff = Backoff(first=min(60.0, max(interval * 2, 1.0)), cap=60.0)
    assert take(backoff, count) == repeat_before(interval, count)
    assert take(Backoff(first=1.0, cap=60.0), count) == anchor_worker_before(1.0, 60.0, count)  # the anchor loop


@given(st.one_of(st.none(), st.floats(allow_nan=False).map(repr), st.text(max_size=8)))
def test_same_pauses_as_polite_get_had(header: str | None) -> None:
    try:
        stated: float | None = float(header if header is not None else "1")
    except ValueError:
        stated = None
    assert Backoff(first=1.0, cap=30.0, factor=1.0, floor=0.05).next(stated) == polite_get_before(header)
