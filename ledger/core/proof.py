"""Checking a ``tally-proof-v1`` document without trusting whoever served it.

A proof document (made by ``ledger.sealing.batches.Batcher.proof``) carries everything needed:

    {"format": "tally-proof-v1", "record_cid": "bafyrei…", "polling_unit": "BKK_1-0001",
     "leaf": {"format": "tally-leaf-v1", "encoding": ["string", "string", "address"],
              "values": ["bafyrei…", "BKK_1-0001", "0x…"], "hash": "0x…"},
     "status": "pending" | "sealed" | "anchored", "seal_deadline": "…Z",
     "batch": {"id": 7, "root": "0x…", "record_count": 1000, "manifest_cid": "bafkrei…",
               "tree_index": 1234, "position": 17} | null,
     "proof": ["0x…", …],
     "anchor": {"chain_id": 31337, "contract": "0x…", "batch_id": 7, "tx_hash": "0x…",
                "block_number": 123, "block_hash": "0x…"} | null}

``check_proof_document`` recomputes the leaf from its values and the root from the path.
It does not consult a chain: comparing the root with ``EvidenceAnchor.batch(id)`` is the
caller's step (``tally verify`` does it over JSON-RPC).
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from typing import Any

from ledger.core.errors import InvalidEncoding, InvalidProof
from ledger.core.leaf import LEAF_ENCODING, LEAF_FORMAT, leaf_hash
from ledger.core.merkle import root_from_proof

__all__ = ["PROOF_FORMAT", "check_proof_document"]

PROOF_FORMAT = "tally-proof-v1"


def _bytes32(value: object, where: str) -> bytes:
    if not isinstance(value, str) or not value.startswith("0x") or len(value) != 66:
        raise InvalidEncoding(f"{where} must be a 0x-prefixed 32-byte hex string, got {value!r}")
    try:
        return bytes.fromhex(value[2:])
    except ValueError:
        raise InvalidEncoding(f"{where} is not hex: {value!r}") from None


def check_proof_document(document: Mapping[str, Any]) -> bytes:
    """Check a sealed proof document and return the batch root it proves inclusion in.

    Raises ``InvalidEncoding`` for a malformed document and ``InvalidProof`` when the
    leaf does not match its values or the path does not lead to the stated root.
    """
    if document.get("format") != PROOF_FORMAT:
        raise InvalidEncoding(f"not a {PROOF_FORMAT} document (format is {document.get('format')!r})")
    leaf = document.get("leaf") or {}
    if leaf.get("format") != LEAF_FORMAT or list(leaf.get("encoding", [])) != list(LEAF_ENCODING):
        raise InvalidEncoding(f"leaf must be {LEAF_FORMAT} with encoding {list(LEAF_ENCODING)}")
    values = leaf.get("values")
    if not isinstance(values, list) or len(values) != 3:
        raise InvalidEncoding("leaf.values must be [record_cid, polling_unit, signer]")
    if values[0] != document.get("record_cid") or values[1] != document.get("polling_unit"):
        raise InvalidProof("leaf values name a different record or polling unit than the document")
    computed_leaf = leaf_hash(values)
    stated_leaf = _bytes32(leaf.get("hash"), "leaf.hash")
    if not hmac.compare_digest(computed_leaf, stated_leaf):
        raise InvalidProof(
            "leaf hash does not match its values",
            expected_root=leaf.get("hash"),
            computed_root="0x" + computed_leaf.hex(),
        )
    batch = document.get("batch")
    if not batch:
        raise InvalidProof(f"record {document.get('record_cid')} is still pending: its batch is not sealed yet")
    path = [_bytes32(node, f"proof[{i}]") for i, node in enumerate(document.get("proof") or [])]
    root = _bytes32(batch.get("root"), "batch.root")
    computed = root_from_proof(computed_leaf, path)
    if not hmac.compare_digest(computed, root):
        raise InvalidProof(
            f"proof of {document.get('record_cid')} does not lead to the root of batch {batch.get('id')}",
            expected_root=batch.get("root"),
            computed_root="0x" + computed.hex(),
        )
    return root
