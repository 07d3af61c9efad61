"""Benchmark anchoring: gas per ``anchor`` call and latency on a local anvil.

    .venv/bin/python scripts/bench_anchor.py [--repeat 5]

Starts a throwaway anvil (node_modules), deploys contracts/build/EvidenceAnchor.json,
builds real batch trees of 10, 1,000 and 100,000 records with ledger.core, anchors each
size ``--repeat`` times with a 59-character CIDv1 manifest, and merges into
bench/results.json (one key per figure; other keys are kept):

    anchor_gas_<n>_records            gas used by one anchor (max over the repeats)
    anchor_gas_spread                 max - min over all anchors: only calldata differs
                                      (16 gas per non-zero byte of count and root, 4 per zero)
    anchor_gas_goal / anchor_gas_within_goal
    anchor_latency_ms_p50_local_anvil / _max_local_anvil
                                      sign + send + receipt, anvil mining on arrival
"""

from __future__ import annotations

import argparse
import base64
import json
import random
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from eth_account import Account  # noqa: E402

from ledger.chain.anvil import AnvilNode  # noqa: E402
from ledger.chain.deploy import deploy_evidence_anchor, fund_on_local_chain  # noqa: E402
from ledger.chain.evidence import EvidenceAnchorClient, connect  # noqa: E402
from ledger.core.leaf import checksum_address, leaf_hashes  # noqa: E402
from ledger.core.merkle import build_tree  # noqa: E402

RESULTS = ROOT / "bench" / "results.json"
SIZES = (10, 1_000, 100_000)
GAS_GOAL = 60_000


def synthetic_values(count: int, rng: random.Random) -> list[tuple[str, str, str]]:
    values = []
    for position in range(count):
        cid = "b" + base64.b32encode(bytes((1, 0x71, 0x12, 0x20)) + rng.randbytes(32)).decode().lower().rstrip("=")
        values.append((cid, f"BKK_{position % 33 + 1}-{position:05d}", checksum_address("0x" + rng.randbytes(20).hex())))
    return values


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def merge_results(figures: dict[str, object]) -> None:
    results = json.loads(RESULTS.read_text("utf-8")) if RESULTS.exists() else {}
    results.update(figures)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def run(repeat: int) -> dict[str, object]:
    rng = random.Random(2566)
    roots = {}
    for size in SIZES:
        roots[size] = [build_tree(leaf_hashes(synthetic_values(size, rng))).root for _ in range(repeat)]
    manifest_cid = synthetic_values(1, rng)[0][0]

    with tempfile.TemporaryDirectory() as chain_dir, AnvilNode(chain_dir=Path(chain_dir), port=free_port()) as node:
        web3 = connect(node.url)
        signer = Account.create()
        fund_on_local_chain(web3, signer.address)
        manifest = deploy_evidence_anchor(web3, signer, admin=signer.address, anchorer=signer.address)
        client = EvidenceAnchorClient(web3, manifest.evidence_anchor.address, signer=signer)

        gas: dict[int, list[int]] = {size: [] for size in SIZES}
        latencies = []
        batch_id = 1
        for round_ in range(repeat):
            for size in SIZES:
                started = time.perf_counter()
                sent = client.anchor(batch_id, roots[size][round_], size, manifest_cid, simulate=False)
                inclusion = client.wait_for_inclusion(sent.tx_hash, timeout=30, poll_interval=0.005)
                latencies.append(time.perf_counter() - started)
                assert inclusion.succeeded, f"anchor of batch {batch_id} reverted"
                gas[size].append(inclusion.gas_used)
                batch_id += 1

    all_gas = [used for size in SIZES for used in gas[size]]
    figures: dict[str, object] = {f"anchor_gas_{size}_records": max(gas[size]) for size in SIZES}
    figures["anchor_gas_spread"] = max(all_gas) - min(all_gas)
    figures["anchor_gas_goal"] = GAS_GOAL
    figures["anchor_gas_within_goal"] = int(max(all_gas) <= GAS_GOAL)
    figures["anchor_latency_ms_p50_local_anvil"] = round(statistics.median(latencies) * 1000, 2)
    figures["anchor_latency_ms_max_local_anvil"] = round(max(latencies) * 1000, 2)
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Benchmark EvidenceAnchor.anchor on a local anvil.")
    parser.add_argument("--repeat", type=int, default=5, help="anchors per batch size (default 5)")
    arguments = parser.parse_args(argv)
    figures = run(arguments.repeat)
    print(json.dumps(figures, indent=2))
    merge_results(figures)
    print(f"merged into {RESULTS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
