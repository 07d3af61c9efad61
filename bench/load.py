"""The national night's load generator: ``--clients`` processes, each owning whole
constituencies, its people's keys and sessions, sending over raw keep-alive connections
(``bench.client``). The driver (``bench.national``) sends each process one stage at a
time through a pipe; the war room's stages are in ``bench.war_room``.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing.connection
import signal
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

from bench.client import Connection, Tally, http_request, timed
from bench.people import ORGANISATIONS, volunteer_key, war_room_key
from bench.photos import PHOTO_ROLES, PhotoMaker
from bench.war_room import WarRoomStages

__all__ = ["Client", "client_process"]


class Client(WarRoomStages):
    """One load-generator process: its constituencies, its people's keys and sessions."""

    sign_cpu = 0.0

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
        """``handle`` every item on ``connections`` keep-alive connections, until done or stopped."""
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
        """``POST /v1/auth/challenge``, then ``/v1/auth/session`` with the EIP-191 signature: a token."""
        from eth_account import Account
        from eth_account.messages import encode_defunct

        request = http_request("POST", "/v1/auth/challenge", body=json.dumps({"address": address}).encode())
        status, body = await timed(connection, request, tally, "challenge")
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
        from ledger.core.timefmt import format_time_seconds
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
                        "submitted_at": format_time_seconds(self.simulator.report_time(unit, report)),
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
