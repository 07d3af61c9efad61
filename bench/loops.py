"""The load of ``bench.api``: closed and open loops over keep-alive connections
(``bench.client``), run in a process of their own so the load generator does not share
the driver's interpreter.

    .venv/bin/python -m bench.loops JOB_FILE     (what ``run_load`` starts)

A job is a JSON file: host, port, mode (closed or open), connections, duration, the
requests (base64), and ``cycle`` (closed) or ``rate`` (open). The result goes to
``JOB_FILE.out``, not stdout: uvloop may leave the inherited stdout pipe non-blocking, and
a large result then arrives torn.
"""

from __future__ import annotations

import asyncio
import base64
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench import ROOT
from bench.client import Connection
from bench.metrics import latency_summary

__all__ = ["closed_loop", "open_loop", "run_load"]


async def closed_loop(
    host: str, port: int, requests: list[bytes], connections: int, duration: float, cycle: bool
) -> dict[str, Any]:
    """Each connection sends its next request as soon as the previous answer is in
    (``cycle``: go round ``requests`` until the time is up; else send each once)."""
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    position = 0
    deadline = time.perf_counter() + duration

    async def worker() -> None:
        nonlocal position
        connection = Connection(host, port)
        await connection.open()
        try:
            while time.perf_counter() < deadline:
                if position >= len(requests) and not cycle:
                    return
                request = requests[position % len(requests)]
                position += 1
                started = time.perf_counter()
                status, _ = await connection.exchange(request)
                latencies.append(time.perf_counter() - started)
                statuses[status] = statuses.get(status, 0) + 1
        finally:
            connection.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(connections)))
    elapsed = time.perf_counter() - started
    return {"count": len(latencies), "elapsed": elapsed, "latencies": latencies, "statuses": statuses}


async def open_loop(
    host: str, port: int, requests: list[bytes], connections: int, rate: float, duration: float
) -> dict[str, Any]:
    """``connections`` readers together send ``rate`` requests per second on a fixed schedule;
    latency runs from the scheduled send time, so a slow answer cannot hide the queue behind it."""
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    interval = connections / rate
    streams = [Connection(host, port) for _ in range(connections)]
    for connection in streams:  # connect first, then start the clock
        await connection.open()
    start = time.perf_counter() + 0.2

    async def worker(index: int) -> None:
        request = requests[index % len(requests)]
        connection = streams[index]
        try:
            scheduled = start + interval * index / connections
            while scheduled < start + duration:
                delay = scheduled - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                status, _ = await connection.exchange(request)
                latencies.append(time.perf_counter() - scheduled)
                statuses[status] = statuses.get(status, 0) + 1
                scheduled += interval
        finally:
            connection.close()

    await asyncio.gather(*(worker(i) for i in range(connections)))
    return {"count": len(latencies), "elapsed": duration, "latencies": latencies, "statuses": statuses}


def _load_generator(job_file: str) -> None:
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # pragma: no cover
        pass
    job = json.loads(Path(job_file).read_text())
    requests = [base64.b64decode(r) for r in job["requests"]]
    host, port, connections, duration = job["host"], job["port"], job["connections"], job["duration"]
    if job["mode"] == "closed":
        result = asyncio.run(closed_loop(host, port, requests, connections, duration, job.get("cycle", False)))
    else:
        result = asyncio.run(open_loop(host, port, requests, connections, job["rate"], duration))
    Path(job_file + ".out").write_text(json.dumps(result))


def run_load(scratch: Path, **job: Any) -> dict[str, Any]:
    """Run one job in a load-generator process: count, elapsed, rate, statuses, p50/p99/max ms."""
    job["requests"] = [base64.b64encode(r).decode() for r in job["requests"]]
    job_file = scratch / f"job-{time.monotonic_ns()}.json"
    job_file.write_text(json.dumps(job))
    subprocess.run([sys.executable, "-m", "bench.loops", str(job_file)], check=True, cwd=ROOT)
    result: dict[str, Any] = json.loads(Path(str(job_file) + ".out").read_text())
    latencies = result.pop("latencies")
    result["rate"] = result["count"] / result["elapsed"] if result["elapsed"] else 0.0
    result.update(latency_summary(latencies))
    return result


if __name__ == "__main__":
    _load_generator(sys.argv[1])
