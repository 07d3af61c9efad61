"""The election definition and the service's health and readiness. Public."""

from __future__ import annotations

from functools import cache
from typing import Annotated

import orjson
from fastapi import APIRouter, Header, Response

from api.deps import EVERYONE, AreaPath, CallerDep, StateDep, access
from api.schemas import (
    CandidatePublic,
    ConstituencyPublic,
    ConstituencySummaryPublic,
    ElectionPublic,
    HealthPublic,
    PartyPublic,
    ProvincePublic,
    QuarantinedPublic,
    ReadyPublic,
)
from ledger.app import REASON_READERS
from ledger.election import Election
from ledger.views import strong_etag

router = APIRouter(prefix="/v1", tags=["election"])


@cache
def _election_json(election: Election) -> tuple[bytes, str]:
    document = ElectionPublic(
        id=election.id,
        name=election.name,
        polling_day=election.polling_day,
        polls_close=election.polls_close,
        constituency_seats=election.constituency_seats,
        party_list_seats=election.party_list_seats,
        max_voters_per_unit=election.max_voters_per_unit,
        unit_count=election.unit_count,
        registered_voters=election.registered_voters,
        provinces=[
            ProvincePublic(id=p.id, name=p.name, name_en=p.name_en, registered_voters=p.registered_voters)
            for p in election.provinces.values()
        ],
        parties=[
            PartyPublic(id=p.id, number=p.number, name=p.name, abbreviation=p.abbreviation, color=p.color)
            for p in election.parties.values()
        ],
        constituencies=[
            ConstituencySummaryPublic(
                id=c.id,
                province_id=c.province_id,
                number=c.number,
                registered_voters=c.registered_voters,
                unit_count=c.unit_count,
            )
            for c in election.constituencies.values()
        ],
    )
    body = orjson.dumps(document.model_dump())
    return body, strong_etag(body)


@router.get(
    "/election",
    response_model=ElectionPublic,
    **access(*EVERYONE, responses={304: {"description": "Not modified (If-None-Match matched)"}}),
)
async def get_election(state: StateDep, if_none_match: Annotated[str | None, Header(include_in_schema=False)] = None) -> Response:
    """What is being counted: provinces, constituencies, parties, seats, polling units."""
    body, etag = _election_json(state.ledger_app.election)
    headers = {"ETag": etag, "Cache-Control": "public, max-age=300"}
    if if_none_match is not None and etag in if_none_match:
        return Response(status_code=304, headers=headers)
    return Response(body, media_type="application/json", headers=headers)


@router.get("/election/constituencies/{constituency_id}", response_model=ConstituencyPublic, **access(*EVERYONE, errors=(404,)))
async def get_constituency(constituency_id: AreaPath, state: StateDep) -> ConstituencyPublic:
    """One constituency: its candidates (ballot numbers) and the range of its polling unit ids."""
    c = state.ledger_app.election.constituency(constituency_id)
    return ConstituencyPublic(
        id=c.id,
        province_id=c.province_id,
        number=c.number,
        registered_voters=c.registered_voters,
        unit_count=c.unit_count,
        zones=list(c.zones),
        first_unit=f"{c.id}-0001",
        last_unit=f"{c.id}-{c.unit_count:04d}",
        candidates=[
            CandidatePublic(number=number, name=candidate.name, party_id=candidate.party_id)
            for number, candidate in sorted(c.candidates.items())
        ],
    )


@router.get("/health", response_model=HealthPublic, tags=["service"], **access(*EVERYONE))
async def health(state: StateDep) -> HealthPublic:
    """Liveness: which election this serves and how far the aggregates have counted."""
    settings = state.settings
    pool = state.ledger_app.prepare_pool
    return HealthPublic(
        status="ok",
        election=state.ledger_app.election.id,
        entries_counted=state.aggregates.cursor,
        background={
            "aggregates": settings.api_refresh_aggregates,
            "sealer": settings.api_seal_batches,
            "anchorer": settings.api_anchor_batches,
        },
        prepare_workers=0 if pool is None or pool.broken else pool.workers,
    )


@router.get("/ready", response_model=ReadyPublic, tags=["service"], **access(*EVERYONE))
async def ready(state: StateDep, caller: CallerDep) -> ReadyPublic:
    """Readiness: whether every ledger entry could be counted, screened, replayed and sealed.

    An entry that cannot (one written before validation was strict, a database row lost
    or edited by hand) is set aside and listed here; the service goes on serving everything
    else, so the answer is 200 either way. The reason (an error's own text, which may quote
    the database) is shown to the war room, the admin and auditors; everyone else sees the
    stage, the entry and its subject. ``tally verify all --api`` reports these entries too."""
    quarantine = state.ledger_app.quarantine
    told = caller.role in REASON_READERS
    return ReadyPublic(
        status="degraded" if len(quarantine) else "ready",
        election=state.ledger_app.election.id,
        entries_counted=state.aggregates.cursor,
        quarantined=len(quarantine),
        entries=[QuarantinedPublic(**{**item.as_json(), **({} if told else {"reason": None})}) for item in quarantine.items(100)],
    )
