"""The committed Merkle vectors (tests/vectors/merkle, format tally-merkle-vectors-v1) run
through the contract's ``verify``: the Solidity verifier must agree with every case."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

VECTORS_DIR = Path(__file__).resolve().parents[1] / "vectors" / "merkle"
VECTOR_FORMAT = "tally-merkle-vectors-v1"
MANIFEST_CID = "bafyreigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi"


def load_cases() -> list[dict[str, object]]:
    cases = []
    for path in sorted(VECTORS_DIR.glob("*.json")):
        document = json.loads(path.read_text(encoding="utf-8"))
        assert document["format"] == VECTOR_FORMAT, f"{path.name}: unknown format {document['format']!r}"
        cases.extend({**case, "file": path.name} for case in document["cases"])
    return cases


CASES = load_cases()


@pytest.fixture
def anchored_roots(evidence_anchor, anchorer) -> dict[str, int]:
    """Anchors every distinct root of the vectors, as batches 1, 2, ...; returns root -> batch id."""
    batch_of_root: dict[str, int] = {}
    for root in sorted({str(case["root"]).lower() for case in CASES}):
        batch_id = len(batch_of_root) + 1
        evidence_anchor.anchor(batch_id, root, 1, MANIFEST_CID, sender=anchorer)
        batch_of_root[root] = batch_id
    return batch_of_root


@pytest.mark.skipif(not CASES, reason="no vectors in tests/vectors/merkle")
def test_contract_verify_agrees_with_every_vector(evidence_anchor, anchored_roots):
    assert {case["expected"] for case in CASES} <= {"valid", "invalid"}
    disagreements = []
    for case in CASES:
        batch_id = anchored_roots[str(case["root"]).lower()]
        answer = evidence_anchor.verify(batch_id, case["leaf"], case["proof"])
        if answer != (case["expected"] == "valid"):
            disagreements.append(f"{case['file']}: {case['name']} gave {answer}, expected {case['expected']}")
    assert not disagreements, "\n".join(disagreements)
    assert sum(case["expected"] == "invalid" for case in CASES) > 0
