"""Benchmark the HTTP API on this machine, with the load generator in its own process.

    .venv/bin/python -m bench api [--tallies 10000] [--duration 5] [--readers 200]
                                  [--rate 2000] [--freshness 20] [--database-url URL] [--no-write]

What runs: ``tally serve``'s app under uvicorn (one API process with its prepare workers,
one per CPU beyond the first (``ledger.intake.prepare``); uvloop, httptools, no access
log; aggregates refresh and sealing loops on, anchoring off) over a fresh data directory,
and beside it a bare FastAPI app under the same uvicorn settings (``bench.servers``). The
load generator is ``bench.loops`` in a process of its own: asyncio (uvloop) over raw
HTTP/1.1 keep-alive connections on loopback. Tallies are signed before timing starts
(signing is the volunteer's phone's work, not the server's).

Figures (printed, and merged into bench/results.json, one key each; other keys are kept):

    api_bare_post_per_s                  bare FastAPI endpoint: POST of a tally-sized body, constant answer
    api_tally_ingest_per_s               POST /v1/tallies (auth, signature, validation, storage, receipt)
    api_tally_ingest_p50_ms / _p99_ms    latency of those requests
    api_tally_ingest_vs_bare             ingest rate ÷ bare rate
    api_tally_ingest_connections         concurrent client connections of the ingest run
    api_prepare_workers                  the API's prepare worker processes in those runs
    ledger_submit_per_s_in_process       Ledger.submit_tally called directly, one transaction per tally
    ledger_submit_per_s_in_process_grouped  the same in groups of 64 per transaction (the API's group commit)
    api_national_saturated_per_s         GET /v1/aggregates/unofficial/national, --readers connections, closed loop
    api_national_p99_ms_at_<rate>_per_s  p99 latency with --readers readers sending --rate requests/s in all
                                         (open loop; latency counted from the scheduled send time)
    api_national_p50_ms_at_<rate>_per_s
    api_bare_get_saturated_per_s         bare FastAPI GET, same readers, closed loop
    api_freshness_aggregates_s_p50/_max  accepted report → visible in the national aggregate
    api_freshness_feed_s_p50/_max        accepted report → its event on the SSE feed
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import ROOT
from bench.api_setup import in_process_rates, prepare, sign_tallies
from bench.client import free_port, http_request
from bench.loops import run_load
from bench.results import merge_results
from bench.servers import start, start_bare, stop, wait_until_up

__all__ = ["argument_parser", "main", "measure_freshness"]

PYTHON = sys.executable


def ingest(scratch: Path, port: int, sessions: dict[str, str], tallies: list[dict[str, Any]], connections: int) -> dict[str, Any]:
    """Every tally once, ``connections`` at a time: the load's result and ``created_per_s``."""
    requests = [http_request("POST", "/v1/tallies", token=sessions[t["submitter"]], body=json.dumps(t).encode()) for t in tallies]
    result = run_load(
        scratch, host="127.0.0.1", port=port, mode="closed", connections=connections, duration=300.0, requests=requests
    )
    result["created_per_s"] = result["statuses"].get("201", 0) / result["elapsed"]
    return result


