"""Test helpers and fixtures, moved out of the test module that first needed them."""

from __future__ import annotations

from ledger.chain.anvil import find_anvil_binary
from ledger.chain.deploy import (
    open_evidence_client,
)
from ledger.chain.evidence import EvidenceAnchorClient
from ledger.core.leaf import leaf_hash
from ledger.core.merkle import build_tree
from ledger.errors import ChainError
from ledger.settings import Settings

MANIFEST_CID = "bafyreigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi"


try:
    find_anvil_binary()
    HAVE_ANVIL = True
except ChainError:
    HAVE_ANVIL = False


def tree_of(count: int, tag: str):  # type: ignore[no-untyped-def]
    values = [[MANIFEST_CID, f"BKK_{tag}-{index:04d}", "0x1C9f69c66fA53935DDf059Fb7486C4bE62CB7844"] for index in range(count)]
    return values, build_tree([leaf_hash(value) for value in values])


def open_client(settings: Settings) -> EvidenceAnchorClient:
    return open_evidence_client(settings)
