"""CONSENSUS-CRITICAL: the batch manifest, whose CID is anchored on chain next to the root.
Changing what ``encode_manifest`` writes breaks every anchored batch: add a new format.

The manifest lists every leaf value of a batch in batch order, so that anyone can rebuild
the batch's OpenZeppelin ``StandardMerkleTree`` from content alone.

Manifest format ``tally-batch-manifest-v1`` (UTF-8 JSON, keys sorted, no spaces)::

    {"batch_id": 1, "election": "th2566", "format": "tally-batch-manifest-v1",
     "leaf_encoding": ["string", "string", "address"], "leaf_format": "tally-leaf-v1",
     "record_count": 2, "root": "0x…",
     "records": [["bafyrei…", "BKK_1-0001", "0xAb…"], ["bafyrei…", "BKK_1-0002", "0xCd…"]]}
"""

from __future__ import annotations

import json
from typing import Any

from ledger.core.errors import InvalidEncoding
from ledger.core.leaf import LEAF_ENCODING, LEAF_FORMAT

__all__ = ["MANIFEST_FORMAT", "encode_manifest", "parse_manifest"]

MANIFEST_FORMAT = "tally-batch-manifest-v1"


def encode_manifest(*, batch_id: int, election: str, root: bytes, records: list[tuple[str, str, str]]) -> bytes:
    document = {
        "format": MANIFEST_FORMAT,
        "batch_id": batch_id,
        "election": election,
        "leaf_format": LEAF_FORMAT,
        "leaf_encoding": list(LEAF_ENCODING),
        "record_count": len(records),
        "root": "0x" + root.hex(),
        "records": [list(values) for values in records],
    }
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def parse_manifest(data: bytes) -> dict[str, Any]:
    """Parse and shape-check a manifest; raises ``InvalidEncoding`` with the reason."""
    try:
        document = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidEncoding(f"batch manifest is not JSON: {exc}") from exc
    if not isinstance(document, dict) or document.get("format") != MANIFEST_FORMAT:
        raise InvalidEncoding(f"not a {MANIFEST_FORMAT} document")
    if document.get("leaf_format") != LEAF_FORMAT:
        raise InvalidEncoding(f"manifest leaf format {document.get('leaf_format')!r} is not {LEAF_FORMAT!r}")
    records = document.get("records")
    if not isinstance(records, list) or len(records) != document.get("record_count"):
        raise InvalidEncoding("manifest record list is missing or disagrees with record_count")
    return document