async def measure_freshness(port: int, items: list[tuple[str, bytes]], newsroom: str, count: int) -> dict[str, list[float]]:
    """Seconds from an accepted report to the national aggregate counting it, and to its feed event."""
    import httpx

    arrivals: dict[str, float] = {}
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
        reader = {"Authorization": f"Bearer {newsroom}"}
        cursor = (await client.get("/v1/feed?limit=1000&after=0", headers=reader)).json()
        after = cursor["next_cursor"]
        while cursor["has_more"]:
            cursor = (await client.get(f"/v1/feed?limit=1000&after={after}", headers=reader)).json()
            after = cursor["next_cursor"]

        async def listen() -> None:
            async with client.stream("GET", f"/v1/feed/stream?after={after}", headers=reader) as stream:
                async for line in stream.aiter_lines():
                    if line.startswith("data: "):
                        arrivals[json.loads(line[6:])["record_cid"]] = time.perf_counter()

        async def units_reporting() -> int:
            return int((await client.get("/v1/aggregates/unofficial/national", headers=reader)).json()["units_reporting"])

        listener = asyncio.create_task(listen())
        await asyncio.sleep(0.5)
        aggregate_delays, feed_delays = [], []
        for token, body in items[:count]:
            before = await units_reporting()
            answer = await client.post(
                "/v1/tallies", content=body, headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
            )
            accepted = time.perf_counter()
            cid = answer.json()["record_cid"]
            while await units_reporting() <= before:
                await asyncio.sleep(0.005)
            aggregate_delays.append(time.perf_counter() - accepted)
            while cid not in arrivals:
                await asyncio.sleep(0.002)
            feed_delays.append(max(0.0, arrivals[cid] - accepted))
            await asyncio.sleep(0.1)
        listener.cancel()
    return {"aggregates": aggregate_delays, "feed": feed_delays}


