"""The national night's stages as the driver records them, and the clients' results merged into one."""

from __future__ import annotations

from array import array
from dataclasses import dataclass, field
from typing import Any

from bench.metrics import percentile

__all__ = ["Stage", "latency_extra", "merge_rounds"]


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
