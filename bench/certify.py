"""The war room's certify stage of the national night: the queue read by the driver, the
decisions signed and sent by the load-generator processes (``bench.war_room``)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bench.driver import Driver
    from bench.stages import Stage

__all__ = ["certify"]


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