class ApiRun:
    """One run of the API benchmark: its scratch directory, servers and figures."""

    def __init__(self, arguments: argparse.Namespace, scratch: Path, keys: list[bytes], tallies: list[dict[str, Any]]):
        self.arguments, self.scratch, self.keys, self.tallies = arguments, scratch, keys, tallies
        self.units = [t["polling_unit"] for t in tallies]
        self.figures: dict[str, float] = {}
        self.servers: list[subprocess.Popen[bytes]] = []

    def environment(self, name: str, **extra: str) -> tuple[Any, dict[str, str]]:
        """Settings and server environment of a fresh data directory ``name``."""
        from ledger.settings import Settings

        env = {
            **os.environ,
            "TALLY_DATA_DIR": str(self.scratch / name),
            "TALLY_API_ANCHOR_BATCHES": "false",
            "TALLY_RATE_LIMIT_VOLUNTEER": "10000",
            "TALLY_ANVIL_PORT": str(free_port()),
            **extra,
        }
        if self.arguments.database_url:
            env["TALLY_DATABASE_URL"] = self.arguments.database_url
        return Settings(data_dir=self.scratch / name, database_url=self.arguments.database_url), env

    def serve(self, name: str, env: dict[str, str]) -> tuple[int, subprocess.Popen[bytes]]:
        """``tally serve`` on a free port, once it answers."""
        port = free_port()
        server = start([PYTHON, "-m", "ledger.cli", "serve", "--port", str(port)], env, self.scratch / f"{name}.log")
        self.servers.append(server)
        wait_until_up(port, "/v1/health", server)
        return port, server

    def in_process(self, direct_tallies: list[dict[str, Any]]) -> None:
        direct_settings, _ = self.environment("direct")
        single, grouped = in_process_rates(direct_settings, direct_tallies, len(self.tallies))
        self.figures["ledger_submit_per_s_in_process"] = round(single, 1)
        self.figures["ledger_submit_per_s_in_process_grouped"] = round(grouped, 1)
        print(f"ledger in process     {single:8.0f} tallies/s one by one, {grouped:.0f} tallies/s in groups of 64")

    def bare_post(self, bare_port: int, quiet_tallies: list[dict[str, Any]]) -> None:
        bare_post = run_load(
            self.scratch,
            host="127.0.0.1",
            port=bare_port,
            mode="closed",
            connections=self.arguments.ingest_connections,
            duration=self.arguments.duration,
            requests=[http_request("POST", "/constant", token="x", body=json.dumps(t).encode()) for t in quiet_tallies],
        )
        self.figures["api_bare_post_per_s"] = round(bare_post["rate"], 1)
        print(f"bare POST             {bare_post['rate']:8.0f} req/s")

    def quiet_ingest(self, quiet_tallies: list[dict[str, Any]]) -> None:
        """The HTTP layer alone: the same server with its background loops off."""
        settings, env = self.environment("quiet", TALLY_API_REFRESH_AGGREGATES="false", TALLY_API_SEAL_BATCHES="false")
        sessions, _ = prepare(settings, self.keys, self.units, 0, len(self.tallies))
        port, server = self.serve("quiet", env)
        result = ingest(self.scratch, port, sessions, quiet_tallies, self.arguments.ingest_connections)
        stop(server)
        self.figures["api_tally_ingest_per_s_without_background_loops"] = round(result["created_per_s"], 1)
        print(f"tally ingest, no loops{result['created_per_s']:8.0f} tallies/s  statuses {result['statuses']}")

    def busy_ingest(self, busy_tallies: list[dict[str, Any]]) -> tuple[int, dict[str, str], list[str]]:
        """Ingest with the aggregates and sealing loops on; then wait until the aggregates count it.
        Returns the API's port, the sessions and the readers' keys."""
        import httpx

        settings, env = self.environment("data")
        sessions, readers = prepare(settings, self.keys, self.units, self.arguments.readers, len(self.tallies))
        port, _ = self.serve("api", env)
        result = ingest(self.scratch, port, sessions, busy_tallies, self.arguments.ingest_connections)
        print(
            f"tally ingest          {result['created_per_s']:8.0f} tallies/s  p50 {result['p50_ms']:.1f} ms  "
            f"p99 {result['p99_ms']:.1f} ms  statuses {result['statuses']}  (aggregates and sealing loops on)"
        )
        figures = self.figures
        figures["api_tally_ingest_per_s"] = round(result["created_per_s"], 1)
        figures["api_tally_ingest_p50_ms"] = round(result["p50_ms"], 2)
        figures["api_tally_ingest_p99_ms"] = round(result["p99_ms"], 2)
        figures["api_tally_ingest_vs_bare"] = round(figures["api_tally_ingest_per_s"] / figures["api_bare_post_per_s"], 3)
        figures["api_tally_ingest_connections"] = self.arguments.ingest_connections
        figures["api_prepare_workers"] = httpx.get(f"http://127.0.0.1:{port}/v1/health").json()["prepare_workers"]
        counted = 0
        while counted < result["statuses"].get("201", 0):  # let the refresh loop count the ingested tallies
            time.sleep(0.2)
            counted = httpx.get(f"http://127.0.0.1:{port}/v1/health").json()["entries_counted"]
        return port, sessions, readers

    def read_load(self, api_port: int, bare_port: int, readers: list[str]) -> None:
        """The national aggregate under ``--readers``: saturated, against the bare GET, and at ``--rate``."""
        arguments, scratch = self.arguments, self.scratch
        national = [http_request("GET", "/v1/aggregates/unofficial/national", token=token) for token in readers]
        closed = {"host": "127.0.0.1", "mode": "closed", "connections": arguments.readers, "duration": arguments.duration}
        saturated = run_load(scratch, port=api_port, requests=national, cycle=True, **closed)
        bare_get = run_load(scratch, port=bare_port, requests=[http_request("GET", "/constant")], cycle=True, **closed)
        at_rate = run_load(
            scratch,
            host="127.0.0.1",
            port=api_port,
            mode="open",
            connections=arguments.readers,
            rate=arguments.rate,
            duration=arguments.duration,
            requests=national,
        )
        print(
            f"national, saturated   {saturated['rate']:8.0f} req/s  p50 {saturated['p50_ms']:.1f} ms  p99 "
            f"{saturated['p99_ms']:.1f} ms  ({arguments.readers} connections) statuses {saturated['statuses']}"
        )
        print(f"bare GET, saturated   {bare_get['rate']:8.0f} req/s  p99 {bare_get['p99_ms']:.1f} ms")
        print(
            f"national at {arguments.rate}/s   {at_rate['rate']:8.0f} req/s  p50 {at_rate['p50_ms']:.2f} ms  p99 "
            f"{at_rate['p99_ms']:.2f} ms  max {at_rate['max_ms']:.1f} ms  statuses {at_rate['statuses']}"
        )
        self.figures["api_national_saturated_per_s"] = round(saturated["rate"], 1)
        self.figures["api_national_saturated_p99_ms"] = round(saturated["p99_ms"], 2)
        self.figures["api_bare_get_saturated_per_s"] = round(bare_get["rate"], 1)
        self.figures[f"api_national_p99_ms_at_{arguments.rate}_per_s"] = round(at_rate["p99_ms"], 2)
        self.figures[f"api_national_p50_ms_at_{arguments.rate}_per_s"] = round(at_rate["p50_ms"], 2)
        self.figures[f"api_national_achieved_per_s_at_{arguments.rate}_per_s"] = round(at_rate["rate"], 1)

    def freshness(self, api_port: int, sessions: dict[str, str], newsroom: str, fresh_tallies: list[dict[str, Any]]) -> None:
        fresh = [(sessions[t["submitter"]], json.dumps(t).encode()) for t in fresh_tallies]
        delays = asyncio.run(measure_freshness(api_port, fresh, newsroom, self.arguments.freshness))
        for name, values in delays.items():
            self.figures[f"api_freshness_{name}_s_p50"] = round(statistics.median(values), 3)
            self.figures[f"api_freshness_{name}_s_max"] = round(max(values), 3)
            print(f"freshness, {name:<10} p50 {statistics.median(values):.3f} s  max {max(values):.3f} s")


