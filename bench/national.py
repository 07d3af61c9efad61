"""Replay a national election night through the real HTTP API, and time every stage.

    .venv/bin/tally bench [--units N] [--photo-bytes 20000] [--database-url URL] [--data-dir DIR]
                          [--clients 2] [--connections 4] [--deadline-minutes M] [--no-write] ...
    (the same as .venv/bin/python -m bench national ...)

What runs
=========
People first, untimed (``bench.people``): in a fresh data directory (under /tmp, or
``--data-dir``), directly in the database through the application's review service: 3
organisations, one level-1 volunteer per organisation per constituency assigned every unit
of it (assignments bulk-inserted), and a war-room member (level 3). Then ``tally serve``
starts as a subprocess (uvicorn; rate limits off; ``TALLY_BATCH_MAX_RECORDS`` 10,000; the
API process's own loops seal, and anchor on its embedded anvil), and the load generator
(``bench.load``) starts as ``--clients`` separate processes (raw asyncio HTTP/1.1
keep-alive on loopback, ``bench.client``), each owning whole constituencies. Every person
signs in through ``POST /v1/auth/challenge`` and ``POST /v1/auth/session`` (EIP-191
personal_sign).

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

Side by side (``bench.side_by_side``), in the same run and after the night (nothing else
running): CID building against raw SHA-256 on the photo bytes (``bench.cid``), batch
building against ``@openzeppelin/merkle-tree`` (``bench.merkle``; ``--merkle-leaves 0``
skips it), ingest against the bare FastAPI endpoint of ``bench.servers`` (pre-signed
tallies of this night), and verify-all time against ingest time.

Goals on a 2-core machine (printed as a table, met or missed; a miss is never hidden):
night < 15 min; verify all < 5 min; server peak memory < 1 GiB; verify all < 512 MiB.

Figures are printed and merged into bench/results.json (read-modify-write; one key per
figure, prefix ``national_``; the previous run's ``national_`` keys are replaced as a set,
so figures of two runs never mix; ``national_units`` says what scale they are for).
``--deadline-minutes`` stops a run that takes too long and reports the stages that finished.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path

from bench import ROOT
from bench.certify import certify
from bench.driver import PYTHON, Driver
from bench.figures import check_disk, measure_footprint, print_goals, print_stages, stage_figures
from bench.metrics import MIB, measured_command, parse_usage
from bench.photos import PhotoMaker, check_photo
from bench.results import RESULTS, merge_results
from bench.side_by_side import merkle_side_by_side, side_by_side
from bench.stages import Stage

__all__ = ["Night", "argument_parser", "main"]


class Night(Driver):
    """The night in order: checks, people, server, clients, the stages, verify, the figures."""

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

    def ingest(self) -> bool:
        """Sign-in (outside the night), upload, submit, screen, seal, anchor; False if the deadline cut it short."""
        self.client_stage("signin", counted=lambda _, c: int(c.get("signed_in", 0)), unit="people signed in", war_room=True)
        self.night_started = time.perf_counter()
        upload = self.client_stage("upload", counted=lambda s, _: s.get(201, 0) + s.get(200, 0), unit="photos")
        upload.extra["mb_per_s"] = upload.extra["counters"].get("bytes", 0) / upload.seconds / 1e6 if upload.seconds else 0
        for problem in ("cid_mismatch", "exif_missing"):
            if upload.extra["counters"].get(problem):
                self.notes.append(f"upload: {int(upload.extra['counters'][problem]):,} photos with {problem}")
        if self.over_deadline():
            return False
        self.client_stage("submit", counted=lambda s, _: s.get(201, 0), unit="tallies")
        if self.over_deadline():
            return False
        self.wait_stage("screen", self.observer.screened, "reports screened")
        self.wait_stage("seal", self.observer.sealed, "entries")
        self.wait_stage("anchor", self.observer.anchored, "batches", poll=0.5)
        return True

    def run(self) -> None:
        self.setup_people()
        self.start_server()
        self.start_clients()
        if not self.ingest():
            return
        night_end = time.perf_counter()
        if self.over_deadline():
            return
        review_path = self.observer.review_path()
        has_decisions = self.observer.api_has("post", "/v1/decisions")
        if not has_decisions or review_path is None or self.war_room_token is None:
            missing = [
                what
                for what, ok in (
                    ("POST /v1/decisions", has_decisions),
                    ("a unit review endpoint", review_path is not None),
                    ("a war-room session", self.war_room_token is not None),
                )
                if not ok
            ]
            self.notes.append(f"certify, aggregate: not measured — the API has no {', '.join(missing)} yet")
            self.say(self.notes[-1])
        else:
            certify(self, review_path)
            everywhere = self.observer.certified_everywhere
            self.wait_stage("aggregate", everywhere, "units in the certified national aggregate", poll=0.1)
            self.wait_stage("anchor_decisions", self.observer.anchored, "batches", poll=0.5)
            night_end = time.perf_counter()
            self.figures["national_certified_complete"] = int(all(s.complete for s in self.stages))
        self.figures["national_night_seconds"] = round(night_end - self.night_started, 1)
        self.figures["national_night_includes_certify"] = int(any(s.name == "certify" for s in self.stages))
        self.verify_all()

    def verify_all(self) -> None:
        """``tally verify all`` from the peak-RSS launcher of ``bench.metrics``: time, memory, outcome."""
        if self.over_deadline():
            self.notes.append("verify all: not run (deadline)")
            return
        log = self.scratch / "verify.log"
        blocks = f"blocks:{self.data_dir / 'blocks'}"
        command = [PYTHON, "-m", "ledger.cli", "verify", "all", "--content", blocks, "--api", self.base]
        self.say("verify all: " + " ".join(command[1:]))
        started = time.perf_counter()
        with log.open("wb") as handle:
            completed = subprocess.run(
                measured_command(command), env=self.env, stdout=handle, stderr=subprocess.STDOUT, cwd=ROOT, check=False
            )
        seconds = time.perf_counter() - started
        output = log.read_text("utf-8", "replace")
        usage = parse_usage(output)
        returncode = usage.get("returncode", completed.returncode)
        summary = [line for line in output.splitlines() if line.startswith(("OK ", "FAILED ", "certified:", "MISMATCH"))]
        self.figures["national_verify_all_seconds"] = round(seconds, 1)
        peak_kib = max(usage.get("maxrss_kib", 0), usage.get("tree_peak_rss_kib", 0))
        if "maxrss_kib" in usage:
            # the whole tree (verify and its worker processes) when sampled, else the one process
            self.figures["national_verify_all_peak_rss_mib"] = round(peak_kib * 1024 / MIB, 1)
            self.figures["national_verify_all_largest_process_rss_mib"] = round(usage["maxrss_kib"] * 1024 / MIB, 1)
        self.figures["national_verify_all_ok"] = int(returncode == 0)
        self.stages.append(Stage("verify", seconds, 0, "", client_cpu=usage.get("cpu_seconds", 0.0)))
        self.say(
            f"verify all: exit {returncode} in {seconds:.1f} s, peak RSS {peak_kib / 1024:.0f} MiB (with its workers); "
            + " | ".join(summary[-3:])
        )
        if returncode != 0:
            self.notes.append(f"verify all failed (exit {returncode}); see {log}: " + " | ".join(summary[:3]))

    # -- after the night --

    def report(self) -> None:
        print_stages(self.stages)
        scale = "" if self.full_scale else f" (at {self.unit_count:,} of {self.election.unit_count:,} units, not national)"
        print_goals(self.figures, scale)
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
        results = merge_results(self.figures, results=Path(self.arguments.results), replace_prefix="national_")
        print(f"merged {len(self.figures)} figures into {results}")


def argument_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tally bench",
        description=(__doc__ or "").split("\n\n")[0],
        epilog=(
            "See the module docstring of bench/national.py for the stages and figures. The other benchmarks: "
            "tally bench api|cid|merkle|anchor --help (or python -m bench NAME)."
        ),
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
    return parser


def _interrupted(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def _measure(night: Night) -> bool:
    """The night and what is measured after it; True if the run failed (the figures are then partial)."""
    failed = False
    try:
        try:
            night.run()
        except (KeyboardInterrupt, SystemExit) as exc:
            night.notes.append(f"the run stopped ({exc}); the figures are of the stages that finished")
            failed = True
        finally:
            night.figures.update(stage_figures(night.stages))
            try:
                measure_footprint(night)
            except Exception as exc:  # report what can be reported
                night.notes.append(f"footprint not measured: {exc}")
        if not failed:  # short and bounded: measured even when the night ran out of time
            side_by_side(night)
    finally:
        night.close()
    if not failed:
        merkle_side_by_side(night)
    return failed


def main(argv: list[str] | None = None) -> int:
    parser = argument_parser()
    arguments = parser.parse_args(argv)
    if arguments.photo_bytes < 2048:
        parser.error("--photo-bytes must be at least 2,048")
    signal.signal(signal.SIGTERM, _interrupted)
    night = Night(arguments)
    try:
        night.prepare()
    except SystemExit:
        night.close()
        raise
    failed = _measure(night)
    night.report()
    if failed:
        print("bench/results.json left alone: the run failed")
    else:
        night.write()
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
