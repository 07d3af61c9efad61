"""Replay a national election night through the real HTTP API, and time every stage.

    .venv/bin/tally bench [--units N] [--photo-bytes 20000] [--database-url URL] [--data-dir DIR]
                          [--clients 2] [--connections 4] [--deadline-minutes M] [--no-write] ...
    (the same as .venv/bin/python scripts/bench_national.py ...)

What runs
=========
People first, untimed: in a fresh data directory (under /tmp, or ``--data-dir``), directly
in the database through ``ledger.review.service.ReviewService``: 3 organisations, one level-1
volunteer per organisation per constituency assigned every unit of it (assignments
bulk-inserted), and a war-room member (level 3). Then ``tally serve`` starts as a
subprocess (uvicorn; rate limits off; ``TALLY_BATCH_MAX_RECORDS`` 10,000; the API
process's own loops seal, and anchor on its embedded anvil), and the load generator
starts as ``--clients`` separate processes (raw asyncio HTTP/1.1 keep-alive on loopback,
as in ``bench_api.py``), each owning whole constituencies. Every person signs in through
``POST /v1/auth/challenge`` and ``POST /v1/auth/session`` (EIP-191 personal_sign).

Stages, each with wall time and throughput:

    upload     2 photos per report (3 reports per unit): a base JPEG made once per size by
               ``ledger.cli.simulation.make_photo``, made unique by a COM segment (0xFFFE) right
               after SOI carrying the unit, organisation and role, padded to ``--photo-bytes``
               (further padding segments, if any, go just before SOS, so the EXIF segment stays
               where the server looks for it); the server's CID is checked against ours
    submit     the tallies: ``NightSimulator`` true counts, signed by the volunteers' keys
               (``sign_tally``) in the load-generator processes while they send (streaming;
               that signing competes with the server for the same 2 cores: its CPU time is
               reported)
    screen     until every accepted report has been screened (the server may screen off the
               submission path; agreeing reports are then accepted by the ledger's own decision)
    seal       until no entry is pending
               (screen and seal are observed read-only in the database: the API counts neither)
    anchor     until every batch in ``GET /v1/batches`` is anchored
    certify    the war room works its queue (``GET /v1/review/queue``, pages of 1,000): one
               signed ``certify`` (``tally-decision-v1``, ``sign_decision``) per accepted unit
               and one ``certify_constituency`` per complete constituency, through
               ``POST /v1/decisions``, signed and sent by the load generator; units the server
               did not accept are then taken one by one from ``GET /v1/units/{id}/review``
               (the war room accepts the first report, then certifies)
    aggregate  until ``GET /v1/aggregates/certified/national`` covers every unit
    anchor_decisions  the certification decisions sealed and anchored too
    verify     ``tally verify all`` as a subprocess against the chain and the local block
               store (and the API's published numbers): its time and peak RSS (wait4)

"The night" runs from the first upload to the last of certify, aggregate and the decisions'
anchoring; sign-in and people setup are outside it (reported apart). Also measured: the
server's peak memory (VmHWM of the ``tally serve`` process plus that of each process it
started with multiprocessing: its prepare workers and their resource tracker; anvil apart),
database and block-store size on disk, and CPU seconds of the server (with those processes)
and of the load generator per stage.

Side by side, in the same run and after the night (nothing else running): CID building
against raw SHA-256 on the photo bytes (``bench_cid``), batch building against
``@openzeppelin/merkle-tree`` (``bench_merkle``; ``--merkle-leaves 0`` skips it), ingest
against the bare FastAPI endpoint of ``bench_api`` (pre-signed tallies of this night), and
verify-all time against ingest time.

Goals on a 2-core machine (printed as a table, met or missed; a miss is never hidden):
night < 15 min; verify all < 5 min; server peak memory < 1 GiB; verify all < 512 MiB.

Figures are printed and merged into bench/results.json (read-modify-write; one key per
figure, prefix ``national_``; the previous run's ``national_`` keys are replaced as a set,
so figures of two runs never mix; ``national_units`` says what scale they are for).
``--deadline-minutes`` stops a run that takes too long and reports the stages that finished.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import multiprocessing
import multiprocessing.connection
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from array import array
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
for _path in (ROOT, ROOT / "scripts"):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

RESULTS = ROOT / "bench" / "results.json"
PYTHON = sys.executable
ORGANISATIONS = ("civic-watch", "uni-consortium", "local-assoc")  # as ledger.cli.demo.ORGANISATIONS
PHOTO_ROLES = (("tally_board", "board"), ("form_5_18", "form"))
MIB = 1 << 20
GOALS = (
    # figure, what, limit, unit
    ("national_night_seconds", "night ingested, anchored and certified", 15 * 60, "s"),
    ("national_verify_all_seconds", "tally verify all", 5 * 60, "s"),
    ("national_server_peak_rss_mib", "server peak memory (VmHWM, with its workers)", 1024, "MiB"),
    ("national_verify_all_peak_rss_mib", "verify all peak memory", 512, "MiB"),
)


def _key(seed: int, *parts: object) -> bytes:
    return hashlib.sha256(":".join(map(str, ("tally-bench-national", seed, *parts))).encode()).digest()


def volunteer_key(seed: int, organisation: str, constituency_id: str) -> bytes:
    return _key(seed, "volunteer", organisation, constituency_id)


def war_room_key(seed: int) -> bytes:
    return _key(seed, "war-room")


# -- photos ---------------------------------------------------------------------------------


def _com_segment(payload: bytes) -> bytes:
    """A JPEG comment segment (0xFFFE); its length field counts itself, so payload ≤ 65,533 bytes."""
    if len(payload) > 65533:
        raise ValueError("a COM segment holds at most 65,533 bytes")
    return b"\xff\xfe" + (len(payload) + 2).to_bytes(2, "big") + payload


def _start_of_scan(jpeg: bytes) -> int:
    position = 2
    while jpeg[position + 1] != 0xDA:
        position += 2 + int.from_bytes(jpeg[position + 2 : position + 4], "big")
    return position


class PhotoMaker:
    """Unique, valid JPEGs of about ``size`` bytes, made cheaply.

    One base per role is drawn by ``make_photo`` (EXIF time and GPS; image noise up to
    about 90 % of ``size``); each photo is that base with a COM segment right after SOI
    naming the photo (so every photo has its own CID) and padding to ``size``. Padding
    beyond one segment goes just before SOS, after the EXIF segment, so EXIF stays within
    the head the server reads.
    """

    def __init__(self, size: int, *, taken_at: datetime, location: tuple[float, float]):
        from ledger.cli.simulation import make_photo

        self.size = size
        self._bases: dict[str, tuple[bytes, bytes, bytes]] = {}
        for _, role in PHOTO_ROLES:
            base = make_photo(
                label=f"national bench {role}",
                taken_at=taken_at,
                location=location,
                seed=f"bench-national:{role}",
                size=int(size * 0.9) if size > 4096 else 0,
            )
            sos = _start_of_scan(base)
            self._bases[role] = (base[2:sos], base[sos:], base)

    def photo(self, role: str, name: str) -> bytes:
        headers, scan, base = self._bases[role]
        marker = f"tally-bench-national {name} ".encode()
        needed = self.size - len(base)
        first = marker.ljust(min(65533, max(len(marker), needed - 4)), b".")
        remaining = needed - 4 - len(first)
        extra = []
        while remaining >= 4:
            chunk = min(65533, remaining - 4)
            extra.append(_com_segment(bytes(chunk)))
            remaining -= 4 + chunk
        return b"".join((b"\xff\xd8", _com_segment(first), headers, *extra, scan))


def check_photo(photo: bytes) -> dict[str, Any]:
    """The photo opens as an image, its type is JPEG by its bytes, and its EXIF still parses."""
    import io

    from PIL import Image

    from ledger.intake.photos import detect_media_type, read_exif

    with Image.open(io.BytesIO(photo)) as image:
        image.load()
    media_type = detect_media_type(photo[:4096])
    reading = read_exif(photo)
    if media_type != "image/jpeg" or reading.error or "taken_at" not in reading.exif or "gps" not in reading.exif:
        raise SystemExit(f"the benchmark's photos are not valid: type {media_type}, EXIF {reading}")
    return dict(reading.exif)


# -- raw HTTP/1.1 keep-alive client (as bench_api's load generator, with bodies) -------------


def http_request(
    method: str, path: str, *, token: str | None = None, body: bytes | None = None, content_type: str = "application/json"
) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1"]
    if token:
        lines.append(f"Authorization: Bearer {token}")
    if body is not None:
        lines += [f"Content-Type: {content_type}", f"Content-Length: {len(body)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + (body or b"")


class Connection:
    """One keep-alive connection; reconnects once when the server closed it."""

    def __init__(self, host: str, port: int):
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None

    async def exchange(self, request: bytes) -> tuple[int, bytes]:
        for attempt in (1, 2):
            if self.writer is None:
                self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
            assert self.reader is not None and self.writer is not None
            try:
                self.writer.write(request)
                head = await self.reader.readuntil(b"\r\n\r\n")
                status = int(head[9:12])
                length, close = 0, False
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    name = name.strip().lower()
                    if name == b"content-length":
                        length = int(value)
                    elif name == b"connection" and value.strip().lower() == b"close":
                        close = True
                    elif name == b"transfer-encoding":
                        raise RuntimeError("chunked answers are not read by this client")
                body = await self.reader.readexactly(length) if length else b""
                if close:
                    self.close()
                return status, body
            except (ConnectionError, asyncio.IncompleteReadError):
                self.close()
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")


@dataclass
class Tally:
    """What one client process counts in a stage."""

    statuses: dict[int, int] = field(default_factory=dict)
    latencies: array = field(default_factory=lambda: array("d"))  # type: ignore[type-arg]
    errors: list[str] = field(default_factory=list)
    counters: dict[str, float] = field(default_factory=dict)

    def count(self, status: int, latency: float, body: bytes = b"", what: str = "") -> None:
        self.statuses[status] = self.statuses.get(status, 0) + 1
        self.latencies.append(latency)
        if status >= 400 and len(self.errors) < 5:
            self.errors.append(f"{what}: HTTP {status} {body[:400].decode('utf-8', 'replace')}")

    def add(self, name: str, value: float = 1) -> None:
        self.counters[name] = self.counters.get(name, 0) + value


async def timed(connection: Connection, request: bytes, tally: Tally, what: str) -> tuple[int, bytes]:
    started = time.perf_counter()
    status, body = await connection.exchange(request)
    tally.count(status, time.perf_counter() - started, body, what)
    return status, body


# -- the load generator (client processes) -----------------------------------------------------


class Client:
    """One load-generator process: its constituencies, its people's keys and sessions."""

    def __init__(self, config: dict[str, Any], stop: Any):
        from ledger.cli.simulation import NightSimulator
        from ledger.election import load_election

        self.config = config
        self.stop = stop
        self.seed = int(config["seed"])
        self.host, self.port = "127.0.0.1", int(config["port"])
        self.election = load_election(config["election"])
        self.simulator = NightSimulator(self.election, self.seed)
        self.constituencies: list[str] = config["constituencies"]
        close = datetime.fromisoformat(self.election.polls_close).astimezone(UTC)
        self.photos = PhotoMaker(int(config["photo_bytes"]), taken_at=close.replace(minute=30), location=(13.7563, 100.5018))
        self.tokens: dict[str, str] = {}  # address -> session token
        self.keys = {(org, c): volunteer_key(self.seed, org, c) for c in self.constituencies for org in ORGANISATIONS}
        self.addresses: dict[tuple[str, str], str] = {}
        self.war_room_token: str | None = None
        self._cid_cache: dict[bytes, str] = {}

    # -- helpers --

    def address(self, organisation: str, constituency_id: str) -> str:
        from ledger.core.signing import address_from_private_key

        key = (organisation, constituency_id)
        if key not in self.addresses:
            self.addresses[key] = address_from_private_key(self.keys[key])
        return self.addresses[key]

    def photo(self, unit_id: str, organisation: str, role: str) -> bytes:
        return self.photos.photo(role, f"{unit_id}/{organisation}/{role}/{self.seed}")

    async def pool(
        self, items: Iterable[Any], handle: Callable[[Connection, Any, Tally], Awaitable[None]], connections: int
    ) -> Tally:
        tally = Tally()
        iterator = iter(items)

        async def run() -> None:
            connection = Connection(self.host, self.port)
            try:
                while not self.stop.is_set():
                    try:
                        item = next(iterator)
                    except StopIteration:
                        return
                    await handle(connection, item, tally)
            finally:
                connection.close()

        await asyncio.gather(*(run() for _ in range(connections)))
        return tally

    # -- sign-in --

    async def sign_in(self, connection: Connection, address: str, key: bytes, tally: Tally) -> str:
        from eth_account import Account
        from eth_account.messages import encode_defunct

        status, body = await timed(
            connection,
            http_request("POST", "/v1/auth/challenge", body=json.dumps({"address": address}).encode()),
            tally,
            "challenge",
        )
        if status != 201:
            raise RuntimeError(f"sign-in challenge for {address}: HTTP {status} {body[:300]!r}")
        challenge = json.loads(body)
        signature = Account.sign_message(encode_defunct(text=challenge["message"]), private_key=key).signature.hex()
        answer = {"address": address, "nonce": challenge["nonce"], "signature": "0x" + signature.removeprefix("0x")}
        status, body = await timed(
            connection, http_request("POST", "/v1/auth/session", body=json.dumps(answer).encode()), tally, "session"
        )
        if status != 201:
            raise RuntimeError(f"sign-in session for {address}: HTTP {status} {body[:300]!r}")
        return str(json.loads(body)["token"])

    async def stage_signin(self, params: dict[str, Any]) -> Tally:
        people = [(org, c) for c in self.constituencies for org in ORGANISATIONS]

        async def handle(connection: Connection, person: tuple[str, str], tally: Tally) -> None:
            address = self.address(*person)
            self.tokens[address] = await self.sign_in(connection, address, self.keys[person], tally)
            tally.add("signed_in")

        tally = await self.pool(people, handle, self.config["connections"])
        if params.get("war_room") and self.config["index"] == 0:
            from ledger.core.signing import address_from_private_key

            key = war_room_key(self.seed)
            connection = Connection(self.host, self.port)
            try:
                self.war_room_token = await self.sign_in(connection, address_from_private_key(key), key, tally)
                tally.add("signed_in")
            except RuntimeError:  # an API without sessions for the war room yet (the error is kept): certify is skipped
                tally.add("war_room_not_signed_in")
            finally:
                connection.close()
        return tally

    # -- upload --

    def upload_items(self) -> Iterator[tuple[str, bytes, str]]:
        for constituency_id in self.constituencies:
            for unit in self.election.polling_units(constituency_id):
                for organisation in ORGANISATIONS:
                    token = self.tokens[self.address(organisation, constituency_id)]
                    for _, role in PHOTO_ROLES:
                        yield token, self.photo(unit.id, organisation, role), unit.id

    async def stage_upload(self, params: dict[str, Any]) -> Tally:
        from ledger.core.unixfs import file_cid

        async def handle(connection: Connection, item: tuple[str, bytes, str], tally: Tally) -> None:
            token, photo, unit_id = item
            request = http_request("POST", "/v1/photos", token=token, body=photo, content_type="image/jpeg")
            status, body = await timed(connection, request, tally, f"photo for {unit_id}")
            tally.add("bytes", len(photo))
            if status in (200, 201):
                answer = json.loads(body)
                if answer["cid"] != str(file_cid(photo)):
                    tally.add("cid_mismatch")
                if answer.get("media_type") != "image/jpeg" or not (answer.get("exif") or {}).get("taken_at"):
                    tally.add("exif_missing")

        return await self.pool(self.upload_items(), handle, self.config["connections"])

    # -- submit --

    def tally_items(self, limit: int | None = None) -> Iterator[tuple[str, bytes, str]]:
        """Signed tallies, made and signed as they are pulled (the client's CPU time is counted)."""
        from ledger.core.timefmt import format_time_micro as format_time
        from ledger.core.unixfs import file_cid
        from wallets.tally_client import sign_tally

        made = 0
        for constituency_id in self.constituencies:
            for unit in self.election.polling_units(constituency_id):
                count = self.simulator.true_count(unit)
                for report, organisation in enumerate(ORGANISATIONS, start=1):
                    if limit is not None and made >= limit:
                        return
                    started = time.process_time()
                    submission = {
                        "polling_unit": unit.id,
                        "submission_id": f"nat{self.seed}-{organisation}-{unit.id}",
                        "submitted_at": format_time(self.simulator.report_time(unit, report)).split(".")[0] + "Z",
                        "registered_voters": unit.registered_voters,
                        "constituency": count.constituency.as_json(),
                        "party_list": count.party_list.as_json(),
                        "photos": {name: str(file_cid(self.photo(unit.id, organisation, role))) for name, role in PHOTO_ROLES},
                    }
                    signed = sign_tally(submission, self.keys[(organisation, constituency_id)], self.election)
                    body = json.dumps(signed, separators=(",", ":")).encode()
                    self.sign_cpu += time.process_time() - started
                    made += 1
                    yield self.tokens[self.address(organisation, constituency_id)], body, unit.id

    sign_cpu = 0.0

    async def stage_submit(self, params: dict[str, Any]) -> Tally:
        self.sign_cpu = 0.0

        async def handle(connection: Connection, item: tuple[str, bytes, str], tally: Tally) -> None:
            token, body, unit_id = item
            await timed(connection, http_request("POST", "/v1/tallies", token=token, body=body), tally, f"tally of {unit_id}")

        tally = await self.pool(self.tally_items(), handle, self.config["connections"])
        tally.counters["sign_cpu_seconds"] = self.sign_cpu
        return tally

    async def stage_bare(self, params: dict[str, Any]) -> Tally:
        """The same tally bodies, signed first (untimed), to the bare FastAPI endpoint."""
        bodies = [(token, body) for token, body, _ in self.tally_items(limit=int(params["tallies"]))]

        async def handle(connection: Connection, item: tuple[str, bytes], tally: Tally) -> None:
            await timed(connection, http_request("POST", "/constant", token=item[0], body=item[1]), tally, "bare")

        api_port, self.port = self.port, int(params["port"])
        started = time.perf_counter()
        try:
            tally = await self.pool(bodies, handle, self.config["connections"])
        finally:
            self.port = api_port
        tally.counters["send_seconds"] = time.perf_counter() - started
        return tally

    # -- certify --

    def decision(self, **fields: Any) -> bytes:
        from ledger.core.timefmt import format_time_micro as format_time
        from wallets.tally_client import sign_decision

        started = time.process_time()
        decision = {"decided_at": format_time(datetime.now(UTC)).split(".")[0] + "Z", "role": "war_room", **fields}
        signed = sign_decision(decision, war_room_key(self.seed), self.election)
        self.sign_cpu += time.process_time() - started
        return json.dumps(signed, separators=(",", ":")).encode()

    async def stage_decide(self, params: dict[str, Any]) -> Tally:
        """This client's share of a page of war-room decisions (fields without role, time, signer)."""
        token = params["war_room_token"]
        self.sign_cpu = 0.0
        share = params["shares"][self.config["index"]]

        async def handle(connection: Connection, fields: dict[str, Any], tally: Tally) -> None:
            status, _ = await timed(
                connection,
                http_request("POST", "/v1/decisions", token=token, body=self.decision(**fields)),
                tally,
                f"{fields['action']} of {fields['subject']}",
            )
            if status in (200, 201):
                tally.add(f"{fields['action']}_ok")

        tally = await self.pool(share, handle, self.config["connections"])
        tally.counters["sign_cpu_seconds"] = self.sign_cpu
        return tally

    async def stage_certify(self, params: dict[str, Any]) -> Tally:
        token = params.get("war_room_token") or self.war_room_token
        if not token:
            raise RuntimeError("the war room has no session")
        self.sign_cpu = 0.0
        constituencies = [c for c in self.constituencies if c in set(params.get("only") or self.constituencies)]
        remaining = {c: sum(1 for _ in self.election.polling_units(c)) for c in constituencies}
        review_path = str(params.get("review_path", "/v1/units/{unit}/review"))

        async def post(connection: Connection, tally: Tally, what: str, **fields: Any) -> int:
            status, _ = await timed(
                connection, http_request("POST", "/v1/decisions", token=token, body=self.decision(**fields)), tally, what
            )
            return status

        async def handle(connection: Connection, item: tuple[str, str], tally: Tally) -> None:
            constituency_id, unit_id = item
            status, body = await timed(
                connection, http_request("GET", review_path.format(unit=unit_id), token=token), tally, f"review of {unit_id}"
            )
            review = json.loads(body) if status == 200 else {}
            if review.get("status") == "certified":
                tally.add("already_certified")
            elif status == 200:
                record = review.get("accepted")
                if review.get("status") != "accepted" or not record:
                    # The server did not accept it automatically: the war room accepts the first report.
                    reports = review.get("reports") or []
                    if not reports:
                        tally.add("no_report")
                        return
                    record = reports[0]["record_cid"]
                    await post(
                        connection,
                        tally,
                        f"accept of {unit_id}",
                        decision_id=f"acc{self.seed}-{unit_id}",
                        action="accept",
                        subject=unit_id,
                        record=record,
                        reason="benchmark: the war room accepts the first report",
                    )
                    tally.add("accepted_by_war_room")
                if await post(
                    connection,
                    tally,
                    f"certify of {unit_id}",
                    decision_id=f"cert{self.seed}-{unit_id}",
                    action="certify",
                    subject=unit_id,
                    record=record,
                ) in (200, 201):
                    tally.add("units_certified")
            remaining[constituency_id] -= 1
            if remaining[constituency_id] == 0 and await post(
                connection,
                tally,
                f"certify_constituency {constituency_id}",
                decision_id=f"certc{self.seed}-{constituency_id}",
                action="certify_constituency",
                subject=constituency_id,
            ) in (200, 201):
                tally.add("constituencies_certified")

        items = ((c, unit.id) for c in constituencies for unit in self.election.polling_units(c))
        tally = await self.pool(items, handle, self.config["connections"])
        tally.counters["sign_cpu_seconds"] = self.sign_cpu
        return tally


