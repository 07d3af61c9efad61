"""Benchmark sealing a batch: leaf hashing from values, the tree, and every proof.

    .venv/bin/python -m bench merkle [--leaves 100000] [--repeat 5] [--skip-oz] [--no-write]

Times ledger.core (leaf_hashes + build_tree + MerkleTree.proofs) and, on the very same
values, @openzeppelin/merkle-tree through scripts/oz_merkle.mjs (StandardMerkleTree.of
plus getProof for every value), checks that both reach the same root, prints the figures
and merges them into bench/results.json (one key per figure; other keys are kept).
Python figures are the median of --repeat runs (the minimum is recorded too); the JS run
happens once, as it takes minutes at 100,000 leaves.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import platform
import random
import statistics
import subprocess
import tempfile
import time

from bench import ROOT
from bench.results import merge_results

__all__ = ["OZ_CLI", "main", "synthetic_values", "time_oz", "time_python"]

OZ_CLI = ROOT / "scripts" / "oz_merkle.mjs"


def synthetic_values(count: int, seed: int = 2566) -> list[tuple[str, str, str]]:
    """Realistic, all-distinct values: dag-cbor CIDv1s, polling unit codes, EIP-55 signers."""
    from ledger.core.hashing import checksum_address

    rng = random.Random(seed)
    provinces = ("BKK", "CMI", "KKN", "NMA", "SKA", "UBN")
    values = []
    for position in range(count):
        cid = "b" + base64.b32encode(bytes((1, 0x71, 0x12, 0x20)) + rng.randbytes(32)).decode("ascii").lower().rstrip("=")
        unit = f"{provinces[position % len(provinces)]}_{position % 33 + 1}-{position:05d}"
        values.append((cid, unit, checksum_address("0x" + rng.randbytes(20).hex())))
    return values


def time_python(values: list[tuple[str, str, str]]) -> dict[str, float | str]:
    """ledger.core: leaf hashes, the tree, every proof; seconds of each and the root."""
    from ledger.core.leaf import leaf_hashes
    from ledger.core.merkle import build_tree

    started = time.perf_counter()
    hashes = leaf_hashes(values)
    hashed = time.perf_counter()
    tree = build_tree(hashes)
    built = time.perf_counter()
    proofs = tree.proofs()
    proved = time.perf_counter()
    assert len(proofs) == len(values)
    return {
        "leaf_seconds": hashed - started,
        "tree_seconds": built - hashed,
        "proofs_seconds": proved - built,
        "total_seconds": proved - started,
        "root": "0x" + tree.root.hex(),
    }


def time_oz(values: list[tuple[str, str, str]]) -> dict[str, float | str]:
    """@openzeppelin/merkle-tree on the same values, in node (scripts/oz_merkle.mjs)."""
    with tempfile.NamedTemporaryFile("w", suffix=".json", encoding="utf-8", delete=False) as handle:
        json.dump([list(value) for value in values], handle)
        path = handle.name
    try:
        completed = subprocess.run(
            ["node", "--max-old-space-size=4096", str(OZ_CLI), "bench", "--values", path],
            capture_output=True,
            text=True,
            cwd=ROOT,
            check=False,
        )
    finally:
        os.unlink(path)
    if completed.returncode != 0:
        raise SystemExit(f"oz_merkle.mjs failed: {completed.stderr.strip()}")
    result: dict[str, float | str] = json.loads(completed.stdout)
    return result


def _oz_figures(values: list[tuple[str, str, str]], runs: list[dict[str, float | str]], label: str) -> dict[str, object]:
    def median(key: str) -> float:
        return statistics.median(float(run[key]) for run in runs)

    oz = time_oz(values)
    if oz["root"] != runs[0]["root"]:
        raise SystemExit(f"roots differ: ledger.core {runs[0]['root']}, OpenZeppelin {oz['root']}")
    python_total = median("total_seconds")
    oz_total, oz_tree = float(oz["total_seconds"]), float(oz["build_seconds"])
    python_tree_only = median("leaf_seconds") + median("tree_seconds")
    figures: dict[str, object] = {
        f"merkle_oz_js_build_{label}_seconds": round(oz_total, 4),
        f"merkle_oz_js_tree_only_{label}_seconds": round(oz_tree, 4),
        f"merkle_oz_js_proofs_{label}_seconds": round(float(oz["proofs_seconds"]), 4),
        f"merkle_speedup_vs_oz_js_{label}": round(oz_total / python_total, 1),
        f"merkle_speedup_vs_oz_js_tree_only_{label}": round(oz_tree / python_tree_only, 1),
    }
    if len(values) == 100_000:  # the headline figure
        figures["merkle_speedup_vs_oz_js"] = figures[f"merkle_speedup_vs_oz_js_{label}"]
    print(
        f"@openzeppelin/merkle-tree, same values, one run: of() {oz_tree:.3f} s, "
        f"getProof() x {len(values)} {float(oz['proofs_seconds']):.3f} s; total {oz_total:.3f} s"
    )
    print(f"  same root {oz['root']}")
    print(f"  speedup: {oz_total / python_total:.1f}x (build + all proofs), {oz_tree / python_tree_only:.1f}x (tree only)")
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench merkle", description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--leaves", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5, help="Python runs; the median is reported")
    parser.add_argument("--skip-oz", action="store_true", help="do not run the JS library (no comparison figures)")
    parser.add_argument("--no-write", action="store_true", help="print only; leave bench/results.json alone")
    arguments = parser.parse_args(argv)
    count = arguments.leaves
    label = f"{count // 1000}k" if count % 1000 == 0 else str(count)

    values = synthetic_values(count)
    runs = [time_python(values) for _ in range(arguments.repeat)]
    roots = {run["root"] for run in runs}
    assert len(roots) == 1, "the Python root changed between runs"

    def median(key: str) -> float:
        return statistics.median(float(run[key]) for run in runs)

    python_total = median("total_seconds")
    figures: dict[str, object] = {
        f"merkle_build_{label}_seconds": round(python_total, 4),
        f"merkle_build_{label}_seconds_min": round(min(float(run["total_seconds"]) for run in runs), 4),
        f"merkle_leaf_hashing_{label}_seconds": round(median("leaf_seconds"), 4),
        f"merkle_tree_{label}_seconds": round(median("tree_seconds"), 4),
        f"merkle_proofs_{label}_seconds": round(median("proofs_seconds"), 4),
    }
    print(f"ledger.core, {count} leaves, median of {len(runs)} runs (Python {platform.python_version()}, {os.cpu_count()} CPUs):")
    print(
        f"  leaf hashing {median('leaf_seconds'):.3f} s, tree {median('tree_seconds'):.3f} s, "
        f"all proofs {median('proofs_seconds'):.3f} s; total {python_total:.3f} s "
        f"(min {figures[f'merkle_build_{label}_seconds_min']} s)"
    )
    if not arguments.skip_oz:
        figures.update(_oz_figures(values, runs, label))
    print(json.dumps(figures, indent=2))
    if not arguments.no_write:
        results = merge_results(figures)
        print(f"merged into {results.relative_to(ROOT)}")
    return 0
