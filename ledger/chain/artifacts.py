"""The committed compiler output of the contracts (``contracts/build/<name>.json``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, cast

from ledger.errors import ChainError

__all__ = ["ARTIFACTS_DIR", "load_artifact"]

ARTIFACTS_DIR = Path(__file__).resolve().parents[2] / "contracts" / "build"


def load_artifact(name: str = "EvidenceAnchor", directory: Path = ARTIFACTS_DIR) -> dict[str, Any]:
    """The committed compiler output ``contracts/build/<name>.json`` (abi, bytecode, ...)."""
    path = directory / f"{name}.json"
    try:
        artifact = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise ChainError(f"cannot read the contract artifact {path}: {error}; run scripts/build_contracts.py") from error
    return cast(dict[str, Any], artifact)