def run(arguments: argparse.Namespace) -> dict[str, float]:
    """Every measurement, in order; the figures."""
    count = arguments.tallies
    keys, tallies = sign_tallies(count * 2 + arguments.freshness + 1000, arguments.volunteers)
    quiet_tallies, busy_tallies = tallies[:count], tallies[count : 2 * count]
    fresh_tallies = tallies[2 * count : 2 * count + arguments.freshness]
    direct_tallies = tallies[2 * count + arguments.freshness :]
    with tempfile.TemporaryDirectory(prefix="tally-bench-api-") as scratch_name:
        bench = ApiRun(arguments, Path(scratch_name), keys, tallies)
        if not arguments.database_url:  # (on a shared PostgreSQL database the directories would collide)
            bench.in_process(direct_tallies)
        bare_port = free_port()
        bare = start_bare(bench.scratch, bare_port, os.environ.copy())
        bench.servers.append(bare)
        try:
            wait_until_up(bare_port, "/constant", bare)
            bench.bare_post(bare_port, quiet_tallies)
            if not arguments.database_url:
                bench.quiet_ingest(quiet_tallies)
            api_port, sessions, readers = bench.busy_ingest(busy_tallies)
            bench.read_load(api_port, bare_port, readers)
            bench.freshness(api_port, sessions, readers[0], fresh_tallies)
        finally:
            for server in bench.servers:
                stop(server)
    return bench.figures


def argument_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench api", description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--tallies", type=int, default=10000, help="tallies to send in the ingest run")
    parser.add_argument("--volunteers", type=int, default=100)
    parser.add_argument("--ingest-connections", type=int, default=32)
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per read measurement")
    parser.add_argument("--readers", type=int, default=200, help="concurrent readers of the national aggregate")
    parser.add_argument("--rate", type=int, default=2000, help="requests per second, in all, of the open-loop readers")
    parser.add_argument("--freshness", type=int, default=20, help="reports timed from acceptance to aggregates and feed")
    parser.add_argument("--database-url", help="default: SQLite in the scratch data directory")
    parser.add_argument("--no-write", action="store_true", help="print only; leave bench/results.json alone")
    return parser


def main(argv: list[str] | None = None) -> int:
    arguments = argument_parser().parse_args(argv)
    figures = run(arguments)
    figures["api_bench_cpus"] = os.cpu_count() or 0
    print(json.dumps(figures, indent=2))
    if not arguments.no_write:
        results = merge_results(figures)
        print(f"merged {len(figures)} figures into {results.relative_to(ROOT)}")
    return 0
