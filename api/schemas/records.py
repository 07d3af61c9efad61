"""Public reading: records, proofs, batches, and the feed of every entry."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from api.schemas.common import Timestamp, _Open

__all__ = [
    "AnchorPublic",
    "BatchPagePublic",
    "BatchPublic",
    "FeedItemPublic",
    "FeedPagePublic",
    "LeafPublic",
    "OzDumpPublic",
    "OzValuePublic",
    "ProofBatchPublic",
    "ProofPublic",
    "RecordPublic",
    "UnitProofsPublic",
    "UnitRecordsPublic",
]

# -- records, proofs, batches ----------------------------------------------------------


class RecordPublic(BaseModel):
    record_cid: str
    kind: str
    polling_unit: str
    constituency_id: str
    signer: str
    submission_id: str
    received_at: Timestamp
    batch_id: int | None
    record: dict[str, Any] = Field(description='The record as JSON (photo links as {"/": cid}, signature as hex)')
    receipt: dict[str, Any]


class OwnRecordsPublic(BaseModel):
    address: str
    records: list[RecordPublic] = Field(description="Your newest tallies, newest first, each with its signed receipt")


class UnitRecordsPublic(BaseModel):
    polling_unit: str
    constituency_id: str
    records: list[RecordPublic]


class LeafPublic(_Open):
    format: str
    encoding: list[str]
    values: list[str]
    hash: str


class ProofBatchPublic(_Open):
    id: int
    root: str
    record_count: int
    manifest_cid: str
    tree_index: int
    position: int | None


class AnchorPublic(_Open):
    chain_id: int | None
    contract: str | None
    batch_id: int
    tx_hash: str | None
    block_number: int | None
    block_hash: str | None


class ProofPublic(_Open):
    """A ``tally-proof-v1`` document (see ``ledger/proofs.py``)."""

    format: Literal["tally-proof-v1"]
    record_cid: str
    polling_unit: str
    leaf: LeafPublic
    status: Literal["pending", "sealed", "anchored"]
    seal_deadline: str | None
    batch: ProofBatchPublic | None
    proof: list[str]
    anchor: AnchorPublic | None


class UnitProofsPublic(BaseModel):
    polling_unit: str
    proofs: list[ProofPublic]


class BatchPublic(BaseModel):
    id: int
    root: str
    record_count: int
    sealed_at: Timestamp
    manifest_cid: str
    status: Literal["sealed", "sending", "anchored"]
    anchor: AnchorPublic | None


class BatchPagePublic(BaseModel):
    batches: list[BatchPublic]
    offset: int
    limit: int
    next_offset: int | None = Field(description="Pass as offset for the next page; null at the end")


class OzValuePublic(_Open):
    value: list[str]
    treeIndex: int


class OzDumpPublic(_Open):
    """``@openzeppelin/merkle-tree``'s ``StandardMerkleTree.dump()`` of the batch (``standard-v1``)."""

    format: Literal["standard-v1"]
    leafEncoding: list[str]
    tree: list[str]
    values: list[OzValuePublic]


# -- feed -------------------------------------------------------------------------------


class FeedItemPublic(_Open):
    cursor: int = Field(description="Pass as 'after' (or Last-Event-ID) to continue after this item")
    kind: str
    record_cid: str
    polling_unit: str
    constituency_id: str
    signer: str
    received_at: Timestamp
    document: dict[str, Any]


class FeedPagePublic(BaseModel):
    items: list[FeedItemPublic]
    next_cursor: int
    has_more: bool = Field(description="true when the page was full: ask again at once with after=next_cursor")
