"""Benchmark UnixFS CID computation against plain sha256 over the same bytes, in one run.

Usage: .venv/bin/python -m bench cid [--seconds 0.5] [--rounds 5] [--no-write]

For each file size (256 KiB, 1 MiB, 4 MiB, 8 MiB) it times ``ledger.core.unixfs.file_cid``
(the whole ``ipfs add --cid-version=1`` DAG, hash only) and ``hashlib.sha256(data).digest()``
on the same in-memory bytes, alternating the two so that machine noise hits both alike,
and keeps the best round of each. MB/s means 10**6 bytes per second.

Figures are printed and merged into bench/results.json (read-modify-write, one key each):
``cid_mbps_<size>``, ``sha256_mbps_<size>`` and ``cid_vs_sha256_ratio_<size>``.
"""

from __future__ import annotations

import argparse
import hashlib
import time
from collections.abc import Callable

from bench import ROOT
from bench.results import merge_results

__all__ = ["SIZES", "best_rate", "main"]

SIZES = [("256kib", 256 * 1024), ("1mib", 1 << 20), ("4mib", 4 << 20), ("8mib", 8 << 20)]


def best_rate(function: Callable[[], object], size: int, seconds: float) -> float:
    """Run ``function`` repeatedly for about ``seconds``; return MB/s of that stretch."""
    function()  # warm up
    iterations = 0
    started = time.perf_counter()
    while True:
        function()
        iterations += 1
        elapsed = time.perf_counter() - started
        if elapsed >= seconds:
            return size * iterations / elapsed / 1e6


def main(argv: list[str] | None = None) -> int:
    from ledger.core.unixfs import file_cid

    parser = argparse.ArgumentParser(
        prog="python -m bench cid", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=0.5, help="length of one timed stretch (default 0.5)")
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds per size; the best is kept (default 5)")
    parser.add_argument("--no-write", action="store_true", help="print only; leave bench/results.json alone")
    arguments = parser.parse_args(argv)

    figures: dict[str, float] = {}
    print(f"{'size':>7}  {'cid MB/s':>9}  {'sha256 MB/s':>11}  {'ratio':>6}")
    for label, size in SIZES:
        data = hashlib.shake_128(f"bench-{label}".encode()).digest(size)
        best_cid = best_sha = 0.0

        def hash_only(data: bytes = data) -> object:
            return hashlib.sha256(data).digest()

        def unixfs_cid(data: bytes = data) -> object:
            return file_cid(data)

        for _ in range(arguments.rounds):
            best_sha = max(best_sha, best_rate(hash_only, size, arguments.seconds))
            best_cid = max(best_cid, best_rate(unixfs_cid, size, arguments.seconds))
        ratio = best_cid / best_sha
        figures[f"cid_mbps_{label}"] = round(best_cid, 1)
        figures[f"sha256_mbps_{label}"] = round(best_sha, 1)
        figures[f"cid_vs_sha256_ratio_{label}"] = round(ratio, 3)
        print(f"{label:>7}  {best_cid:9.1f}  {best_sha:11.1f}  {ratio:6.3f}")

    if not arguments.no_write:
        results = merge_results(figures)
        print(f"merged {len(figures)} figures into {results.relative_to(ROOT)}")
    return 0
