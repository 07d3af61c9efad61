"""Answers from worker threads to the event loops that wait for them, a batch at a time.

The writer thread (``ledger.intake.writer``) and the prepare pool's result threads
(``ledger.intake.prepare``) finish work for many waiting requests at once. ``settle`` hands
each event loop its whole share of a batch in one ``call_soon_threadsafe`` (one wake-up per
loop, not per answer); there every future is given its result or error, in order. A future
whose request went away (cancelled) is left alone: the work it asked for stands. A loop that
has closed gets nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

__all__ = ["Settlement", "settle"]

Settlement = tuple["asyncio.Future[Any]", Any, BaseException | None]
"""A future, its result, and the error to raise in its place (``None``: the result stands)."""


def _settle_here(settlements: list[Settlement]) -> None:
    for future, result, error in settlements:
        if future.cancelled():  # the client went away; the work stands
            continue
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)


def settle(settlements: Iterable[Settlement]) -> None:
    """Settle every future of ``settlements`` on its own event loop; callable from any thread."""
    by_loop: dict[asyncio.AbstractEventLoop, list[Settlement]] = {}
    for settlement in settlements:
        by_loop.setdefault(settlement[0].get_loop(), []).append(settlement)
    for loop, batch in by_loop.items():
        try:
            loop.call_soon_threadsafe(_settle_here, batch)
        except RuntimeError:  # that event loop has closed
            pass
