"""Benchmark the HTTP API on this machine, with the load generator in its own process.

    .venv/bin/python scripts/bench_api.py [--tallies 10000] [--duration 5] [--readers 200]
                                          [--rate 2000] [--freshness 20] [--database-url URL] [--no-write]

What runs: ``tally serve``'s app under uvicorn (one API process with its prepare workers,
one per CPU beyond the first (``ledger.intake.prepare``); uvloop, httptools, no access
log; aggregates refresh and sealing loops on, anchoring off) over a fresh data directory,
and beside it a bare FastAPI app under the same uvicorn settings. The load generator is
this script in ``--load-generator`` mode: asyncio (uvloop) over raw HTTP/1.1 keep-alive
connections on loopback, in a separate process. Tallies are signed before timing starts
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
import base64
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

RESULTS = ROOT / "bench" / "results.json"
PYTHON = sys.executable

BARE_APP = """
from fastapi import FastAPI, Request, Response
app = FastAPI()
BODY = b'{"ok":true}'
@app.get("/constant")
async def constant_get() -> Response:
    return Response(BODY, media_type="application/json")
@app.post("/constant")
async def constant_post(request: Request) -> Response:
    await request.body()
    return Response(BODY, media_type="application/json")
"""


# -- the load generator (runs in its own process) -----------------------------------------


async def _read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
            break
    if length:
        await reader.readexactly(length)
    return status


async def _closed_loop(
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
        reader, writer = await asyncio.open_connection(host, port)
        try:
            while time.perf_counter() < deadline:
                if position >= len(requests) and not cycle:
                    return
                request = requests[position % len(requests)]
                position += 1
                started = time.perf_counter()
                writer.write(request)
                status = await _read_response(reader)
                latencies.append(time.perf_counter() - started)
                statuses[status] = statuses.get(status, 0) + 1
        finally:
            writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(connections)))
    elapsed = time.perf_counter() - started
    return {"count": len(latencies), "elapsed": elapsed, "latencies": latencies, "statuses": statuses}


async def _open_loop(
    host: str, port: int, requests: list[bytes], connections: int, rate: float, duration: float
) -> dict[str, Any]:
    """``connections`` readers together send ``rate`` requests per second on a fixed schedule;
    latency runs from the scheduled send time, so a slow answer cannot hide the queue behind it."""
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    interval = connections / rate
    streams = [await asyncio.open_connection(host, port) for _ in range(connections)]  # connect first, then start the clock
    start = time.perf_counter() + 0.2

    async def worker(index: int) -> None:
        request = requests[index % len(requests)]
        reader, writer = streams[index]
        try:
            scheduled = start + interval * index / connections
            while scheduled < start + duration:
                delay = scheduled - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                writer.write(request)
                status = await _read_response(reader)
                latencies.append(time.perf_counter() - scheduled)
                statuses[status] = statuses.get(status, 0) + 1
                scheduled += interval
        finally:
            writer.close()

    await asyncio.gather(*(worker(i) for i in range(connections)))
    return {"count": len(latencies), "elapsed": duration, "latencies": latencies, "statuses": statuses}


def load_generator(job_file: str) -> None:
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # pragma: no cover
        pass
    job = json.loads(Path(job_file).read_text())
    requests = [base64.b64decode(r) for r in job["requests"]]
    if job["mode"] == "closed":
        result = asyncio.run(
            _closed_loop(job["host"], job["port"], requests, job["connections"], job["duration"], job.get("cycle", False))
        )
    else:
        result = asyncio.run(_open_loop(job["host"], job["port"], requests, job["connections"], job["rate"], job["duration"]))
    # To a file, not stdout: uvloop may leave the inherited stdout pipe non-blocking, and a
    # large result then arrives torn.
    Path(job_file + ".out").write_text(json.dumps(result))


# -- the driver ---------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def http_request(method: str, path: str, *, token: str | None = None, body: bytes | None = None) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1"]
    if token:
        lines.append(f"Authorization: Bearer {token}")
    if body is not None:
        lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + (body or b"")


def run_load(scratch: Path, **job: Any) -> dict[str, Any]:
    job["requests"] = [base64.b64encode(r).decode() for r in job["requests"]]
    job_file = scratch / f"job-{time.monotonic_ns()}.json"
    job_file.write_text(json.dumps(job))
    subprocess.run([PYTHON, __file__, "--load-generator", str(job_file)], check=True)
    result: dict[str, Any] = json.loads(Path(str(job_file) + ".out").read_text())
    latencies = sorted(result.pop("latencies"))
    result["rate"] = result["count"] / result["elapsed"] if result["elapsed"] else 0.0
    if latencies:
        result["p50_ms"] = 1000 * latencies[len(latencies) // 2]
        result["p99_ms"] = 1000 * latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
        result["max_ms"] = 1000 * latencies[-1]
    return result


def wait_until_up(port: int, path: str, process: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"server on port {port} exited with {process.returncode}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}{path}", timeout=1.0).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"server on port {port} did not answer within {timeout:.0f} s")


def start(command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    handle = log.open("wb")
    return subprocess.Popen(command, env=env, stdout=handle, stderr=subprocess.STDOUT, cwd=ROOT)


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def sign_tallies(count: int, volunteers: int) -> tuple[list[bytes], list[dict[str, Any]]]:
    """``count`` signed tallies for distinct units, spread over the country, by ``volunteers`` keys.

    Returns the volunteers' keys and the tallies; signing is the client's work, done before timing.
    """
    from tests.factories import tally_json

    from ledger.election import load_election
    from wallets.tally_client import sign_tally

    election = load_election("th2566")
    keys = [bytes(31) + bytes([1 + i]) for i in range(volunteers)]
    units = [unit.id for unit in election.polling_units()]
    chosen = units[:: len(units) // count][:count]
    print(f"signing {count} tallies ...", flush=True)
    tallies = []
    for index, unit in enumerate(chosen):
        document = tally_json(election, unit, submission_id=f"bench-{index:08d}", cast=300)
        document["photos"] = {"tally_board": str(photo_cid(index, "board")), "form_5_18": str(photo_cid(index, "form"))}
        tallies.append(sign_tally(document, keys[index % volunteers], election))
    return keys, tallies


def photo_bytes(index: int, role: str) -> bytes:
    """Each report has photos of its own, as on the night (a photo shared by many reports
    would be flagged, and would make every screening look at all of them)."""
    return f"{role} photo of report {index}".encode()


def photo_cid(index: int, role: str) -> Any:
    from ledger.core.cid import CID, RAW

    return CID.of(RAW, photo_bytes(index, role))


def store_photos(ledger: Any, count: int) -> None:
    """Stand-in photos: their blocks, and rows in the photo index (a tally's photo links must name photos)."""
    from ledger.intake.photos import PhotoInfo

    infos = []
    for index in range(count):
        for role in ("board", "form"):
            ledger.content.put_block(photo_cid(index, role), photo_bytes(index, role))
            infos.append(
                (
                    PhotoInfo(
                        cid=photo_cid(index, role),
                        size=len(photo_bytes(index, role)),
                        media_type="image/jpeg",
                        taken_at=None,
                        gps=None,
                        exif={},
                    ),
                    None,
                )
            )
    for start in range(0, len(infos), 500):
        ledger.record_photos(infos[start : start + 500])


def prepare(settings: Any, keys: list[bytes], units: list[str], readers: int, photos: int) -> tuple[dict[str, str], list[str]]:
    """A data directory ready to serve: photo blocks, volunteers (members of one
    organisation, assigned the units they report: ``units[i]`` by ``keys[i % len(keys)]``)
    with sessions, newsroom keys for the readers. Returns (session token by address, reader keys)."""
    from api.state import AppState
    from ledger.core.signing import address_from_private_key

    state = AppState.open(settings)
    try:
        store_photos(state.ledger_app.ledger, photos)
        review = state.ledger_app.review
        review.create_organisation(organisation_id="bench", name="Benchmark volunteers", kind="civil_society")
        sessions = {}
        for index, key in enumerate(keys):
            address = address_from_private_key(key)
            review.register_member(address=address, level=1, name=f"volunteer {index}", organisation_id="bench")
            review.assign(address=address, areas=units[index :: len(keys)])
            sessions[address] = state.access.sessions.issue(address)[0]
        reader_keys = [state.access.create_principal(role="newsroom", name=f"reader {i}")[1] for i in range(readers)]
    finally:
        state.close()
    return sessions, reader_keys


def in_process_rates(settings: Any, tallies: list[dict[str, Any]], photos: int, group: int = 64) -> tuple[float, float]:
    """The floor under the HTTP figure: the ledger called directly. Half the tallies one by one
    (``Ledger.submit_tally``: one transaction each), half in groups (``prepare_tally`` and
    ``commit``: what the API's writer does when reports queue up)."""
    from ledger.app import open_app

    app = open_app(settings)
    half = len(tallies) // 2
    try:
        store_photos(app.ledger, photos)
        started = time.perf_counter()
        for submission in tallies[:half]:
            app.ledger.submit_tally(submission)
        single = half / (time.perf_counter() - started)
        started = time.perf_counter()
        for start in range(half, len(tallies), group):
            app.ledger.commit([app.ledger.prepare_tally(t) for t in tallies[start : start + group]])
        grouped = (len(tallies) - half) / (time.perf_counter() - started)
        return single, grouped
    finally:
        app.close()


def ingest(scratch: Path, port: int, sessions: dict[str, str], tallies: list[dict[str, Any]], connections: int) -> dict[str, Any]:
    requests = [http_request("POST", "/v1/tallies", token=sessions[t["submitter"]], body=json.dumps(t).encode()) for t in tallies]
    result = run_load(
        scratch, host="127.0.0.1", port=port, mode="closed", connections=connections, duration=300.0, requests=requests
    )
    result["created_per_s"] = result["statuses"].get("201", 0) / result["elapsed"]
    return result


async def measure_freshness(port: int, items: list[tuple[str, bytes]], newsroom: str, count: int) -> dict[str, list[float]]:
    import httpx

    base = f"http://127.0.0.1:{port}"
    arrivals: dict[str, float] = {}
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
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

        listener = asyncio.create_task(listen())
        await asyncio.sleep(0.5)
        aggregate_delays, feed_delays = [], []
        for token, body in items[:count]:
            before = (await client.get("/v1/aggregates/unofficial/national", headers=reader)).json()["units_reporting"]
            answer = await client.post(
                "/v1/tallies", content=body, headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
            )
            accepted = time.perf_counter()
            cid = answer.json()["record_cid"]
            while (await client.get("/v1/aggregates/unofficial/national", headers=reader)).json()["units_reporting"] <= before:
                await asyncio.sleep(0.005)
            aggregate_delays.append(time.perf_counter() - accepted)
            while cid not in arrivals:
                await asyncio.sleep(0.002)
            feed_delays.append(max(0.0, arrivals[cid] - accepted))
            await asyncio.sleep(0.1)
        listener.cancel()
    return {"aggregates": aggregate_delays, "feed": feed_delays}


def merge_results(figures: dict[str, float]) -> None:
    results = json.loads(RESULTS.read_text("utf-8")) if RESULTS.exists() else {}
    results.update(figures)
    RESULTS.write_text(json.dumps(dict(sorted(results.items())), indent=2) + "\n", encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--load-generator", help=argparse.SUPPRESS)
    parser.add_argument("--tallies", type=int, default=10000, help="tallies to send in the ingest run")
    parser.add_argument("--volunteers", type=int, default=100)
    parser.add_argument("--ingest-connections", type=int, default=32)
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per read measurement")
    parser.add_argument("--readers", type=int, default=200, help="concurrent readers of the national aggregate")
    parser.add_argument("--rate", type=int, default=2000, help="requests per second, in all, of the open-loop readers")
    parser.add_argument("--freshness", type=int, default=20, help="reports timed from acceptance to aggregates and feed")
    parser.add_argument("--database-url", help="default: SQLite in the scratch data directory")
    parser.add_argument("--no-write", action="store_true", help="print only; leave bench/results.json alone")
    arguments = parser.parse_args()
    if arguments.load_generator:
        load_generator(arguments.load_generator)
        return

    from ledger.settings import Settings

    figures: dict[str, float] = {}
    keys, tallies = sign_tallies(arguments.tallies * 2 + arguments.freshness + 1000, arguments.volunteers)
    units = [t["polling_unit"] for t in tallies]
    quiet_tallies, busy_tallies = tallies[: arguments.tallies], tallies[arguments.tallies : 2 * arguments.tallies]
    fresh_tallies = tallies[2 * arguments.tallies : 2 * arguments.tallies + arguments.freshness]
    direct_tallies = tallies[2 * arguments.tallies + arguments.freshness :]
    with tempfile.TemporaryDirectory(prefix="tally-bench-api-") as scratch_name:
        scratch = Path(scratch_name)

        def environment(name: str, **extra: str) -> tuple[Settings, dict[str, str]]:
            env = {
                **os.environ,
                "TALLY_DATA_DIR": str(scratch / name),
                "TALLY_API_ANCHOR_BATCHES": "false",
                "TALLY_RATE_LIMIT_VOLUNTEER": "10000",
                "TALLY_ANVIL_PORT": str(free_port()),
                **extra,
            }
            if arguments.database_url:
                env["TALLY_DATABASE_URL"] = arguments.database_url
            return Settings(data_dir=scratch / name, database_url=arguments.database_url), env

        direct_settings, _ = environment("direct")
        if not arguments.database_url:  # (on a shared PostgreSQL database the directories would collide)
            single, grouped = in_process_rates(direct_settings, direct_tallies, len(tallies))
            figures["ledger_submit_per_s_in_process"] = round(single, 1)
            figures["ledger_submit_per_s_in_process_grouped"] = round(grouped, 1)
            print(f"ledger in process     {single:8.0f} tallies/s one by one, {grouped:.0f} tallies/s in groups of 64")

        bare_port = free_port()
        (scratch / "bare.py").write_text(BARE_APP)
        uvicorn_flags = ["--loop", "uvloop", "--http", "httptools", "--no-access-log", "--log-level", "warning"]
        bare = start(
            [PYTHON, "-m", "uvicorn", "bare:app", "--app-dir", str(scratch), "--port", str(bare_port), *uvicorn_flags],
            os.environ.copy(),
            scratch / "bare.log",
        )
        servers = [bare]
        try:
            wait_until_up(bare_port, "/constant", bare)
            bare_post = run_load(
                scratch,
                host="127.0.0.1",
                port=bare_port,
                mode="closed",
                connections=arguments.ingest_connections,
                duration=arguments.duration,
                requests=[http_request("POST", "/constant", token="x", body=json.dumps(t).encode()) for t in quiet_tallies],
            )
            figures["api_bare_post_per_s"] = round(bare_post["rate"], 1)
            print(f"bare POST             {bare_post['rate']:8.0f} req/s")

            if not arguments.database_url:
                # The HTTP layer alone: the same server with its background loops off.
                quiet_settings, quiet_env = environment(
                    "quiet", TALLY_API_REFRESH_AGGREGATES="false", TALLY_API_SEAL_BATCHES="false"
                )
                sessions, _ = prepare(quiet_settings, keys, units, 0, len(tallies))
                quiet_port = free_port()
                quiet = start([PYTHON, "-m", "ledger.cli", "serve", "--port", str(quiet_port)], quiet_env, scratch / "quiet.log")
                servers.append(quiet)
                wait_until_up(quiet_port, "/v1/health", quiet)
                result = ingest(scratch, quiet_port, sessions, quiet_tallies, arguments.ingest_connections)
                stop(quiet)
                figures["api_tally_ingest_per_s_without_background_loops"] = round(result["created_per_s"], 1)
                print(f"tally ingest, no loops{result['created_per_s']:8.0f} tallies/s  statuses {result['statuses']}")

            settings, env = environment("data")
            sessions, readers = prepare(settings, keys, units, arguments.readers, len(tallies))
            api_port = free_port()
            api = start([PYTHON, "-m", "ledger.cli", "serve", "--port", str(api_port)], env, scratch / "api.log")
            servers.append(api)
            wait_until_up(api_port, "/v1/health", api)
            result = ingest(scratch, api_port, sessions, busy_tallies, arguments.ingest_connections)
            print(
                f"tally ingest          {result['created_per_s']:8.0f} tallies/s  p50 {result['p50_ms']:.1f} ms  "
                f"p99 {result['p99_ms']:.1f} ms  statuses {result['statuses']}  (aggregates and sealing loops on)"
            )
            import httpx

            figures["api_tally_ingest_per_s"] = round(result["created_per_s"], 1)
            figures["api_tally_ingest_p50_ms"] = round(result["p50_ms"], 2)
            figures["api_tally_ingest_p99_ms"] = round(result["p99_ms"], 2)
            figures["api_tally_ingest_vs_bare"] = round(figures["api_tally_ingest_per_s"] / figures["api_bare_post_per_s"], 3)
            figures["api_tally_ingest_connections"] = arguments.ingest_connections
            figures["api_prepare_workers"] = httpx.get(f"http://127.0.0.1:{api_port}/v1/health").json()["prepare_workers"]

            counted = 0
            while counted < result["statuses"].get("201", 0):  # let the refresh loop count the ingested tallies
                time.sleep(0.2)
                counted = httpx.get(f"http://127.0.0.1:{api_port}/v1/health").json()["entries_counted"]
            national = [http_request("GET", "/v1/aggregates/unofficial/national", token=token) for token in readers]
            saturated = run_load(
                scratch,
                host="127.0.0.1",
                port=api_port,
                mode="closed",
                connections=arguments.readers,
                duration=arguments.duration,
                requests=national,
                cycle=True,
            )
            bare_get = run_load(
                scratch,
                host="127.0.0.1",
                port=bare_port,
                mode="closed",
                connections=arguments.readers,
                duration=arguments.duration,
                requests=[http_request("GET", "/constant")],
                cycle=True,
            )
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
            figures["api_national_saturated_per_s"] = round(saturated["rate"], 1)
            figures["api_national_saturated_p99_ms"] = round(saturated["p99_ms"], 2)
            figures["api_bare_get_saturated_per_s"] = round(bare_get["rate"], 1)
            figures[f"api_national_p99_ms_at_{arguments.rate}_per_s"] = round(at_rate["p99_ms"], 2)
            figures[f"api_national_p50_ms_at_{arguments.rate}_per_s"] = round(at_rate["p50_ms"], 2)
            figures[f"api_national_achieved_per_s_at_{arguments.rate}_per_s"] = round(at_rate["rate"], 1)

            fresh = [(sessions[t["submitter"]], json.dumps(t).encode()) for t in fresh_tallies]
            delays = asyncio.run(measure_freshness(api_port, fresh, readers[0], arguments.freshness))
            for name, values in delays.items():
                figures[f"api_freshness_{name}_s_p50"] = round(statistics.median(values), 3)
                figures[f"api_freshness_{name}_s_max"] = round(max(values), 3)
                print(f"freshness, {name:<10} p50 {statistics.median(values):.3f} s  max {max(values):.3f} s")
        finally:
            for server in servers:
                stop(server)
    figures["api_bench_cpus"] = os.cpu_count() or 0
    print(json.dumps(figures, indent=2))
    if not arguments.no_write:
        merge_results(figures)


if __name__ == "__main__":
    main()
