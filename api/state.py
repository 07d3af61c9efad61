"""What the API process holds: the application facade (``ledger.app.LedgerApp``) and the pieces that are
HTTP's own: the rate limiter of requests, and the feed's wake-up signal and stream slots."""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from dataclasses import dataclass, field

from ledger.app import (
    ADMIN,
    ANONYMOUS,
    AUDITOR,
    CONSTITUENCY_HEAD,
    COORDINATOR,
    NEWSROOM,
    VOLUNTEER,
    WAR_ROOM,
    LedgerApp,
    open_app,
)
from ledger.intake.service import Ledger
from ledger.people.access import AccessService, RateLimiter
from ledger.results.aggregates import Aggregates
from ledger.review.service import ReviewService
from ledger.settings import Settings

__all__ = ["AppState", "FeedSignal", "StreamSlots"]


class StreamSlots:
    """Open SSE streams per caller and per client IP, so that one key (or one address)
    cannot hold every connection the server has; ``take`` refuses one past either cap."""

    def __init__(self) -> None:
        self._by_caller: Counter[str] = Counter()
        self._by_ip: Counter[str] = Counter()
        self._lock = threading.Lock()

    def take(self, caller: str, client_ip: str, *, per_caller: int, per_ip: int) -> str | None:
        """Hold a slot (``None``), or say which cap is reached and hold nothing."""
        with self._lock:
            if self._by_caller[caller] >= per_caller:
                return f"this key already holds {per_caller} open streams, the most it may"
            if self._by_ip[client_ip] >= per_ip:
                return f"this address already holds {per_ip} open streams, the most it may"
            self._by_caller[caller] += 1
            self._by_ip[client_ip] += 1
            return None

    def give_back(self, caller: str, client_ip: str) -> None:
        with self._lock:
            for counter, name in ((self._by_caller, caller), (self._by_ip, client_ip)):
                counter[name] -= 1
                if counter[name] <= 0:
                    del counter[name]


class FeedSignal:
    """Wakes SSE streams when entries arrive; ``notify`` may be called from any thread."""

    def __init__(self) -> None:
        self.generation = 0
        self.streams = 0  # open SSE streams
        self.slots = StreamSlots()
        self._waiters: set[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = set()
        self._lock = threading.Lock()

    def notify(self) -> None:
        with self._lock:
            self.generation += 1
            waiters = list(self._waiters)
        for loop, event in waiters:
            try:
                loop.call_soon_threadsafe(event.set)
            except RuntimeError:  # that loop has closed
                pass

    async def wait(self, seen_generation: int, timeout: float) -> bool:
        """Wait until something newer than ``seen_generation`` arrives (True) or ``timeout`` passes."""
        event = asyncio.Event()
        entry = (asyncio.get_running_loop(), event)
        with self._lock:
            if self.generation != seen_generation:
                return True
            self._waiters.add(entry)
        try:
            await asyncio.wait_for(event.wait(), timeout)
            return True
        except TimeoutError:
            return False
        finally:
            with self._lock:
                self._waiters.discard(entry)


@dataclass
class AppState:
    settings: Settings
    ledger_app: LedgerApp
    limiter: RateLimiter
    feed: FeedSignal = field(default_factory=FeedSignal)
    owns_ledger: bool = True

    @property
    def access(self) -> AccessService:
        return self.ledger_app.access

    @property
    def aggregates(self) -> Aggregates:
        return self.ledger_app.aggregates

    @property
    def ledger(self) -> Ledger:
        return self.ledger_app.ledger

    @property
    def review(self) -> ReviewService:
        return self.ledger_app.review

    @property
    def refresh_on_read(self) -> bool:
        """Without the background refresh loop, aggregate reads bring the views up to date first."""
        return not self.settings.api_refresh_aggregates

    @classmethod
    def open(cls, settings: Settings | None = None, *, ledger_app: LedgerApp | None = None) -> AppState:
        owns = ledger_app is None
        ledger_app = ledger_app or open_app(settings)
        settings = ledger_app.settings
        if owns:
            ledger_app.defer_screening = settings.api_defer_screening
        limiter = RateLimiter(
            {
                ANONYMOUS: settings.rate_limit_anonymous,
                VOLUNTEER: settings.rate_limit_volunteer,
                CONSTITUENCY_HEAD: settings.rate_limit_constituency_head,
                WAR_ROOM: settings.rate_limit_war_room,
                NEWSROOM: settings.rate_limit_newsroom,
                AUDITOR: settings.rate_limit_auditor,
                ADMIN: settings.rate_limit_admin,
                COORDINATOR: settings.rate_limit_coordinator,
            },
            burst_seconds=settings.rate_limit_burst_seconds,
            enabled=settings.rate_limit_enabled,
        )
        ledger_app.writer  # noqa: B018 - the writer's thread starts with the state, the prepare pool with the runtime
        return cls(settings=settings, ledger_app=ledger_app, limiter=limiter, owns_ledger=owns)

    def close(self) -> None:
        self.ledger_app.close_intake()
        if self.owns_ledger:
            self.ledger_app.close()
