"""Retry with backoff: the one schedule of pauses between attempts, for every retry loop.

Pure: it only counts; the caller waits (``stop.wait(delay)``, ``time.sleep(delay)``), so
that a loop can still be stopped in the middle of a pause and tests need no clock.

The first :meth:`Backoff.next` is ``first``; each following one is the previous times
``factor``, at most ``cap``; :meth:`Backoff.reset` (after a success) starts again from
``first``::

    backoff = Backoff(first=0.5, cap=60.0)
    [backoff.next() for _ in range(9)] == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0]

A server may say how long to wait (HTTP ``Retry-After``): ``next(stated)`` returns that,
kept within ``floor`` and ``cap``, and leaves the schedule where it was.
"""

from __future__ import annotations

__all__ = ["Backoff"]


class Backoff:
    """Pauses that grow by ``factor`` from ``first`` up to ``cap`` (see the module docstring)."""

    __slots__ = ("_delay", "cap", "factor", "first", "floor")

    def __init__(self, *, first: float, cap: float, factor: float = 2.0, floor: float = 0.0):
        if not (first >= 0 and cap >= 0 and factor >= 1 and floor >= 0):
            raise ValueError(f"a backoff needs first, cap, floor >= 0 and factor >= 1, got {first=}, {cap=}, {factor=}, {floor=}")
        self.first = first
        self.cap = cap
        self.factor = factor
        self.floor = floor
        self._delay = first

    def next(self, stated: float | None = None) -> float:
        """The pause before the next attempt, in seconds. ``stated`` is a pause the other side
        asked for (``Retry-After``): it is kept within ``floor`` and ``cap`` and used instead."""
        if stated is not None:
            return min(max(stated, self.floor), self.cap)
        delay = self._delay
        self._delay = min(self.cap, delay * self.factor)
        return delay

    def reset(self) -> None:
        """Start again from ``first`` (the attempt succeeded)."""
        self._delay = self.first
