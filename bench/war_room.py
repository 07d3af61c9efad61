"""The war room's stages of the load generator: signed ``tally-decision-v1`` decisions
(``sign_decision``) sent through ``POST /v1/decisions``, signed in the client process
(that signing is counted as the client's CPU time)."""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from bench.client import Connection, Tally, http_request, timed
from bench.people import war_room_key

__all__ = ["WarRoomStages"]


class WarRoomStages:
    """The war room's stages of ``bench.load.Client`` (which holds what is declared here)."""

    seed: int
    election: Any
    config: dict[str, Any]
    constituencies: list[str]
    war_room_token: str | None
    sign_cpu: float
    pool: Callable[[Iterable[Any], Callable[[Connection, Any, Tally], Awaitable[None]], int], Awaitable[Tally]]

    def decision(self, **fields: Any) -> bytes:
        """A signed war-room decision of ``fields``, as the body of ``POST /v1/decisions``."""
        from ledger.core.timefmt import format_time_seconds
        from wallets.tally_client import sign_decision

        started = time.process_time()
        decision = {"decided_at": format_time_seconds(datetime.now(UTC)), "role": "war_room", **fields}
        signed = sign_decision(decision, war_room_key(self.seed), self.election)
        self.sign_cpu += time.process_time() - started
        return json.dumps(signed, separators=(",", ":")).encode()

    async def post_decision(self, connection: Connection, tally: Tally, token: str, what: str, **fields: Any) -> int:
        request = http_request("POST", "/v1/decisions", token=token, body=self.decision(**fields))
        status, _ = await timed(connection, request, tally, what)
        return status

    async def stage_decide(self, params: dict[str, Any]) -> Tally:
        """This client's share of a page of war-room decisions (fields without role, time, signer)."""
        token = params["war_room_token"]
        self.sign_cpu = 0.0
        share = params["shares"][self.config["index"]]

        async def handle(connection: Connection, fields: dict[str, Any], tally: Tally) -> None:
            status = await self.post_decision(connection, tally, token, f"{fields['action']} of {fields['subject']}", **fields)
            if status in (200, 201):
                tally.add(f"{fields['action']}_ok")

        tally = await self.pool(share, handle, self.config["connections"])
        tally.counters["sign_cpu_seconds"] = self.sign_cpu
        return tally

    async def certify_unit(self, connection: Connection, tally: Tally, token: str, review_path: str, unit_id: str) -> bool:
        """One unit from its review: the war room accepts the first report unless the server
        accepted one, then certifies it. False when the unit has no report at all (its
        constituency then stays uncertified)."""
        request = http_request("GET", review_path.format(unit=unit_id), token=token)
        status, body = await timed(connection, request, tally, f"review of {unit_id}")
        review = json.loads(body) if status == 200 else {}
        if review.get("status") == "certified":
            tally.add("already_certified")
            return True
        if status != 200:
            return True
        record = review.get("accepted")
        if review.get("status") != "accepted" or not record:
            # The server did not accept it automatically: the war room accepts the first report.
            reports = review.get("reports") or []
            if not reports:
                tally.add("no_report")
                return False
            record = reports[0]["record_cid"]
            await self.post_decision(
                connection,
                tally,
                token,
                f"accept of {unit_id}",
                decision_id=f"acc{self.seed}-{unit_id}",
                action="accept",
                subject=unit_id,
                record=record,
                reason="benchmark: the war room accepts the first report",
            )
            tally.add("accepted_by_war_room")
        status = await self.post_decision(
            connection,
            tally,
            token,
            f"certify of {unit_id}",
            decision_id=f"cert{self.seed}-{unit_id}",
            action="certify",
            subject=unit_id,
            record=record,
        )
        if status in (200, 201):
            tally.add("units_certified")
        return True

    async def stage_certify(self, params: dict[str, Any]) -> Tally:
        """Units unit by unit (``certify_unit``), and each constituency once its last unit is done."""
        token = params.get("war_room_token") or self.war_room_token
        if not token:
            raise RuntimeError("the war room has no session")
        self.sign_cpu = 0.0
        constituencies = [c for c in self.constituencies if c in set(params.get("only") or self.constituencies)]
        remaining = {c: sum(1 for _ in self.election.polling_units(c)) for c in constituencies}
        review_path = str(params.get("review_path", "/v1/units/{unit}/review"))

        async def handle(connection: Connection, item: tuple[str, str], tally: Tally) -> None:
            constituency_id, unit_id = item
            if not await self.certify_unit(connection, tally, token, review_path, unit_id):
                return
            remaining[constituency_id] -= 1
            if remaining[constituency_id] == 0:
                status = await self.post_decision(
                    connection,
                    tally,
                    token,
                    f"certify_constituency {constituency_id}",
                    decision_id=f"certc{self.seed}-{constituency_id}",
                    action="certify_constituency",
                    subject=constituency_id,
                )
                if status in (200, 201):
                    tally.add("constituencies_certified")

        items = ((c, unit.id) for c in constituencies for unit in self.election.polling_units(c))
        tally = await self.pool(items, handle, self.config["connections"])
        tally.counters["sign_cpu_seconds"] = self.sign_cpu
        return tally
