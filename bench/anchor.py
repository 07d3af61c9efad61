"""Benchmark anchoring: gas per ``anchor`` call and latency on a local anvil.

    .venv/bin/python -m bench anchor [--repeat 5] [--no-write]

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
import statistics
import tempfile
import time
from pathlib import Path

from bench import ROOT
from bench.client import free_port
from bench.results import merge_results

__all__ = ["GAS_GOAL", "SIZES", "main", "run"]

SIZES = (10, 1_000, 100_000)
GAS_GOAL = 60_000


def synthetic_values(count: int, rng: random.Random) -> list[tuple[str, str, str]]:
    """Distinct (record CID, unit, signer) values drawn from ``rng`` (the roots' bytes, and so
    the calldata's gas, follow from the seed)."""
    from ledger.core.hashing import checksum_address

    values = []
    for position in range(count):
        cid = "b" + base64.b32encode(bytes((1, 0x71, 0x12, 0x20)) + rng.randbytes(32)).decode().lower().rstrip("=")
        values.append((cid, f"BKK_{position % 33 + 1}-{position:05d}", checksum_address("0x" + rng.randbytes(20).hex())))
    return values


def _anchor_all(roots: dict[int, list[bytes]], manifest_cid: str, repeat: int) -> tuple[dict[int, list[int]], list[float]]:
    """Every root anchored on a fresh anvil: (gas used by size, latencies in seconds)."""
    from eth_account import Account

    from ledger.chain.anvil import AnvilNode
    from ledger.chain.deploy import deploy_evidence_anchor, fund_on_local_chain
    from ledger.chain.evidence import EvidenceAnchorClient, connect

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
    return gas, latencies


def run(repeat: int) -> dict[str, object]:
    """The anchoring figures of ``repeat`` anchors per batch size."""
    from ledger.core.leaf import leaf_hashes
    from ledger.core.merkle import build_tree

    rng = random.Random(2566)
    roots = {}
    for size in SIZES:
        roots[size] = [build_tree(leaf_hashes(synthetic_values(size, rng))).root for _ in range(repeat)]
    manifest_cid = synthetic_values(1, rng)[0][0]
    gas, latencies = _anchor_all(roots, manifest_cid, repeat)

    all_gas = [used for size in SIZES for used in gas[size]]
    figures: dict[str, object] = {f"anchor_gas_{size}_records": max(gas[size]) for size in SIZES}
    figures["anchor_gas_spread"] = max(all_gas) - min(all_gas)
    figures["anchor_gas_goal"] = GAS_GOAL
    figures["anchor_gas_within_goal"] = int(max(all_gas) <= GAS_GOAL)
    figures["anchor_latency_ms_p50_local_anvil"] = round(statistics.median(latencies) * 1000, 2)
    figures["anchor_latency_ms_max_local_anvil"] = round(max(latencies) * 1000, 2)
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench anchor", description="Benchmark EvidenceAnchor.anchor on a local anvil."
    )
    parser.add_argument("--repeat", type=int, default=5, help="anchors per batch size (default 5)")
    parser.add_argument("--no-write", action="store_true", help="print only; leave bench/results.json alone")
    arguments = parser.parse_args(argv)
    figures = run(arguments.repeat)
    print(json.dumps(figures, indent=2))
    if not arguments.no_write:
        results = merge_results(figures)
        print(f"merged into {results.relative_to(ROOT)}")
    return 0
