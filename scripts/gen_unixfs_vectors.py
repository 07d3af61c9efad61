"""Generate tests/vectors/unixfs/js_ipfs_add_cidv1.json from a real js-ipfs daemon.

Usage: .venv/bin/python scripts/gen_unixfs_vectors.py [--check]

For each case the file's bytes are made deterministically (see ``case_bytes``), added to
an offline js-ipfs peer (``scripts/ipfs_peer.mjs``) with ``cid-version=1``,
``raw-leaves=true`` and ``chunker=size-N``, and the CID the peer answers is recorded. The
CIDs come from js-ipfs alone; ledger.core.unixfs is only consulted with ``--check``, which
also reports any disagreement. Small chunk sizes give deep trees from small files (174×174
chunks of 16 bytes need a third level), which is how depth 3 is covered cheaply.

Needs ``npm ci`` (node_modules/ipfs). Takes a few minutes: js-ipfs is slow with tiny chunks.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support.ipfs_peer import start_ipfs_peer  # noqa: E402

OUTPUT = ROOT / "tests" / "vectors" / "unixfs" / "js_ipfs_add_cidv1.json"
FORMAT = "tally-unixfs-vectors-v1"
CHUNK = 262144

# (name, pattern, seed, size, chunk_size)
CASES: list[tuple[str, str, str, int, int]] = [
    ("empty", "zeros", "", 0, CHUNK),
    ("one byte", "shake128", "one", 1, CHUNK),
    ("hello", "text:hello", "", 5, CHUNK),
    ("small", "shake128", "small", 1000, CHUNK),
    ("one chunk minus one", "shake128", "c-1", CHUNK - 1, CHUNK),
    ("exactly one chunk", "shake128", "c", CHUNK, CHUNK),
    ("one chunk plus one", "shake128", "c+1", CHUNK + 1, CHUNK),
    ("worked example: 262145 zeros", "zeros", "", CHUNK + 1, CHUNK),
    ("two chunks", "shake128", "2c", 2 * CHUNK, CHUNK),
    ("174 chunks (one full node)", "shake128", "174c", 174 * CHUNK, CHUNK),
    ("174 chunks plus one byte (depth 2)", "shake128", "174c+1", 174 * CHUNK + 1, CHUNK),
    ("about 46 MB (depth 2)", "shake128", "46mb", 46_000_000, CHUNK),
    ("1-byte chunks, 174", "shake128", "b174", 174, 1),
    ("1-byte chunks, 175", "shake128", "b175", 175, 1),
    ("1-byte chunks, 348", "shake128", "b348", 348, 1),
    ("1-byte chunks, 349", "shake128", "b349", 349, 1),
    ("16-byte chunks, ragged tail", "shake128", "s16", 16 * 500 + 7, 16),
    ("16-byte chunks, 174*174 (full depth 2)", "shake128", "s16full", 174 * 174 * 16, 16),
    ("16-byte chunks, 174*174+1 chunks (depth 3)", "shake128", "s16deep", 174 * 174 * 16 + 1, 16),
]


def case_bytes(pattern: str, seed: str, size: int) -> bytes:
    """``zeros``: ``size`` zero bytes; ``shake128``: SHAKE-128 of the UTF-8 seed, ``size`` bytes; ``text:…``: that text."""
    if pattern == "zeros":
        return bytes(size)
    if pattern == "shake128":
        return hashlib.shake_128(seed.encode("utf-8")).digest(size)
    if pattern.startswith("text:"):
        data = pattern[len("text:") :].encode("utf-8")
        if len(data) != size:
            raise ValueError(f"text pattern {pattern!r} is not {size} bytes")
        return data
    raise ValueError(f"unknown pattern {pattern!r}")


def npm_version(package: str) -> str:
    manifest = ROOT / "node_modules" / package / "package.json"
    return str(json.loads(manifest.read_text("utf-8"))["version"])


def add_to_peer(api_url: str, data: bytes, chunk_size: int) -> str:
    params = {
        "cid-version": "1",
        "raw-leaves": "true",
        "chunker": f"size-{chunk_size}",
        "cid-base": "base32",
        "pin": "false",
        "progress": "false",
    }
    response = httpx.post(f"{api_url}/api/v0/add", params=params, files={"file": ("file", data)}, timeout=1800)
    response.raise_for_status()
    answers = [json.loads(line) for line in response.text.splitlines() if line.strip()]
    return str(answers[-1]["Hash"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="also compare with ledger.core.unixfs")
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tally-jsipfs-") as temporary:
        peer = start_ipfs_peer(Path(temporary) / "repo")
        try:
            version = httpx.post(f"{peer.api_url}/api/v0/version", timeout=30).json()
            vectors = []
            for name, pattern, seed, size, chunk_size in CASES:
                started = time.monotonic()
                data = case_bytes(pattern, seed, size)
                cid = add_to_peer(peer.api_url, data, chunk_size)
                print(f"{name}: {cid} ({time.monotonic() - started:.1f} s)", file=sys.stderr)
                vectors.append(
                    {"name": name, "pattern": pattern, "seed": seed, "size": size, "chunk_size": chunk_size, "cid": cid}
                )
        finally:
            peer.stop()
    document = {
        "format": FORMAT,
        "generator": "scripts/gen_unixfs_vectors.py",
        "source": f"js-ipfs (npm ipfs {npm_version('ipfs')}, ipfs-core {version.get('Version')}), HTTP /api/v0/add",
        "add_options": {
            "cid-version": 1,
            "raw-leaves": True,
            "chunker": "size-<chunk_size>",
            "hash": "sha2-256",
            "layout": "balanced (174 links)",
        },
        "bytes": "zeros: size zero bytes; shake128: hashlib.shake_128(seed UTF-8).digest(size); text:T: the UTF-8 text T",
        "vectors": vectors,
    }
    OUTPUT.parent.mkdir(parents=True, exist_ok=True)
    OUTPUT.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {len(vectors)} vectors to {OUTPUT.relative_to(ROOT)}", file=sys.stderr)
    if arguments.check:
        from ledger.core.unixfs import file_cid

        failures = 0
        for vector in vectors:
            ours = str(file_cid(case_bytes(vector["pattern"], vector["seed"], vector["size"]), chunk_size=vector["chunk_size"]))
            if ours != vector["cid"]:
                failures += 1
                print(f"MISMATCH {vector['name']}: js-ipfs {vector['cid']}, ours {ours}", file=sys.stderr)
        print("all vectors agree" if not failures else f"{failures} vectors disagree", file=sys.stderr)
        return 1 if failures else 0
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
