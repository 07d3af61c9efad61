"""``python -m bench [national|api|cid|merkle|anchor] [options]``: run one benchmark.

Without a name (or with options only), the national replay runs: ``python -m bench --units
2000`` is ``tally bench --units 2000``. ``python -m bench NAME --help`` lists a benchmark's
options.
"""

from __future__ import annotations

import importlib
import sys

__all__ = ["BENCHMARKS", "main"]

BENCHMARKS = {
    "national": "the national night through the real HTTP API (the default; `tally bench`)",
    "api": "the HTTP API: ingest against a bare endpoint, aggregates under readers, freshness",
    "cid": "UnixFS CIDs against raw SHA-256",
    "merkle": "batch trees and proofs against @openzeppelin/merkle-tree",
    "anchor": "anchoring gas and latency on a local anvil",
}


def main(argv: list[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    name = "national"
    if arguments and arguments[0] in BENCHMARKS:
        name = arguments.pop(0)
    elif arguments and not arguments[0].startswith("-"):
        listed = "\n".join(f"  {benchmark:<9} {what}" for benchmark, what in BENCHMARKS.items())
        print(f"no benchmark named {arguments[0]!r}; the benchmarks are:\n{listed}", file=sys.stderr)
        return 2
    module = importlib.import_module(f"bench.{name}")
    return int(module.main(arguments))


if __name__ == "__main__":
    raise SystemExit(main())
