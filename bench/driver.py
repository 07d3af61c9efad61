"""The national night's driver: the data directory, people, ``tally serve`` and the
load-generator processes, and the recording of every stage (what ran, how long, how many,
at what CPU and memory). The order of the stages is ``bench.national``'s."""

from __future__ import annotations

import argparse
import multiprocessing
import multiprocessing.connection
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import ROOT
from bench.client import free_port
from bench.load import client_process
from bench.metrics import MIB, proc_cpu_seconds, proc_status, worker_pids
from bench.observe import Observer
from bench.people import ORGANISATIONS, setup_people
from bench.photos import PHOTO_ROLES
from bench.stages import Stage, latency_extra, merge_rounds

__all__ = ["PYTHON", "Driver"]

PYTHON = sys.executable


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


class Driver:
    """The national night's driver: its data directory, people, server and load-generator
    processes, and the stages it records (``bench.national.Night`` runs them in order)."""

    def __init__(self, arguments: argparse.Namespace):
        from ledger.cli.demo import choose_constituencies
        from ledger.election import load_election

        self.arguments = arguments
        self.seed = arguments.seed
        self.election = load_election("th2566")
        self.constituencies = choose_constituencies(self.election, arguments.units or self.election.unit_count)
        self.unit_count = sum(c.unit_count for c in self.constituencies)
        self.reports = self.unit_count * len(ORGANISATIONS)
        self.photo_count = self.reports * len(PHOTO_ROLES)
        self.full_scale = self.unit_count == self.election.unit_count
        self.started = time.monotonic()
        self.deadline = self.started + 60 * arguments.deadline_minutes if arguments.deadline_minutes else None
        self.stages: list[Stage] = []
        self.figures: dict[str, Any] = {}
        self.notes: list[str] = []
        self.server: subprocess.Popen[bytes] | None = None
        self.clients: list[tuple[Any, Any]] = []
        self.stop = multiprocessing.get_context("spawn").Event()
        self.temporary = arguments.data_dir is None
        if arguments.data_dir is None:
            self.scratch = Path(tempfile.mkdtemp(prefix="tally-bench-national-"))
            self.data_dir = self.scratch / "data"
        else:
            self.data_dir = Path(arguments.data_dir).resolve()
            if self.data_dir.exists() and any(self.data_dir.iterdir()):
                raise SystemExit(f"--data-dir {self.data_dir} is not empty; the benchmark needs a fresh data directory")
            self.scratch = self.data_dir.parent / (self.data_dir.name + "-bench-logs")
            self.scratch.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.anvil_port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.env = self._server_environment()
        self.database_url = arguments.database_url or f"sqlite:///{self.data_dir / 'tally.db'}"
        self.observer = Observer(self.database_url, self.base, self.unit_count)
        self.war_room_token: str | None = None

    def _server_environment(self) -> dict[str, str]:
        env = {
            **os.environ,
            "TALLY_DATA_DIR": str(self.data_dir),
            "TALLY_RATE_LIMIT_ENABLED": "false",
            "TALLY_BATCH_MAX_RECORDS": str(self.arguments.batch_max_records),
            "TALLY_BATCH_MAX_AGE_SECONDS": str(self.arguments.batch_max_age),
            "TALLY_ANVIL_PORT": str(self.anvil_port),
            "TALLY_PORT": str(self.port),
        }
        env.pop("TALLY_RPC_URL", None)
        if self.arguments.database_url:
            env["TALLY_DATABASE_URL"] = self.arguments.database_url
        else:
            env.pop("TALLY_DATABASE_URL", None)
        return env

    # -- output --

    def say(self, message: str) -> None:
        elapsed = time.monotonic() - self.started
        print(f"[{elapsed:7.1f} s] {message}", flush=True)

    def over_deadline(self) -> bool:
        return self.deadline is not None and time.monotonic() > self.deadline

    # -- people (untimed), server and clients --

    def setup_people(self) -> None:
        volunteers, assignments, seconds = setup_people(
            data_dir=self.data_dir,
            database_url=self.arguments.database_url,
            batch_max_records=self.arguments.batch_max_records,
            seed=self.seed,
            election=self.election,
            constituencies=self.constituencies,
        )
        self.figures["national_setup_people_seconds"] = round(seconds, 2)
        self.figures["national_volunteers"] = volunteers
        self.say(
            f"people: 3 organisations, {volunteers:,} volunteers with {assignments:,} unit assignments, "
            f"1 war-room member, in {seconds:.1f} s (in-process, untimed for the night)"
        )

    def start_server(self) -> None:
        log = (self.scratch / "server.log").open("wb")
        self.server = subprocess.Popen(
            [PYTHON, "-m", "ledger.cli", "serve", "--port", str(self.port)],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )
        import httpx

        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.server.poll() is not None:
                raise SystemExit(f"tally serve exited with {self.server.returncode}; see {self.scratch / 'server.log'}")
            try:
                if httpx.get(f"{self.base}/v1/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        else:
            raise SystemExit("tally serve did not answer within 120 s")
        # Wait for the anchoring loop to have the chain and the contract, so anchoring is not
        # measured with anvil's start-up.
        while time.monotonic() < deadline:
            if b"anchoring to EvidenceAnchor" in (self.scratch / "server.log").read_bytes():
                break
            time.sleep(0.2)
        else:
            self.notes.append("the anchoring loop had not reported ready within 120 s of start")
        self.say(f"tally serve up on {self.base} (pid {self.server.pid}; anvil on port {self.anvil_port})")

    def start_clients(self) -> None:
        context = multiprocessing.get_context("spawn")
        count = max(1, min(self.arguments.clients, len(self.constituencies)))
        shards = [[c.id for c in self.constituencies[i::count]] for i in range(count)]
        for index, shard in enumerate(shards):
            parent, child = context.Pipe()
            config = {
                "index": index,
                "seed": self.seed,
                "port": self.port,
                "election": "th2566",
                "constituencies": shard,
                "photo_bytes": self.arguments.photo_bytes,
                "connections": self.arguments.connections,
            }
            process = context.Process(target=client_process, args=(config, child, self.stop), daemon=True)
            process.start()
            self.clients.append((process, parent))
        for _, pipe in self.clients:
            pipe.recv()
        self.say(f"{count} load-generator processes ready, {self.arguments.connections} connections each")

    def run_clients(self, stage: str, *, honour_deadline: bool = True, **params: Any) -> tuple[list[dict[str, Any]], float, bool]:
        """Send ``stage`` to every client; wait for all (stopping them at the deadline, if honoured)."""
        if not honour_deadline:
            self.stop.clear()
        started = time.perf_counter()
        for _, pipe in self.clients:
            pipe.send({"stage": stage, **params})
        waiting = {id(pipe): pipe for _, pipe in self.clients}
        results: dict[int, dict[str, Any]] = {}
        stopped = False
        progress = Progress(self, stage)
        while waiting:
            progress.maybe_log()
            for ready in multiprocessing.connection.wait(list(waiting.values()), timeout=1.0):
                pipe = waiting.pop(id(ready))
                results[id(pipe)] = pipe.recv()
            if waiting and not stopped and honour_deadline and self.over_deadline():
                self.say(f"deadline reached during {stage}: stopping the load generator")
                self.stop.set()
                stopped = True
            if self.server is not None and self.server.poll() is not None:
                raise SystemExit(f"tally serve died (exit {self.server.returncode}) during {stage}")
        seconds = time.perf_counter() - started
        ordered = [results[id(pipe)] for _, pipe in self.clients]
        for result in ordered:
            if "failed" in result:
                raise SystemExit(f"a load generator failed in {stage}: {result['failed']}\n{result.get('traceback', '')}")
        return ordered, seconds, not stopped

    def server_cpu(self) -> float:
        """CPU seconds of the server and its prepare workers so far."""
        if self.server is None:
            return 0.0
        return sum(proc_cpu_seconds(pid) for pid in (self.server.pid, *worker_pids(self.server.pid)))

    def server_rss_mib(self) -> float:
        rss = proc_status(self.server.pid, "VmRSS") if self.server is not None else None
        return (rss or 0) / MIB

    # -- stages --

    def client_stage(
        self, stage: str, *, counted: Callable[[dict[int, int], dict[str, float]], int], unit: str, **params: Any
    ) -> Stage:
        """Run one stage on every client and record it."""
        server_before = self.server_cpu()
        results, seconds, complete = self.run_clients(stage, **params)
        return self.record_stage(stage, [results], seconds, complete, server_before, counted=counted, unit=unit)

    def record_stage(
        self,
        stage: str,
        rounds: list[list[dict[str, Any]]],
        seconds: float,
        complete: bool,
        server_before: float,
        *,
        counted: Callable[[dict[int, int], dict[str, float]], int],
        unit: str,
    ) -> Stage:
        """Merge the clients' results of one or more rounds into a stage, and print it."""
        merged = merge_rounds(rounds)
        if merged["war_room_token"]:
            self.war_room_token = merged["war_room_token"]
        statuses, counters, errors = merged["statuses"], merged["counters"], merged["errors"]
        record = Stage(
            stage,
            seconds,
            counted(statuses, counters),
            unit,
            server_cpu=self.server_cpu() - server_before,
            client_cpu=merged["client_cpu"],
            complete=complete,
            server_rss_mib=self.server_rss_mib(),
        )
        record.extra = latency_extra(merged)
        self.stages.append(record)
        failures = {s: n for s, n in statuses.items() if s >= 400}
        self.say(
            f"{stage}: {record.count:,} {unit} in {seconds:.1f} s = {record.rate:,.1f}/s; "
            f"{record.extra['requests']:,} requests, p50 {record.extra['p50_ms']:.1f} ms p99 {record.extra['p99_ms']:.1f} ms; "
            f"statuses {dict(sorted(statuses.items()))}; server CPU "
            f"{record.server_cpu:.0f} s, load-generator CPU {record.client_cpu:.0f} s"
            + (f" (signing {counters['sign_cpu_seconds']:.0f} s)" if "sign_cpu_seconds" in counters else "")
            + f"; server RSS {record.server_rss_mib:.0f} MiB"
            + ("" if complete else " [STOPPED AT THE DEADLINE]")
        )
        if failures:
            self.notes.append(f"{stage}: {sum(failures.values()):,} requests failed ({failures}); first: {errors[:1]}")
            for error in errors[:3]:
                self.say(f"  {error}")
        return record

    def wait_stage(self, name: str, done: Callable[[], tuple[bool, int]], unit: str, *, poll: float = 0.25) -> Stage:
        """Until ``done()`` says so (or the deadline), as a stage counting what ``done`` counts."""
        server_before = self.server_cpu()
        started = time.perf_counter()
        complete = True
        while True:
            finished, count = done()
            if finished:
                break
            if self.over_deadline():
                complete = False
                self.say(f"deadline reached while waiting for {name}")
                break
            if self.server is not None and self.server.poll() is not None:
                raise SystemExit(f"tally serve died (exit {self.server.returncode}) during {name}")
            time.sleep(poll)
        record = Stage(
            name,
            time.perf_counter() - started,
            count,
            unit,
            server_cpu=self.server_cpu() - server_before,
            complete=complete,
            server_rss_mib=self.server_rss_mib(),
        )
        self.stages.append(record)
        self.say(f"{name}: {record.seconds:.1f} s ({count:,} {unit})" + ("" if complete else " [NOT FINISHED]"))
        return record

    def close(self) -> None:
        for process, pipe in self.clients:
            if process.is_alive():
                try:
                    pipe.send({"stage": "exit"})
                except OSError:
                    pass
                process.join(10)
                if process.is_alive():
                    process.terminate()
        self.clients.clear()
        if self.server is not None and self.server.poll() is None:
            self.server.send_signal(signal.SIGINT)  # the lifespan stops the loops and the embedded anvil
            try:
                self.server.wait(60)
            except subprocess.TimeoutExpired:
                self.server.kill()
                self.server.wait()
        self.observer.dispose()
        if self.temporary and not self.arguments.keep:
            shutil.rmtree(self.scratch, ignore_errors=True)
        else:
            print(f"data kept in {self.data_dir}; logs in {self.scratch}")
