"""The committed artifact (contracts/build, what the service deploys) is the contract these
tests exercise: same ABI, same runtime code apart from the trailing metadata hash."""

from __future__ import annotations

import json
from pathlib import Path

ARTIFACT = Path(__file__).resolve().parents[2] / "contracts" / "build" / "EvidenceAnchor.json"


def without_metadata(code: bytes) -> bytes:
    """Drops the CBOR metadata solc appends (its length is in the last two bytes)."""
    length = int.from_bytes(code[-2:], "big")
    return code[: -(length + 2)]


def test_committed_artifact_matches_the_compiled_contract(project):
    artifact = json.loads(ARTIFACT.read_text(encoding="utf-8"))
    contract_type = project.EvidenceAnchor.contract_type

    def canonical(abi: list[dict[str, object]]) -> list[str]:
        return sorted(json.dumps(entry, sort_keys=True) for entry in abi)

    assert canonical(artifact["abi"]) == canonical([entry.model_dump(mode="json", by_alias=True) for entry in contract_type.abi])
    committed = bytes.fromhex(artifact["deployedBytecode"].removeprefix("0x"))
    assert without_metadata(committed) == without_metadata(contract_type.get_runtime_bytecode())
