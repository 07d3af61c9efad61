"""What the API process holds: the ledger, the aggregates, access control, rendered answers."""

from __future__ import annotations

import asyncio
import hashlib
import os
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from ledger.app import LedgerApp, open_app
from ledger.intake.prepare import PreparePool, default_workers
from ledger.intake.writer import Writer
from ledger.people.access import AccessService, RateLimiter, SessionSigner, load_or_create_session_secret
from ledger.results.aggregates import Aggregates, AggregateView
from ledger.settings import Settings

__all__ = ["AppState", "FeedSignal", "RenderCache", "Rendered", "StreamSlots", "strong_etag"]


def strong_etag(body: bytes) -> str:
    """A content-derived ETag: equal bodies, equal tags, whatever process served them."""
    return '"' + hashlib.blake2b(body, digest_size=12).hexdigest() + '"'


class Rendered:
    """A stored answer: its bytes, ETag and headers (also as raw ASGI header lists)."""

    __slots__ = ("body", "etag", "headers", "media_type", "not_modified_headers", "raw_headers")

    def __init__(self, body: bytes, etag: str, media_type: str, headers: dict[str, str]):
        self.body = body
        self.etag = etag
        self.media_type = media_type
        self.headers = headers
        self.raw_headers = [(b"content-type", media_type.encode()), (b"content-length", str(len(body)).encode())] + [
            (name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers.items()
        ]
        self.not_modified_headers = [(b"etag", etag.encode("latin-1")), (b"cache-control", b"public, max-age=1")]


class RenderCache:
    """Rendered aggregate answers per (view, resource, format), reused until the view's version moves.

    The version is read before rendering, so an answer rendered while the view changed is
    re-rendered on the next request; the ETag is the body's hash, so it always matches the body.
    """

    def __init__(self) -> None:
        self._items: dict[tuple[str, str, str], tuple[int, Rendered]] = {}
        self._lock = threading.Lock()

    def get(self, view: AggregateView, resource: str, fmt: str, render: Callable[[], Rendered]) -> Rendered:
        key = (view.name, resource, fmt)
        version = view.version
        hit = self._items.get(key)
        if hit is not None and hit[0] == version:
            return hit[1]
        rendered = render()
        with self._lock:
            if len(self._items) > 4096:
                self._items.clear()
            self._items[key] = (version, rendered)
        return rendered


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
    aggregates: Aggregates
    access: AccessService
    limiter: RateLimiter
    feed: FeedSignal = field(default_factory=FeedSignal)
    renders: RenderCache = field(default_factory=RenderCache)
    owns_ledger: bool = True
    writer: Writer = field(init=False)
    """Where submissions run: one thread, committing reports in groups (``ledger.intake.writer``)."""
    preparer: PreparePool | None = field(init=False)
    """Worker processes that prepare tallies before the writer commits them (``ledger.intake.prepare``);
    ``None`` when they are prepared in this process (``TALLY_API_PREPARE_WORKERS=0``, or one CPU)."""

    def __post_init__(self) -> None:
        review = self.ledger_app.review
        self.writer = Writer(review.submit_reports, self.ledger_app.ledger.record_photos, review.decide_many)
        workers = self.settings.api_prepare_workers
        if workers is None:
            workers = default_workers(os.cpu_count())
        receipt_key = self.ledger_app.ledger.preparer.receipt_key
        self.preparer = PreparePool(self.settings, workers, receipt_key=receipt_key) if workers else None

    @property
    def ledger(self):  # type: ignore[no-untyped-def]
        return self.ledger_app.ledger

    @property
    def review(self):  # type: ignore[no-untyped-def]
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
        sessions = SessionSigner(
            load_or_create_session_secret(settings.keys_dir / "session.secret"),
            lifetime_seconds=settings.session_lifetime_seconds,
        )
        access = AccessService(
            database=ledger_app.database,
            election=ledger_app.election,
            sessions=sessions,
            challenge_lifetime_seconds=settings.challenge_lifetime_seconds,
            cache_seconds=settings.access_cache_seconds,
            member_role=ledger_app.review.role_of,
        )
        limiter = RateLimiter(
            {
                "anonymous": settings.rate_limit_anonymous,
                "volunteer": settings.rate_limit_volunteer,
                "constituency_head": settings.rate_limit_constituency_head,
                "war_room": settings.rate_limit_war_room,
                "newsroom": settings.rate_limit_newsroom,
                "auditor": settings.rate_limit_auditor,
                "admin": settings.rate_limit_admin,
                "coordinator": settings.rate_limit_coordinator,
            },
            burst_seconds=settings.rate_limit_burst_seconds,
            enabled=settings.rate_limit_enabled,
        )
        # The app's own aggregates: the review service feeds its certified view.
        aggregates = ledger_app.aggregates
        return cls(
            settings=settings, ledger_app=ledger_app, aggregates=aggregates, access=access, limiter=limiter, owns_ledger=owns
        )

    def close(self) -> None:
        if self.preparer is not None:
            self.preparer.close()
        self.writer.shutdown()
        if self.owns_ledger:
            self.ledger_app.close()
