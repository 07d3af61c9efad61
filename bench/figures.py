"""The national night's figures: per stage, the footprint (memory, disk), the goals table,
and the room the night needs on disk before it starts."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.metrics import MIB, disk_usage, proc_status, worker_pids

if TYPE_CHECKING:
    from bench.driver import Driver
    from bench.stages import Stage

__all__ = ["GOALS", "check_disk", "measure_footprint", "print_goals", "print_stages", "stage_figures"]

GOALS = (
    # figure, what, limit, unit
    ("national_night_seconds", "night ingested, anchored and certified", 15 * 60, "s"),
    ("national_verify_all_seconds", "tally verify all", 5 * 60, "s"),
    ("national_server_peak_rss_mib", "server peak memory (VmHWM, with its workers)", 1024, "MiB"),
    ("national_verify_all_peak_rss_mib", "verify all peak memory", 512, "MiB"),
)
"""Goals on a 2-core machine, printed met or missed (a miss is never hidden)."""


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


def stage_figures(stages: list[Stage]) -> dict[str, Any]:
    """The ``national_<stage>_…`` figures of every recorded stage."""
    figures: dict[str, Any] = {}
    for stage in stages:
        prefix = f"national_{stage.name}"
        figures[f"{prefix}_seconds"] = round(stage.seconds, 2)
        if stage.name != "verify":
            figures[f"{prefix}_server_cpu_seconds"] = round(stage.server_cpu, 1)
        if stage.client_cpu and stage.name != "verify":
            figures[f"{prefix}_load_generator_cpu_seconds"] = round(stage.client_cpu, 1)
        if not stage.complete:
            figures[f"{prefix}_unfinished"] = 1
        if stage.server_rss_mib:
            figures[f"{prefix}_server_rss_mib_after"] = round(stage.server_rss_mib, 1)
        if stage.name in ("upload", "submit", "certify", "signin"):
            figures[f"{prefix}_count"] = stage.count
            figures[f"{prefix}_per_s"] = round(stage.rate, 1)
            figures[f"{prefix}_p50_ms"] = round(stage.extra["p50_ms"], 1)
            figures[f"{prefix}_p99_ms"] = round(stage.extra["p99_ms"], 1)
            failed = sum(n for s, n in stage.extra["statuses"].items() if s >= 400)
            figures[f"{prefix}_failed_requests"] = failed
            if "sign_cpu_seconds" in stage.extra["counters"]:
                figures[f"{prefix}_client_signing_cpu_seconds"] = round(stage.extra["counters"]["sign_cpu_seconds"], 1)
        if stage.name == "upload":
            figures["national_upload_mb_per_s"] = round(stage.extra.get("mb_per_s", 0), 1)
        if stage.name in ("anchor", "anchor_decisions"):
            figures[f"{prefix}_batches"] = stage.count
    figures["national_completed_stages"] = ",".join(s.name for s in stages if s.complete)
    return figures


def _server_footprint(night: Driver) -> None:
    from ledger.chain.anvil import AnvilNode
    from ledger.settings import Settings

    assert night.server is not None
    try:
        anvil = AnvilNode.from_settings(Settings(data_dir=night.data_dir, anvil_port=night.anvil_port)).running_pid()
    except Exception:
        anvil = None
    # The server's peak with its prepare workers: the sum of each process's own peak
    # (at least the peak of the sum). Anvil, also a child, is reported apart.
    workers = worker_pids(night.server.pid)
    peaks = [proc_status(pid, "VmHWM") for pid in (night.server.pid, *workers)]
    if peaks[0] is not None:
        night.figures["national_server_peak_rss_mib"] = round(sum(p or 0 for p in peaks) / MIB, 1)
        night.figures["national_server_main_peak_rss_mib"] = round(peaks[0] / MIB, 1)
        night.figures["national_server_workers"] = len(workers)
    night.figures["national_server_cpu_seconds"] = round(night.server_cpu(), 1)
    if anvil is not None and (anvil_peak := proc_status(anvil, "VmHWM")) is not None:
        night.figures["national_anvil_peak_rss_mib"] = round(anvil_peak / MIB, 1)


def _database_bytes(night: Driver) -> int:
    if not night.arguments.database_url:
        return sum(p.stat().st_blocks * 512 for p in night.data_dir.glob("tally.db*"))
    from sqlalchemy import text

    from ledger.store import Database

    database = Database(night.arguments.database_url)
    with database.engine.connect() as connection:
        size = connection.execute(text("SELECT pg_database_size(current_database())")).scalar_one()
    database.dispose()
    return int(size)


def measure_footprint(night: Driver) -> None:
    """Server and anvil peak memory (while they still run), database and block-store size."""
    if night.server is not None and night.server.poll() is None:
        _server_footprint(night)
    night.figures["national_database_mib"] = round(_database_bytes(night) / MIB, 1)
    blocks, files = disk_usage(night.data_dir / "blocks")
    night.figures["national_block_store_mib"] = round(blocks / MIB, 1)
    night.figures["national_block_store_files"] = files
    total, pending = night.observer.entry_counts()
    night.figures["national_entries"] = total
    night.say(
        f"footprint: server peak {night.figures.get('national_server_peak_rss_mib')} MiB (anvil "
        f"{night.figures.get('national_anvil_peak_rss_mib')} MiB), "
        f"database {night.figures['national_database_mib']:,} MiB, "
        f"block store {night.figures['national_block_store_mib']:,} MiB in {files:,} files; {total:,} entries "
        f"({pending:,} pending)"
    )


def print_stages(stages: list[Stage]) -> None:
    print()
    print(f"{'stage':<18}{'wall s':>9}{'count':>11}  {'rate':<24}{'server CPU s':>13}{'client CPU s':>13}")
    for stage in stages:
        waited = stage.name in ("screen", "seal", "anchor", "anchor_decisions", "aggregate", "verify")
        rate = f"{stage.rate:,.1f} {stage.unit}/s" if stage.count and not waited else ""
        print(
            f"{stage.name:<18}{stage.seconds:>9.1f}{stage.count:>11,}  {rate[:24]:<24}{stage.server_cpu:>13.0f}"
            f"{stage.client_cpu:>13.0f}" + ("" if stage.complete else "  UNFINISHED")
        )


def print_goals(figures: dict[str, Any], scale: str) -> None:
    """The goals table; adds a ``…_goal_met`` figure for every goal measured. ``scale`` is
    said beside the night's goal when the night was not national."""
    print()
    print(f"{'goal':<42}{'figure':>12}{'limit':>10}  result")
    for name, what, limit, unit in GOALS:
        value = figures.get(name)
        if value is None:
            result, shown = "not measured", "-"
        else:
            met = value < limit
            if name == "national_night_seconds" and not figures.get("national_night_includes_certify"):
                met = False
                result = "missed (certify not measured)" if value < limit else "MISSED (certify not measured)"
            else:
                result = "met" if met else "MISSED"
            shown = f"{value:,.1f} {unit}"
        print(f"{what:<42}{shown:>12}{f'{limit:,} {unit}':>10}  {result}{scale if name == 'national_night_seconds' else ''}")
        if value is not None:
            whole = name != "national_night_seconds" or bool(figures.get("national_night_includes_certify"))
            figures[f"{name.removesuffix('_seconds').removesuffix('_mib')}_goal_met"] = int(value < limit and whole)
