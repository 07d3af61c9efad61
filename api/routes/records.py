"""Public reading: records, proofs and batches."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from starlette.concurrency import run_in_threadpool

from api.deps import EVERYONE, CallerDep, CidPath, StateDep, UnitPath, access
from api.schemas import (
    BatchPagePublic,
    BatchPublic,
    OwnRecordsPublic,
    OzDumpPublic,
    ProofPublic,
    RecordPublic,
    UnitProofsPublic,
    UnitRecordsPublic,
)
from ledger.app import VOLUNTEER
from ledger.core.cid import CID
from ledger.views import BatchView, RecordView

router = APIRouter(prefix="/v1", tags=["records and proofs"])

BatchPath = Annotated[int, Path(ge=1, le=2**31 - 1, description="A batch id")]


def record_public(record: RecordView) -> RecordPublic:
    return RecordPublic(
        record_cid=record.record_cid,
        kind=record.kind,
        polling_unit=record.polling_unit,
        constituency_id=record.constituency_id,
        signer=record.signer,
        submission_id=record.submission_id,
        received_at=record.received_at,
        batch_id=record.batch_id,
        record=record.record,
        receipt=record.receipt,
    )


def batch_public(batch: BatchView) -> BatchPublic:
    return BatchPublic(
        id=batch.id,
        root=batch.root,
        record_count=batch.record_count,
        sealed_at=batch.sealed_at,
        manifest_cid=batch.manifest_cid,
        status=batch.status,
        anchor=batch.anchor,
    )  # type: ignore[arg-type]


@router.get("/records/{cid}", response_model=RecordPublic, **access(*EVERYONE, errors=(404,)))
async def get_record(cid: CidPath, state: StateDep) -> RecordPublic:
    """An accepted record as JSON, with its receipt. The canonical bytes are at
    ``GET /v1/content/{cid}`` (DAG-CBOR; ``?format=car`` with its photos)."""
    canonical = str(CID.parse(cid))
    return record_public(await run_in_threadpool(state.ledger_app.record, canonical))


@router.get("/units/{unit_id}/records", response_model=UnitRecordsPublic, **access(*EVERYONE, errors=(404,)))
async def unit_records(unit_id: UnitPath, state: StateDep) -> UnitRecordsPublic:
    """Every record reported for a polling unit, oldest first."""
    unit = state.ledger_app.election.polling_unit(unit_id)
    records = await run_in_threadpool(state.ledger_app.unit_records, unit.id)
    return UnitRecordsPublic(
        polling_unit=unit.id, constituency_id=unit.constituency_id, records=[record_public(record) for record in records]
    )


@router.get("/me/records", response_model=OwnRecordsPublic, **access(VOLUNTEER))
async def own_records(caller: CallerDep, state: StateDep, limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> OwnRecordsPublic:
    """The signed-in volunteer's own tallies, newest first, each with its signed receipt
    (``tally verify receipt`` checks one against the chain)."""
    records = await run_in_threadpool(lambda: state.ledger_app.own_records(caller, limit=limit))
    return OwnRecordsPublic(address=str(caller.address), records=[record_public(record) for record in records])


@router.get("/proofs/{cid}", response_model=ProofPublic, **access(*EVERYONE, errors=(404,)))
async def get_proof(cid: CidPath, state: StateDep) -> dict[str, Any]:
    """The self-sufficient ``tally-proof-v1`` of a record. ``status`` is ``pending`` (not yet
    in a batch; see ``seal_deadline``), ``sealed`` (in a batch whose root is not yet
    confirmed on chain) or ``anchored`` (``anchor`` says where). Check it with
    ``@openzeppelin/merkle-tree`` or ``ledger.core.proof.check_proof_document``."""
    canonical = str(CID.parse(cid))
    return await run_in_threadpool(state.ledger_app.batcher.proof, canonical)


@router.get("/units/{unit_id}/proofs", response_model=UnitProofsPublic, **access(*EVERYONE, errors=(404,)))
async def unit_proofs(unit_id: UnitPath, state: StateDep) -> UnitProofsPublic:
    """The proofs of every record of a polling unit, oldest first."""
    unit = state.ledger_app.election.polling_unit(unit_id)
    proofs = await run_in_threadpool(state.ledger_app.unit_proofs, unit.id)
    return UnitProofsPublic(polling_unit=unit.id, proofs=proofs)  # type: ignore[arg-type]


@router.get("/batches", response_model=BatchPagePublic, tags=["batches"], **access(*EVERYONE))
async def list_batches(
    state: StateDep,
    offset: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> BatchPagePublic:
    """Sealed batches, lowest id first, with their roots and where they are anchored."""
    rows = await run_in_threadpool(lambda: state.ledger_app.batches(offset=offset, limit=limit))
    return BatchPagePublic(
        batches=[batch_public(row) for row in rows],
        offset=offset,
        limit=limit,
        next_offset=offset + len(rows) if len(rows) == limit else None,
    )


@router.get("/batches/{batch_id}", response_model=BatchPublic, tags=["batches"], **access(*EVERYONE, errors=(404,)))
async def get_batch(batch_id: BatchPath, state: StateDep) -> BatchPublic:
    """One batch. Its manifest (every leaf, in order) is ``GET /v1/content/{manifest_cid}``."""
    return batch_public(await run_in_threadpool(state.ledger_app.batch, batch_id))


@router.get("/batches/{batch_id}/oz-dump", response_model=OzDumpPublic, tags=["batches"], **access(*EVERYONE, errors=(404,)))
async def batch_oz_dump(batch_id: BatchPath, state: StateDep) -> dict[str, Any]:
    """The batch as ``@openzeppelin/merkle-tree``'s ``standard-v1`` dump:
    ``StandardMerkleTree.load(dump).root`` is the batch root."""
    return await run_in_threadpool(state.ledger_app.batcher.oz_dump, batch_id)
