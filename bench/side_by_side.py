"""The national night's comparisons, run after the night with nothing else running: CID
building against raw SHA-256 on the photo bytes (``bench.cid``), ingest against the bare
FastAPI endpoint (pre-signed tallies of this night), verify all against ingest, and batch
building against ``@openzeppelin/merkle-tree`` (``bench.merkle``)."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from bench.client import free_port
from bench.photos import PhotoMaker
from bench.servers import start_bare, stop, wait_until_up

if TYPE_CHECKING:
    from bench.driver import Driver
    from bench.stages import Stage

__all__ = ["merkle_side_by_side", "side_by_side"]


def _photo_cid(night: Driver) -> None:
    from bench.cid import best_rate
    from ledger.core.unixfs import file_cid

    photo = PhotoMaker(
        night.arguments.photo_bytes, taken_at=datetime(2023, 5, 14, 11, 30, tzinfo=UTC), location=(13.7563, 100.5018)
    ).photo("board", "SIDE-0001/civic-watch/board")
    best_cid = best_sha = 0.0
    for _ in range(5):
        best_sha = max(best_sha, best_rate(lambda: hashlib.sha256(photo).digest(), len(photo), 0.3))
        best_cid = max(best_cid, best_rate(lambda: file_cid(photo), len(photo), 0.3))
    night.figures["national_photo_cid_mbps"] = round(best_cid, 1)
    night.figures["national_photo_sha256_mbps"] = round(best_sha, 1)
    night.figures["national_photo_cid_vs_sha256_ratio"] = round(best_cid / best_sha, 3)
    night.say(
        f"side by side, CID of a {len(photo):,}-byte photo: {best_cid:,.0f} MB/s against raw SHA-256 "
        f"{best_sha:,.0f} MB/s (ratio {best_cid / best_sha:.3f})"
    )


def _bare_ingest(night: Driver, submit: Stage) -> None:
    port = free_port()
    bare = start_bare(night.scratch, port, night.env)
    try:
        wait_until_up(port, "/constant", bare)
        per_client = max(1, night.arguments.bare_tallies // len(night.clients))
        results, _, _ = night.run_clients("bare", honour_deadline=False, port=port, tallies=per_client)
        sent = sum(sum(r["statuses"].values()) for r in results)
        seconds = max(r["counters"]["send_seconds"] for r in results)
        rate = sent / seconds
    finally:
        stop(bare)
    night.figures["national_bare_post_per_s"] = round(rate, 1)
    night.figures["national_submit_vs_bare"] = round(submit.rate / rate, 4)
    night.say(
        f"side by side, ingest: POST /v1/tallies {submit.rate:,.1f}/s in the night (signing inline) against the "
        f"bare FastAPI endpoint {rate:,.0f}/s on {sent:,} pre-signed tallies of this night "
        f"(ratio {submit.rate / rate:.4f})"
    )


def side_by_side(night: Driver) -> None:
    """CID vs SHA-256, ingest vs a bare endpoint, verify vs ingest (the clients still running)."""
    _photo_cid(night)
    submit = next((s for s in night.stages if s.name == "submit"), None)
    if submit is not None and night.arguments.bare_tallies > 0 and night.clients:
        _bare_ingest(night, submit)
    if "national_verify_all_seconds" in night.figures:
        ingest_seconds = sum(s.seconds for s in night.stages if s.name in ("upload", "submit"))
        if ingest_seconds:
            ratio = night.figures["national_verify_all_seconds"] / ingest_seconds
            night.figures["national_verify_vs_ingest_ratio"] = round(ratio, 3)
            night.say(
                f"side by side, verify all {night.figures['national_verify_all_seconds']:.0f} s against ingest "
                f"(upload + submit) {ingest_seconds:.0f} s: ratio {night.figures['national_verify_vs_ingest_ratio']:.3f}"
            )


def merkle_side_by_side(night: Driver) -> None:
    """A batch of ``--merkle-leaves`` with every proof, ledger.core against OpenZeppelin's JS."""
    if night.arguments.merkle_leaves <= 0:
        return
    from bench.merkle import synthetic_values, time_oz, time_python

    count = night.arguments.merkle_leaves
    values = synthetic_values(count)
    runs = [time_python(values) for _ in range(3)]
    python_total = sorted(float(r["total_seconds"]) for r in runs)[1]
    night.figures["national_merkle_leaves"] = count
    night.figures["national_merkle_build_seconds"] = round(python_total, 3)
    oz = time_oz(values)
    if oz["root"] != runs[0]["root"]:
        night.notes.append(f"merkle: roots differ, ledger.core {runs[0]['root']} against OpenZeppelin {oz['root']}")
    oz_total = float(oz["total_seconds"])
    night.figures["national_merkle_oz_js_build_seconds"] = round(oz_total, 3)
    night.figures["national_merkle_speedup_vs_oz_js"] = round(oz_total / python_total, 1)
    night.say(
        f"side by side, a batch of {count:,} leaves with every proof: ledger.core {python_total:.2f} s against "
        f"@openzeppelin/merkle-tree {oz_total:.1f} s ({oz_total / python_total:.0f}x); "
        f"same root: {oz['root'] == runs[0]['root']}"
    )
