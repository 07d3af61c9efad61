"""The national night's stages as the driver records them, its progress lines, and the
war room's certify stage (the queue read by the driver, the decisions sent by the clients)."""

from __future__ import annotations

import os
import time
from array import array
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from bench.metrics import percentile

if TYPE_CHECKING:
    from bench.driver import Driver

__all__ = ["Progress", "Stage", "certify", "merge_rounds"]


@dataclass
class Stage:
    """One stage's wall time, count and CPU; ``extra`` holds the merged client results."""

    name: str
    seconds: float
    count: int = 0
    unit: str = ""
    server_cpu: float = 0.0
    client_cpu: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)
    complete: bool = True
    server_rss_mib: float = 0.0

    @property
    def rate(self) -> float:
        return self.count / self.seconds if self.seconds > 0 else 0.0


def merge_rounds(rounds: list[list[dict[str, Any]]]) -> dict[str, Any]:
    """The clients' results of one or more rounds, merged: statuses, sorted latencies (s),
    counters, errors, client CPU seconds and the war room's token (if one was sent)."""
    statuses: dict[int, int] = {}
    latencies: list[float] = []
    counters: dict[str, float] = {}
    errors: list[str] = []
    client_cpu = 0.0
    war_room_token = None
    for result in (result for results in rounds for result in results):
        for status, number in result["statuses"].items():
            statuses[int(status)] = statuses.get(int(status), 0) + number
        values = array("d")
        values.frombytes(result["latencies"])
        latencies += values.tolist()
        for name, value in result["counters"].items():
            counters[name] = counters.get(name, 0) + value
        errors += result["errors"]
        client_cpu += result["cpu_seconds"]
        if result.get("war_room_token"):
            war_room_token = result["war_room_token"]
    latencies.sort()
    return {
        "statuses": statuses,
        "latencies": latencies,
        "counters": counters,
        "errors": errors,
        "client_cpu": client_cpu,
        "war_room_token": war_room_token,
    }


def latency_extra(merged: dict[str, Any]) -> dict[str, Any]:
    """A stage's ``extra`` from merged results."""
    latencies = merged["latencies"]
    return {
        "statuses": merged["statuses"],
        "p50_ms": 1000 * percentile(latencies, 0.5),
        "p99_ms": 1000 * percentile(latencies, 0.99),
        "max_ms": 1000 * (latencies[-1] if latencies else 0.0),
        "counters": merged["counters"],
        "errors": merged["errors"],
        "requests": len(latencies),
    }


class Progress:
    """Logs, about every minute of a long stage, what the ledger holds and the rate since the last line."""

    def __init__(self, night: Driver, stage: str, every: float = 60.0):
        self.night, self.stage, self.every = night, stage, every
        self.last_time = time.monotonic()
        self.last = night.observer.counts()

    def maybe_log(self) -> None:
        now = time.monotonic()
        if now - self.last_time < self.every:
            return
        counts = self.night.observer.counts()
        seconds = now - self.last_time
        self.night.say(
            f"  {self.stage} in progress: {counts[0]:,} photos ({(counts[0] - self.last[0]) / seconds:,.0f}/s), "
            f"{counts[1]:,} entries ({(counts[1] - self.last[1]) / seconds:,.0f}/s); server RSS "
            f"{self.night.server_rss_mib():.0f} MiB, load average {os.getloadavg()[0]:.2f}"
        )
        self.last, self.last_time = counts, now


def _queue_decisions(night: Driver, queue: dict[str, Any], ours: set[str]) -> list[dict[str, Any]]:
    decisions = [
        {
            "decision_id": f"cert{night.seed}-{item['unit']}",
            "action": "certify",
            "subject": item["unit"],
            "record": item["accepted_cid"],
        }
        for item in queue["units_to_certify"]
        if item["constituency_id"] in ours and item["accepted_cid"]
    ]
    decisions += [
        {"decision_id": f"certc{night.seed}-{c}", "action": "certify_constituency", "subject": c}
        for c in queue["constituencies_ready"]
        if c in ours
    ]
    return decisions


def _work_queue(night: Driver, ours: set[str], rounds: list[list[dict[str, Any]]]) -> tuple[bool, int, float]:
    """The war room's queue, a page of 1,000 at a time, until it is empty: (complete, pages, seconds reading it)."""
    import httpx

    headers = {"Authorization": f"Bearer {night.war_room_token}"}
    complete, pages, queue_seconds = True, 0, 0.0
    while not night.over_deadline():
        asked = time.perf_counter()
        answer = httpx.get(f"{night.base}/v1/review/queue", params={"limit": 1000}, headers=headers, timeout=120)
        queue_seconds += time.perf_counter() - asked
        pages += 1
        if answer.status_code != 200:
            raise SystemExit(f"the war room's queue answered {answer.status_code}: {answer.text[:500]}")
        decisions = _queue_decisions(night, answer.json(), ours)
        if not decisions:
            break
        count = len(night.clients)
        results, _, finished = night.run_clients(
            "decide", war_room_token=night.war_room_token, shares=[decisions[i::count] for i in range(count)]
        )
        rounds.append(results)
        complete = complete and finished
    return complete, pages, queue_seconds


def _incomplete_constituencies(night: Driver, ours: set[str]) -> list[str]:
    import httpx

    certified = httpx.get(f"{night.base}/v1/aggregates/certified/constituencies", timeout=120).json()
    items = certified.get("constituencies", certified) if isinstance(certified, dict) else certified
    return [c["constituency_id"] for c in items if c["constituency_id"] in ours and c["units_reporting"] < c["units_total"]]


def certify(night: Driver, review_path: str) -> Stage:
    """The war room works its queue (``GET /v1/review/queue``): every unit the server
    accepted, then every constituency that is complete, a page at a time, the decisions
    signed and sent by the clients. Units the server did not accept (flagged) are then
    taken one by one from their review: the war room accepts the first report and certifies."""
    server_before = night.server_cpu()
    started = time.perf_counter()
    ours = {c.id for c in night.constituencies}
    rounds: list[list[dict[str, Any]]] = []
    complete, pages, queue_seconds = _work_queue(night, ours, rounds)
    # Units the server did not accept automatically: their constituencies, unit by unit.
    incomplete = _incomplete_constituencies(night, ours)
    if incomplete and not night.over_deadline():
        night.say(
            f"certify: {len(incomplete)} constituencies have units the server did not accept; the war room takes "
            "them unit by unit"
        )
        results, _, finished = night.run_clients(
            "certify", war_room_token=night.war_room_token, review_path=review_path, only=incomplete
        )
        rounds.append(results)
        complete = complete and finished
    complete = complete and not night.over_deadline()
    record = night.record_stage(
        "certify",
        rounds,
        time.perf_counter() - started,
        complete,
        server_before,
        counted=lambda _, c: int(c.get("certify_ok", 0) + c.get("units_certified", 0)),
        unit="units certified",
    )
    counters = record.extra["counters"]
    record.extra["queue_pages"] = pages
    record.extra["queue_seconds"] = queue_seconds
    constituencies = int(counters.get("certify_constituency_ok", 0) + counters.get("constituencies_certified", 0))
    record.extra["constituencies"] = constituencies
    night.say(
        f"certify: {record.count:,} units and {constituencies} constituencies certified; {pages} pages of the "
        f"war-room queue read in {queue_seconds:.1f} s; {int(counters.get('accepted_by_war_room', 0))} units "
        "accepted by the war room first"
    )
    return record
