"""Rate limits: a token bucket per caller (per API key, per volunteer address, per client IP
for anonymous callers). Each role has a rate (requests per second); a bucket holds
``rate × burst_seconds`` requests. An empty bucket raises ``RateLimited`` with the seconds
until the next request would be admitted."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping

from ledger.people.callers import Caller
from ledger.people.errors import RateLimited

__all__ = ["RateLimiter"]


class RateLimiter:
    """Token buckets per caller key. ``rates`` maps a role to requests per second (≤ 0: unlimited)."""

    def __init__(
        self,
        rates: Mapping[str, float],
        *,
        burst_seconds: float = 5.0,
        enabled: bool = True,
        max_keys: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.rates = dict(rates)
        self.burst_seconds = burst_seconds
        self.enabled = enabled
        self.max_keys = max_keys
        self._clock = clock
        self._buckets: dict[str, list[float]] = {}
        self._lock = threading.Lock()

    def capacity(self, role: str) -> float:
        return max(1.0, self.rates.get(role, 0.0) * self.burst_seconds)

    def admit(self, caller: Caller) -> None:
        """Take one request from the caller's bucket, or raise ``RateLimited``."""
        rate = self.rates.get(caller.role, 0.0)
        if not self.enabled or rate <= 0:
            return
        capacity = self.capacity(caller.role)
        now = self._clock()
        with self._lock:
            bucket = self._buckets.get(caller.rate_key)
            if bucket is None:
                if len(self._buckets) >= self.max_keys:
                    self._prune(now)
                bucket = self._buckets[caller.rate_key] = [capacity, now]
            tokens = min(capacity, bucket[0] + (now - bucket[1]) * rate)
            bucket[1] = now
            if tokens >= 1.0:
                bucket[0] = tokens - 1.0
                return
            bucket[0] = tokens
        wait = (1.0 - tokens) / rate
        raise RateLimited(
            f"too many requests: {caller.role} callers may make {rate:g} requests per second "
            f"(bursts of {capacity:g}); retry in {wait:.2f} s",
            retry_after=wait,
        )

    def _prune(self, now: float) -> None:
        """Forget buckets that have refilled completely (they hold nothing worth keeping)."""
        longest = self.burst_seconds
        for key in [k for k, (_, last) in self._buckets.items() if now - last >= longest]:
            del self._buckets[key]
        if len(self._buckets) >= self.max_keys:
            self._buckets.clear()