def client_process(config: dict[str, Any], pipe: multiprocessing.connection.Connection, stop: Any) -> None:
    """A load-generator process: runs the stages the driver sends, one at a time."""
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # pragma: no cover
        pass
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the driver stops us
    client = Client(config, stop)
    pipe.send({"ready": True})
    while True:
        command = pipe.recv()
        stage = command["stage"]
        if stage == "exit":
            return
        started_cpu, started = time.process_time(), time.perf_counter()
        try:
            tally = asyncio.run(getattr(client, f"stage_{stage}")(command))
            result: dict[str, Any] = {
                "statuses": tally.statuses,
                "latencies": tally.latencies.tobytes(),
                "errors": tally.errors,
                "counters": tally.counters,
                "war_room_token": client.war_room_token,
            }
        except Exception as exc:  # reported by the driver
            import traceback

            result = {"failed": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()}
        result["cpu_seconds"] = time.process_time() - started_cpu
        result["seconds"] = time.perf_counter() - started
        pipe.send(result)


# -- the driver: processes, /proc, sizes ------------------------------------------------------------


MEASURE_PREFIX = "\nbench-national-child-usage: "
MEASURE_CHILD = f"""
import json, os, subprocess, sys, threading, time
process = subprocess.Popen(sys.argv[1:])
peak = [0]

def tree_rss_kib(root):
    children = {{}}
    for name in os.listdir('/proc'):
        if name.isdigit():
            try:
                with open(f'/proc/{{name}}/stat') as handle:
                    children.setdefault(int(handle.read().rsplit(')', 1)[1].split()[1]), []).append(int(name))
            except OSError:
                pass
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        todo += children.get(pid, [])
        try:
            with open(f'/proc/{{pid}}/status') as handle:
                total += next(int(line.split()[1]) for line in handle if line.startswith('VmRSS:'))
        except (OSError, StopIteration):
            pass
    return total

def sample():
    while process.poll() is None:
        peak[0] = max(peak[0], tree_rss_kib(process.pid))
        time.sleep(0.2)

threading.Thread(target=sample, daemon=True).start()
_, status, usage = os.wait4(process.pid, 0)
print({MEASURE_PREFIX!r} + json.dumps({{"returncode": os.waitstatus_to_exitcode(status), "maxrss_kib": usage.ru_maxrss,
      "tree_peak_rss_kib": peak[0], "cpu_seconds": usage.ru_utime + usage.ru_stime}}), flush=True)
"""
"""Runs a command and prints its peak RSS and CPU time. A child's ``ru_maxrss`` also counts
the memory of the process it was forked (or vforked) from until its ``exec``, so the
command is started from this small launcher, not from the driver, whose own peak (the
scrypt of the keystores, about 256 MiB, during people setup) would otherwise be reported.
``ru_maxrss`` is one process's peak; a command with worker processes (``verify all
--workers``) is also sampled every 0.2 s as a tree (the sum of every descendant's RSS)."""


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def proc_status(pid: int, field_name: str) -> int | None:
    """A ``kB`` field of /proc/<pid>/status in bytes (VmHWM, VmRSS), or None."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field_name + ":"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def worker_pids(pid: int) -> list[int]:
    """The Python worker processes ``pid`` started with ``multiprocessing`` (the server's
    prepare workers; not its anvil)."""
    workers = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                if (
                    int(Path(f"/proc/{name}/stat").read_text().rsplit(")", 1)[1].split()[1]) == pid
                    and b"multiprocessing" in Path(f"/proc/{name}/cmdline").read_bytes()
                ):
                    workers.append(int(name))
            except (OSError, ValueError, IndexError):
                pass
    return workers


def proc_cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def disk_usage(path: Path) -> tuple[int, int]:
    """(bytes on disk, files) under ``path``."""
    used = files = 0
    stack = [path]
    while stack:
        try:
            with os.scandir(stack.pop()) as entries:
                for entry in entries:
                    if entry.is_dir(follow_symlinks=False):
                        stack.append(Path(entry.path))
                    else:
                        used += entry.stat(follow_symlinks=False).st_blocks * 512
                        files += 1
        except FileNotFoundError:
            continue
    return used, files


def check_disk(where: Path, *, photos: int, photo_bytes: int, entries: int) -> dict[str, float]:
    """Refuse to start when the photos, records and database would not fit."""
    block = 4096
    need_bytes = (
        photos * (-(-photo_bytes // block) * block)
        + entries * block  # block store, one file per block
        + entries * 3000
        + photos * 600  # database rows and indexes (measured at small scale, rounded up)
        + 2 * (1 << 30)
    )  # margin
    need_files = photos + entries + 10_000
    stats = os.statvfs(where)
    free_bytes, free_files = stats.f_bavail * stats.f_frsize, stats.f_favail
    if free_bytes < need_bytes or (stats.f_files and free_files < need_files):
        raise SystemExit(
            f"not enough room under {where}: this night needs about {need_bytes / 2**30:.1f} GiB and {need_files:,} files "
            f"({photos:,} photos of {photo_bytes:,} bytes, {entries:,} ledger entries), and there are "
            f"{free_bytes / 2**30:.1f} GiB and {free_files:,} files free. Use --data-dir on a larger disk, fewer --units "
            "or smaller --photo-bytes."
        )
    return {"need_gib": need_bytes / 2**30, "free_gib": free_bytes / 2**30}


def percentile(values: list[float], share: float) -> float:
    return values[min(len(values) - 1, int(len(values) * share))] if values else 0.0


@dataclass
class Stage:
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


class Progress:
    """Logs, about every minute of a long stage, what the ledger holds and the rate since the last line."""

    def __init__(self, night: Night, stage: str, every: float = 60.0):
        self.night, self.stage, self.every = night, stage, every
        self.last_time = time.monotonic()
        self.last = self.counts()

    def counts(self) -> tuple[int, int]:
        from sqlalchemy import text

        with self.night.observer().engine.connect() as connection:
            photos = connection.execute(text("SELECT count(*) FROM photos")).scalar_one()
            entries = connection.execute(text("SELECT count(*) FROM entries")).scalar_one()
        return int(photos), int(entries)

    def maybe_log(self) -> None:
        now = time.monotonic()
        if now - self.last_time < self.every:
            return
        counts = self.counts()
        seconds = now - self.last_time
        self.night.say(
            f"  {self.stage} in progress: {counts[0]:,} photos ({(counts[0] - self.last[0]) / seconds:,.0f}/s), "
            f"{counts[1]:,} entries ({(counts[1] - self.last[1]) / seconds:,.0f}/s); server RSS "
            f"{self.night.server_rss_mib():.0f} MiB, load average {os.getloadavg()[0]:.2f}"
        )
        self.last, self.last_time = counts, now


class Night:
    """The driver: people, the server, the clients, the stages, the figures."""

    def __init__(self, arguments: argparse.Namespace):
        from ledger.cli.demo import choose_constituencies
        from ledger.election import load_election

        self.arguments = arguments
        self.seed = arguments.seed
        self.election = load_election("th2566")
        requested = arguments.units or self.election.unit_count
        self.constituencies = choose_constituencies(self.election, requested)
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
        self.env = {
            **os.environ,
            "TALLY_DATA_DIR": str(self.data_dir),
            "TALLY_RATE_LIMIT_ENABLED": "false",
            "TALLY_BATCH_MAX_RECORDS": str(arguments.batch_max_records),
            "TALLY_BATCH_MAX_AGE_SECONDS": str(arguments.batch_max_age),
            "TALLY_ANVIL_PORT": str(self.anvil_port),
            "TALLY_PORT": str(self.port),
        }
        self.env.pop("TALLY_RPC_URL", None)
        if arguments.database_url:
            self.env["TALLY_DATABASE_URL"] = arguments.database_url
        else:
            self.env.pop("TALLY_DATABASE_URL", None)
        self.database_url = arguments.database_url or f"sqlite:///{self.data_dir / 'tally.db'}"
        self.war_room_token: str | None = None

    # -- output --

    def say(self, message: str) -> None:
        elapsed = time.monotonic() - self.started
        print(f"[{elapsed:7.1f} s] {message}", flush=True)

    def over_deadline(self) -> bool:
        return self.deadline is not None and time.monotonic() > self.deadline

    # -- people (untimed) --

    def setup_people(self) -> None:
        from sqlalchemy import insert, select

        from ledger.app import open_app
        from ledger.cli.demo import ORGANISATIONS as DEMO_ORGANISATIONS
        from ledger.core.signing import address_from_private_key
        from ledger.settings import Settings
        from ledger.store import Entry
        from ledger.store.review_models import Assignment

        started = time.perf_counter()
        settings = Settings(
            data_dir=self.data_dir, database_url=self.arguments.database_url, batch_max_records=self.arguments.batch_max_records
        )
        app = open_app(settings)
        try:
            with app.database.session() as session:
                if session.scalar(select(Entry.id).limit(1)) is not None:
                    raise SystemExit(f"the database {app.database.url} already holds entries; the benchmark needs a fresh one")
            review = app.review
            for organisation_id, name, kind in DEMO_ORGANISATIONS:
                review.create_organisation(organisation_id=organisation_id, name=name, kind=kind)
            assert tuple(o for o, _, _ in DEMO_ORGANISATIONS) == ORGANISATIONS
            review.register_member(
                address=address_from_private_key(war_room_key(self.seed)),
                level=3,
                name="War room duty officer",
                organisation_id=None,
                registered_by="admin",
            )
            now = datetime.now(UTC)
            assignments: list[dict[str, Any]] = []
            addresses = []
            for constituency in self.constituencies:
                units = [u.id for u in self.election.polling_units(constituency.id)]
                for organisation in ORGANISATIONS:
                    address = address_from_private_key(volunteer_key(self.seed, organisation, constituency.id))
                    review.register_member(
                        address=address,
                        level=1,
                        name=f"{organisation} volunteer, {constituency.id}",
                        organisation_id=organisation,
                        contact="(private)",
                        registered_by=f"coordinator of {organisation}",
                    )
                    addresses.append(address)
                    assignments += [
                        {
                            "address": address,
                            "area": unit,
                            "constituency_id": constituency.id,
                            "assigned_at": now,
                            "assigned_by": f"coordinator of {organisation}",
                        }
                        for unit in units
                    ]
            with app.database.session() as session:
                for start in range(0, len(assignments), 20_000):
                    session.execute(insert(Assignment), assignments[start : start + 20_000])
            self._register_api_volunteers(app, [*addresses, address_from_private_key(war_room_key(self.seed))], now)
        finally:
            app.close()
        seconds = time.perf_counter() - started
        self.figures["national_setup_people_seconds"] = round(seconds, 2)
        self.figures["national_volunteers"] = len(addresses)
        self.say(
            f"people: 3 organisations, {len(addresses):,} volunteers with {len(assignments):,} unit assignments, "
            f"1 war-room member, in {seconds:.1f} s (in-process, untimed for the night)"
        )

    @staticmethod
    def _register_api_volunteers(app: Any, addresses: list[str], now: datetime) -> None:
        """Where the API signs people in from its ``volunteers`` table, list them there too (unless
        registering them as members already did)."""
        try:
            from ledger.store import Volunteer
        except ImportError:
            return
        from sqlalchemy import insert, select

        with app.database.session() as session:
            listed = set(session.scalars(select(Volunteer.address)))
            missing = [{"address": a, "name": None, "registered_at": now} for a in addresses if a not in listed]
            if missing:
                session.execute(insert(Volunteer), missing)

    # -- server and clients --

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
        statuses: dict[int, int] = {}
        latencies: list[float] = []
        counters: dict[str, float] = {}
        errors: list[str] = []
        client_cpu = 0.0
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
                self.war_room_token = result["war_room_token"]
        latencies.sort()
        record = Stage(
            stage,
            seconds,
            counted(statuses, counters),
            unit,
            server_cpu=self.server_cpu() - server_before,
            client_cpu=client_cpu,
            complete=complete,
            server_rss_mib=self.server_rss_mib(),
        )
        record.extra = {
            "statuses": statuses,
            "p50_ms": 1000 * percentile(latencies, 0.5),
            "p99_ms": 1000 * percentile(latencies, 0.99),
            "max_ms": 1000 * (latencies[-1] if latencies else 0.0),
            "counters": counters,
            "errors": errors,
            "requests": len(latencies),
        }
        self.stages.append(record)
        failures = {s: n for s, n in statuses.items() if s >= 400}
        self.say(
            f"{stage}: {record.count:,} {unit} in {seconds:.1f} s = {record.rate:,.1f}/s; "
            f"{len(latencies):,} requests, p50 {record.extra['p50_ms']:.1f} ms p99 {record.extra['p99_ms']:.1f} ms; "
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

    def certify(self, review_path: str) -> Stage:
        """The war room works its queue (``GET /v1/review/queue``): every unit the server
        accepted, then every constituency that is complete, a page at a time, the decisions
        signed and sent by the clients. Units the server did not accept (flagged) are then
        taken one by one from their review: the war room accepts the first report and certifies."""
        import httpx

        server_before = self.server_cpu()
        started = time.perf_counter()
        ours = {c.id for c in self.constituencies}
        headers = {"Authorization": f"Bearer {self.war_room_token}"}
        rounds: list[list[dict[str, Any]]] = []
        complete = True
        queue_seconds, pages = 0.0, 0
        while not self.over_deadline():
            asked = time.perf_counter()
            answer = httpx.get(f"{self.base}/v1/review/queue", params={"limit": 1000}, headers=headers, timeout=120)
            queue_seconds += time.perf_counter() - asked
            pages += 1
            if answer.status_code != 200:
                raise SystemExit(f"the war room's queue answered {answer.status_code}: {answer.text[:500]}")
            queue = answer.json()
            decisions = [
                {
                    "decision_id": f"cert{self.seed}-{item['unit']}",
                    "action": "certify",
                    "subject": item["unit"],
                    "record": item["accepted_cid"],
                }
                for item in queue["units_to_certify"]
                if item["constituency_id"] in ours and item["accepted_cid"]
            ]
            decisions += [
                {"decision_id": f"certc{self.seed}-{c}", "action": "certify_constituency", "subject": c}
                for c in queue["constituencies_ready"]
                if c in ours
            ]
            if not decisions:
                break
            count = len(self.clients)
            results, _, finished = self.run_clients(
                "decide", war_room_token=self.war_room_token, shares=[decisions[i::count] for i in range(count)]
            )
            rounds.append(results)
            complete = complete and finished
        # Units the server did not accept automatically: their constituencies, unit by unit.
        certified = httpx.get(f"{self.base}/v1/aggregates/certified/constituencies", timeout=120).json()
        items = certified.get("constituencies", certified) if isinstance(certified, dict) else certified
        incomplete = [
            c["constituency_id"] for c in items if c["constituency_id"] in ours and c["units_reporting"] < c["units_total"]
        ]
        if incomplete and not self.over_deadline():
            self.say(
                f"certify: {len(incomplete)} constituencies have units the server did not accept; the war room takes "
                "them unit by unit"
            )
            results, _, finished = self.run_clients(
                "certify", war_room_token=self.war_room_token, review_path=review_path, only=incomplete
            )
            rounds.append(results)
            complete = complete and finished
        complete = complete and not self.over_deadline()
        record = self.record_stage(
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
        self.say(
            f"certify: {record.count:,} units and {constituencies} constituencies certified; {pages} pages of the "
            f"war-room queue read in {queue_seconds:.1f} s; {int(counters.get('accepted_by_war_room', 0))} units "
            "accepted by the war room first"
        )
        return record

    # -- polling the ledger --

    def entry_counts(self) -> tuple[int, int]:
        """(entries, pending entries), read-only from the database (the API has no pending count)."""
        from sqlalchemy import text

        with self.observer().engine.connect() as connection:
            total = connection.execute(text("SELECT count(*) FROM entries")).scalar_one()
            pending = connection.execute(text("SELECT count(*) FROM entries WHERE batch_id IS NULL")).scalar_one()
        return int(total), int(pending)

    def observer(self) -> Any:
        """A read-only look at the database (for what the API does not count)."""
        from ledger.store import Database

        if not hasattr(self, "_observer"):
            self._observer = Database(self.database_url)
        return self._observer

    def batches(self) -> list[dict[str, Any]]:
        import httpx

        rows: list[dict[str, Any]] = []
        offset: int | None = 0
        while offset is not None:
            page = httpx.get(f"{self.base}/v1/batches", params={"offset": offset, "limit": 1000}, timeout=60).json()
            rows += page["batches"]
            offset = page.get("next_offset")
        return rows

    def wait_stage(self, name: str, done: Callable[[], tuple[bool, int]], unit: str, *, poll: float = 0.25) -> Stage:
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

    def screened(self) -> tuple[bool, int]:
        """Every accepted tally screened (the server may screen off the submission path): the
        unit reviews have seen as many reports as there are tallies (read-only, in the database)."""
        from sqlalchemy import text

        with self.observer().engine.connect() as connection:
            tallies = connection.execute(text("SELECT count(*) FROM entries WHERE kind = 'tally'")).scalar_one()
            seen = connection.execute(text("SELECT coalesce(sum(report_count), 0) FROM unit_reviews")).scalar_one()
        return int(seen) >= int(tallies), int(seen)

    def sealed(self) -> tuple[bool, int]:
        total, pending = self.entry_counts()
        return pending == 0, total

    def anchored(self) -> tuple[bool, int]:
        total, pending = self.entry_counts()
        batches = self.batches()
        in_batches = sum(b["record_count"] for b in batches)
        done = pending == 0 and in_batches == total and all(b["status"] == "anchored" for b in batches)
        return done, len(batches)

    def certified_everywhere(self) -> tuple[bool, int]:
        import httpx

        national = httpx.get(f"{self.base}/v1/aggregates/certified/national", timeout=60).json()
        return national["units_reporting"] >= self.unit_count, int(national["units_reporting"])

    def api_has(self, method: str, path: str) -> bool:
        import httpx

        paths = httpx.get(f"{self.base}/openapi.json", timeout=60).json().get("paths", {})
        return method.lower() in paths.get(path, {})

    def review_path(self) -> str | None:
        import httpx

        paths = httpx.get(f"{self.base}/openapi.json", timeout=60).json().get("paths", {})
        for candidate in ("/v1/units/{unit_id}/review", "/v1/review/units/{unit_id}", "/v1/units/{unit}/review"):
            if "get" in paths.get(candidate, {}):
                return candidate.replace("{unit_id}", "{unit}")
        return None

    # -- the night --

    def prepare(self) -> None:
        """Check that the night fits on disk and that its photos are valid; nothing started yet."""
        arguments = self.arguments
        self.say(
            f"national night: {len(self.constituencies)} constituencies, {self.unit_count:,} units, {self.reports:,} "
            f"reports, {self.photo_count:,} photos of {arguments.photo_bytes:,} bytes; data in {self.data_dir}"
        )
        space = check_disk(
            self.data_dir.parent if not self.data_dir.exists() else self.data_dir,
            photos=self.photo_count,
            photo_bytes=arguments.photo_bytes,
            entries=self.reports + 2 * self.unit_count,
        )
        self.say(f"disk: about {space['need_gib']:.1f} GiB needed, {space['free_gib']:.1f} GiB free")
        self.figures.update(
            {
                "national_units": self.unit_count,
                "national_constituencies": len(self.constituencies),
                "national_reports": self.reports,
                "national_photos": self.photo_count,
                "national_photo_bytes": arguments.photo_bytes,
                "national_cpus": os.cpu_count() or 0,
                "national_full_scale": int(self.full_scale),
                "national_database": "postgresql" if arguments.database_url else "sqlite",
                "national_load_average_at_start": round(os.getloadavg()[0], 2),
            }
        )
        self.data_dir.mkdir(parents=True, exist_ok=True)
        photo = PhotoMaker(
            arguments.photo_bytes, taken_at=datetime(2023, 5, 14, 11, 30, tzinfo=UTC), location=(13.7563, 100.5018)
        ).photo("board", "CHECK-0001/civic-watch/board")
        exif = check_photo(photo)
        self.say(f"photo check: {len(photo):,} bytes, opens as JPEG, EXIF taken_at {exif['taken_at']} gps {exif['gps']}")

    def run(self) -> None:
        self.setup_people()
        self.start_server()
        self.start_clients()

        self.client_stage("signin", counted=lambda _, c: int(c.get("signed_in", 0)), unit="people signed in", war_room=True)
        night_started = time.perf_counter()
        upload = self.client_stage("upload", counted=lambda s, _: s.get(201, 0) + s.get(200, 0), unit="photos")
        upload.extra["mb_per_s"] = upload.extra["counters"].get("bytes", 0) / upload.seconds / 1e6 if upload.seconds else 0
        for problem in ("cid_mismatch", "exif_missing"):
            if upload.extra["counters"].get(problem):
                self.notes.append(f"upload: {int(upload.extra['counters'][problem]):,} photos with {problem}")
        if self.over_deadline():
            return
        self.client_stage("submit", counted=lambda s, _: s.get(201, 0), unit="tallies")
        if self.over_deadline():
            return
        self.wait_stage("screen", self.screened, "reports screened")
        self.wait_stage("seal", self.sealed, "entries")
        self.wait_stage("anchor", self.anchored, "batches", poll=0.5)
        night_end = time.perf_counter()
        if self.over_deadline():
            return
        review_path = self.review_path()
        if not self.api_has("post", "/v1/decisions") or review_path is None or self.war_room_token is None:
            missing = [
                what
                for what, ok in (
                    ("POST /v1/decisions", self.api_has("post", "/v1/decisions")),
                    ("a unit review endpoint", review_path is not None),
                    ("a war-room session", self.war_room_token is not None),
                )
                if not ok
            ]
            self.notes.append(f"certify, aggregate: not measured — the API has no {', '.join(missing)} yet")
            self.say(self.notes[-1])
        else:
            self.certify(review_path)
            self.wait_stage("aggregate", self.certified_everywhere, "units in the certified national aggregate", poll=0.1)
            self.wait_stage("anchor_decisions", self.anchored, "batches", poll=0.5)
            night_end = time.perf_counter()
            self.figures["national_certified_complete"] = int(all(s.complete for s in self.stages))
        self.figures["national_night_seconds"] = round(night_end - night_started, 1)
        self.figures["national_night_includes_certify"] = int(any(s.name == "certify" for s in self.stages))
        self.verify_all()

    def verify_all(self) -> None:
        if self.over_deadline():
            self.notes.append("verify all: not run (deadline)")
            return
        log = self.scratch / "verify.log"
        command = [
            PYTHON,
            "-m",
            "ledger.cli",
            "verify",
            "all",
            "--content",
            f"blocks:{self.data_dir / 'blocks'}",
            "--api",
            self.base,
        ]
        self.say("verify all: " + " ".join(command[1:]))
        started = time.perf_counter()
        with log.open("wb") as handle:
            completed = subprocess.run(
                [PYTHON, "-c", MEASURE_CHILD, *command],
                env=self.env,
                stdout=handle,
                stderr=subprocess.STDOUT,
                cwd=ROOT,
                check=False,
            )
        seconds = time.perf_counter() - started
        output = log.read_text("utf-8", "replace")
        usage = json.loads(output.rsplit(MEASURE_PREFIX, 1)[1]) if MEASURE_PREFIX in output else {}
        returncode = usage.get("returncode", completed.returncode)
        summary = [line for line in output.splitlines() if line.startswith(("OK ", "FAILED ", "certified:", "MISMATCH"))]
        self.figures["national_verify_all_seconds"] = round(seconds, 1)
        if "maxrss_kib" in usage:
            # the whole tree (verify and its worker processes) when sampled, else the one process
            peak_kib = max(usage["maxrss_kib"], usage.get("tree_peak_rss_kib", 0))
            self.figures["national_verify_all_peak_rss_mib"] = round(peak_kib * 1024 / MIB, 1)
            self.figures["national_verify_all_largest_process_rss_mib"] = round(usage["maxrss_kib"] * 1024 / MIB, 1)
        self.figures["national_verify_all_ok"] = int(returncode == 0)
        self.stages.append(Stage("verify", seconds, 0, "", client_cpu=usage.get("cpu_seconds", 0.0)))
        self.say(
            f"verify all: exit {returncode} in {seconds:.1f} s, peak RSS "
            f"{max(usage.get('maxrss_kib', 0), usage.get('tree_peak_rss_kib', 0)) / 1024:.0f} MiB (with its workers); "
            + " | ".join(summary[-3:])
        )
        if returncode != 0:
            self.notes.append(f"verify all failed (exit {returncode}); see {log}: " + " | ".join(summary[:3]))

    # -- after the night --

    def measure_footprint(self) -> None:
        from ledger.chain.anvil import AnvilNode
        from ledger.settings import Settings

        if self.server is not None and self.server.poll() is None:
            try:
                anvil = AnvilNode.from_settings(Settings(data_dir=self.data_dir, anvil_port=self.anvil_port)).running_pid()
            except Exception:
                anvil = None
            # The server's peak with its prepare workers: the sum of each process's own peak
            # (at least the peak of the sum). Anvil, also a child, is reported apart.
            workers = worker_pids(self.server.pid)
            peaks = [proc_status(pid, "VmHWM") for pid in (self.server.pid, *workers)]
            if peaks[0] is not None:
                self.figures["national_server_peak_rss_mib"] = round(sum(p or 0 for p in peaks) / MIB, 1)
                self.figures["national_server_main_peak_rss_mib"] = round(peaks[0] / MIB, 1)
                self.figures["national_server_workers"] = len(workers)
            self.figures["national_server_cpu_seconds"] = round(self.server_cpu(), 1)
            if anvil is not None and (anvil_peak := proc_status(anvil, "VmHWM")) is not None:
                self.figures["national_anvil_peak_rss_mib"] = round(anvil_peak / MIB, 1)
        if self.arguments.database_url:
            from sqlalchemy import text

            from ledger.store import Database

            database = Database(self.arguments.database_url)
            with database.engine.connect() as connection:
                size = connection.execute(text("SELECT pg_database_size(current_database())")).scalar_one()
            database.dispose()
        else:
            size = sum(p.stat().st_blocks * 512 for p in self.data_dir.glob("tally.db*"))
        self.figures["national_database_mib"] = round(int(size) / MIB, 1)
        blocks, files = disk_usage(self.data_dir / "blocks")
        self.figures["national_block_store_mib"] = round(blocks / MIB, 1)
        self.figures["national_block_store_files"] = files
        total, pending = self.entry_counts()
        self.figures["national_entries"] = total
        self.say(
            f"footprint: server peak {self.figures.get('national_server_peak_rss_mib')} MiB (anvil "
            f"{self.figures.get('national_anvil_peak_rss_mib')} MiB), "
            f"database {self.figures['national_database_mib']:,} MiB, "
            f"block store {self.figures['national_block_store_mib']:,} MiB in {files:,} files; {total:,} entries "
            f"({pending:,} pending)"
        )

    def side_by_side(self) -> None:
        """CID vs SHA-256, our batches vs OpenZeppelin's, ingest vs a bare endpoint (nothing else running)."""
        import bench_api
        import bench_cid

        from ledger.core.unixfs import file_cid

        photo = PhotoMaker(
            self.arguments.photo_bytes, taken_at=datetime(2023, 5, 14, 11, 30, tzinfo=UTC), location=(13.7563, 100.5018)
        ).photo("board", "SIDE-0001/civic-watch/board")
        best_cid = best_sha = 0.0
        for _ in range(5):
            best_sha = max(best_sha, bench_cid._best_rate(lambda: hashlib.sha256(photo).digest(), len(photo), 0.3))
            best_cid = max(best_cid, bench_cid._best_rate(lambda: file_cid(photo), len(photo), 0.3))
        self.figures["national_photo_cid_mbps"] = round(best_cid, 1)
        self.figures["national_photo_sha256_mbps"] = round(best_sha, 1)
        self.figures["national_photo_cid_vs_sha256_ratio"] = round(best_cid / best_sha, 3)
        self.say(
            f"side by side, CID of a {len(photo):,}-byte photo: {best_cid:,.0f} MB/s against raw SHA-256 "
            f"{best_sha:,.0f} MB/s (ratio {best_cid / best_sha:.3f})"
        )

        submit = next((s for s in self.stages if s.name == "submit"), None)
        if submit is not None and self.arguments.bare_tallies > 0 and self.clients:
            (self.scratch / "bare.py").write_text(bench_api.BARE_APP)
            port = free_port()
            bare = bench_api.start(
                [
                    PYTHON,
                    "-m",
                    "uvicorn",
                    "bare:app",
                    "--app-dir",
                    str(self.scratch),
                    "--port",
                    str(port),
                    "--loop",
                    "uvloop",
                    "--http",
                    "httptools",
                    "--no-access-log",
                    "--log-level",
                    "warning",
                ],
                self.env,
                self.scratch / "bare.log",
            )
            try:
                bench_api.wait_until_up(port, "/constant", bare)
                per_client = max(1, self.arguments.bare_tallies // len(self.clients))
                results, _, _ = self.run_clients("bare", honour_deadline=False, port=port, tallies=per_client)
                sent = sum(sum(r["statuses"].values()) for r in results)
                seconds = max(r["counters"]["send_seconds"] for r in results)
                rate = sent / seconds
            finally:
                bench_api.stop(bare)
            self.figures["national_bare_post_per_s"] = round(rate, 1)
            self.figures["national_submit_vs_bare"] = round(submit.rate / rate, 4)
            self.say(
                f"side by side, ingest: POST /v1/tallies {submit.rate:,.1f}/s in the night (signing inline) against the "
                f"bare FastAPI endpoint {rate:,.0f}/s on {sent:,} pre-signed tallies of this night "
                f"(ratio {submit.rate / rate:.4f})"
            )
        if "national_verify_all_seconds" in self.figures:
            ingest_seconds = sum(s.seconds for s in self.stages if s.name in ("upload", "submit"))
            if ingest_seconds:
                ratio = self.figures["national_verify_all_seconds"] / ingest_seconds
                self.figures["national_verify_vs_ingest_ratio"] = round(ratio, 3)
                self.say(
                    f"side by side, verify all {self.figures['national_verify_all_seconds']:.0f} s against ingest "
                    f"(upload + submit) {ingest_seconds:.0f} s: ratio {self.figures['national_verify_vs_ingest_ratio']:.3f}"
                )

    def merkle_side_by_side(self) -> None:
        if self.arguments.merkle_leaves <= 0:
            return
        import bench_merkle

        count = self.arguments.merkle_leaves
        values = bench_merkle.synthetic_values(count)
        runs = [bench_merkle.time_python(values) for _ in range(3)]
        python_total = sorted(float(r["total_seconds"]) for r in runs)[1]
        self.figures["national_merkle_leaves"] = count
        self.figures["national_merkle_build_seconds"] = round(python_total, 3)
        oz = bench_merkle.time_oz(values)
        if oz["root"] != runs[0]["root"]:
            self.notes.append(f"merkle: roots differ, ledger.core {runs[0]['root']} against OpenZeppelin {oz['root']}")
        oz_total = float(oz["total_seconds"])
        self.figures["national_merkle_oz_js_build_seconds"] = round(oz_total, 3)
        self.figures["national_merkle_speedup_vs_oz_js"] = round(oz_total / python_total, 1)
        self.say(
            f"side by side, a batch of {count:,} leaves with every proof: ledger.core {python_total:.2f} s against "
            f"@openzeppelin/merkle-tree {oz_total:.1f} s ({oz_total / python_total:.0f}x); "
            f"same root: {oz['root'] == runs[0]['root']}"
        )

    # -- figures --

    def stage_figures(self) -> None:
        for stage in self.stages:
            prefix = f"national_{stage.name}"
            self.figures[f"{prefix}_seconds"] = round(stage.seconds, 2)
            if stage.name != "verify":
                self.figures[f"{prefix}_server_cpu_seconds"] = round(stage.server_cpu, 1)
            if stage.client_cpu and stage.name != "verify":
                self.figures[f"{prefix}_load_generator_cpu_seconds"] = round(stage.client_cpu, 1)
            if not stage.complete:
                self.figures[f"{prefix}_unfinished"] = 1
            if stage.server_rss_mib:
                self.figures[f"{prefix}_server_rss_mib_after"] = round(stage.server_rss_mib, 1)
            if stage.name in ("upload", "submit", "certify", "signin"):
                self.figures[f"{prefix}_count"] = stage.count
                self.figures[f"{prefix}_per_s"] = round(stage.rate, 1)
                self.figures[f"{prefix}_p50_ms"] = round(stage.extra["p50_ms"], 1)
                self.figures[f"{prefix}_p99_ms"] = round(stage.extra["p99_ms"], 1)
                failed = sum(n for s, n in stage.extra["statuses"].items() if s >= 400)
                self.figures[f"{prefix}_failed_requests"] = failed
                if "sign_cpu_seconds" in stage.extra["counters"]:
                    self.figures[f"{prefix}_client_signing_cpu_seconds"] = round(stage.extra["counters"]["sign_cpu_seconds"], 1)
            if stage.name == "upload":
                self.figures["national_upload_mb_per_s"] = round(stage.extra.get("mb_per_s", 0), 1)
            if stage.name in ("anchor", "anchor_decisions"):
                self.figures[f"{prefix}_batches"] = stage.count
        self.figures["national_completed_stages"] = ",".join(s.name for s in self.stages if s.complete)

    def report(self) -> None:
        print()
        print(f"{'stage':<18}{'wall s':>9}{'count':>11}  {'rate':<24}{'server CPU s':>13}{'client CPU s':>13}")
        for stage in self.stages:
            waited = stage.name in ("screen", "seal", "anchor", "anchor_decisions", "aggregate", "verify")
            rate = f"{stage.rate:,.1f} {stage.unit}/s" if stage.count and not waited else ""
            print(
                f"{stage.name:<18}{stage.seconds:>9.1f}{stage.count:>11,}  {rate[:24]:<24}{stage.server_cpu:>13.0f}"
                f"{stage.client_cpu:>13.0f}" + ("" if stage.complete else "  UNFINISHED")
            )
        print()
        scale = "" if self.full_scale else f" (at {self.unit_count:,} of {self.election.unit_count:,} units, not national)"
        print(f"{'goal':<42}{'figure':>12}{'limit':>10}  result")
        for name, what, limit, unit in GOALS:
            value = self.figures.get(name)
            if value is None:
                result, shown = "not measured", "-"
            else:
                met = value < limit
                if name == "national_night_seconds" and not self.figures.get("national_night_includes_certify"):
                    met = False
                    result = "missed (certify not measured)" if value < limit else "MISSED (certify not measured)"
                else:
                    result = "met" if met else "MISSED"
                shown = f"{value:,.1f} {unit}"
            print(f"{what:<42}{shown:>12}{f'{limit:,} {unit}':>10}  {result}{scale if name == 'national_night_seconds' else ''}")
            if value is not None:
                whole = name != "national_night_seconds" or bool(self.figures.get("national_night_includes_certify"))
                self.figures[f"{name.removesuffix('_seconds').removesuffix('_mib')}_goal_met"] = int(value < limit and whole)
        print()
        print(
            "The load generator runs on the same 2 cores as the server (and anvil); its CPU time, including signing every "
            "tally in the client, is in the table."
        )
        for note in self.notes:
            print(f"note: {note}")

    def write(self) -> None:
        if self.arguments.no_write:
            return
        results = Path(self.arguments.results)
        existing: dict[str, Any] = json.loads(results.read_text("utf-8")) if results.exists() else {}
        if not isinstance(existing, dict):
            raise SystemExit(f"{results} does not hold a JSON object; not overwriting it")
        kept = {k: v for k, v in existing.items() if not k.startswith("national_")}
        kept.update(self.figures)
        results.parent.mkdir(parents=True, exist_ok=True)
        temporary = results.with_name(f".{results.name}.{os.getpid()}.tmp")
        temporary.write_text(json.dumps(dict(sorted(kept.items())), indent=2) + "\n", encoding="utf-8")
        os.replace(temporary, results)
        print(f"merged {len(self.figures)} figures into {results}")

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
        if hasattr(self, "_observer"):
            self._observer.dispose()
        if self.temporary and not self.arguments.keep:
            shutil.rmtree(self.scratch, ignore_errors=True)
        else:
            print(f"data kept in {self.data_dir}; logs in {self.scratch}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="tally bench",
        description=__doc__.split("\n\n")[0],
        epilog="See the module docstring of scripts/bench_national.py for the stages and figures.",
    )
    parser.add_argument(
        "--units",
        type=int,
        default=0,
        help="about this many polling units, whole constituencies spread over the country (default: all 95,099)",
    )
    parser.add_argument("--photo-bytes", type=int, default=20_000, help="size of each photo (default 20,000)")
    parser.add_argument("--database-url", help="PostgreSQL URL of an empty database (default: SQLite in the data directory)")
    parser.add_argument("--data-dir", help="a fresh data directory (default: a temporary one under /tmp, removed afterwards)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary data directory and logs")
    parser.add_argument("--clients", type=int, default=2, help="load-generator processes (default 2)")
    parser.add_argument("--connections", type=int, default=4, help="keep-alive connections per load-generator process")
    parser.add_argument("--batch-max-records", type=int, default=10_000, help="TALLY_BATCH_MAX_RECORDS (default 10,000)")
    parser.add_argument("--batch-max-age", type=float, default=30.0, help="TALLY_BATCH_MAX_AGE_SECONDS (default 30)")
    parser.add_argument("--seed", type=int, default=2566)
    parser.add_argument("--merkle-leaves", type=int, default=100_000, help="leaves of the OpenZeppelin comparison (0 skips it)")
    parser.add_argument("--bare-tallies", type=int, default=20_000, help="tallies sent to the bare endpoint (0 skips it)")
    parser.add_argument(
        "--deadline-minutes", type=float, default=0, help="stop the night after this long and report what finished"
    )
    parser.add_argument("--no-write", action="store_true", help="print only; leave bench/results.json alone")
    parser.add_argument("--results", default=str(RESULTS), help="the results file to merge into (default bench/results.json)")
    arguments = parser.parse_args(argv)
    if arguments.photo_bytes < 2048:
        parser.error("--photo-bytes must be at least 2,048")

    def interrupted(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, interrupted)
    night = Night(arguments)
    try:
        night.prepare()
    except SystemExit:
        night.close()
        raise
    failed = False
    try:
        try:
            night.run()
        except (KeyboardInterrupt, SystemExit) as exc:
            night.notes.append(f"the run stopped ({exc}); the figures are of the stages that finished")
            failed = True
        finally:
            night.stage_figures()
            try:
                night.measure_footprint()
            except Exception as exc:  # report what can be reported
                night.notes.append(f"footprint not measured: {exc}")
        if not failed:  # short and bounded: measured even when the night ran out of time
            night.side_by_side()
    finally:
        night.close()
    if not failed:
        night.merkle_side_by_side()
    night.report()
    if failed:
        print("bench/results.json left alone: the run failed")
    else:
        night.write()
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
