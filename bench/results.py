"""bench/results.json: the benchmark figures, one key per figure, merged read-modify-write."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from bench import ROOT

RESULTS = ROOT / "bench" / "results.json"

__all__ = ["RESULTS", "merge_results"]


def merge_results(figures: dict[str, Any], *, results: Path = RESULTS, replace_prefix: str | None = None) -> Path:
    """Merge ``figures`` into the results file, keys sorted, written atomically.

    Other keys are kept; with ``replace_prefix``, every existing key with that prefix is
    dropped first, so the figures of two runs never mix. Refuses a file that does not hold
    a JSON object."""
    existing: dict[str, Any] = json.loads(results.read_text("utf-8")) if results.exists() else {}
    if not isinstance(existing, dict):
        raise SystemExit(f"{results} does not hold a JSON object; not overwriting it")
    if replace_prefix is not None:
        existing = {key: value for key, value in existing.items() if not key.startswith(replace_prefix)}
    existing.update(figures)
    results.parent.mkdir(parents=True, exist_ok=True)
    temporary = results.with_name(f".{results.name}.{os.getpid()}.tmp")
    temporary.write_text(json.dumps(dict(sorted(existing.items())), indent=2) + "\n", encoding="utf-8")
    os.replace(temporary, results)
    return results
