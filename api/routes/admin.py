"""Administration: principals with API keys, registered volunteers. Admin only."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response
from starlette.concurrency import run_in_threadpool

from api.deps import ADMIN_ONLY, CallerDep, StateDep, access
from api.schemas import PrincipalCreate, PrincipalCreated, PrincipalPublic, VolunteerCreate, VolunteerPublic
from ledger.views import PrincipalView, VolunteerView

router = APIRouter(prefix="/v1/admin", tags=["admin"])

AddressPath = Annotated[str, Path(pattern=r"^0x[0-9a-fA-F]{40}$", description="The volunteer's address")]


def principal_public(principal: PrincipalView) -> PrincipalPublic:
    return PrincipalPublic(
        id=principal.id,
        role=principal.role,
        name=principal.name,
        scope=principal.scope,
        token_hint=principal.token_hint,
        created_at=principal.created_at,
        revoked_at=principal.revoked_at,
    )


def volunteer_public(volunteer: VolunteerView) -> VolunteerPublic:
    return VolunteerPublic(
        address=volunteer.address,
        name=volunteer.name,
        registered_at=volunteer.registered_at,
        revoked_at=volunteer.revoked_at,
    )


@router.post("/principals", response_model=PrincipalCreated, status_code=201, **access(*ADMIN_ONLY))
async def create_principal(body: PrincipalCreate, caller: CallerDep, state: StateDep) -> PrincipalCreated:
    """Make an API key for a constituency head, the war room, a newsroom, an auditor or
    another admin. The key is in ``token`` and is shown only in this answer."""
    scope = body.scope.model_dump(exclude_none=True) if body.scope else None
    principal, token = await run_in_threadpool(
        lambda: state.ledger_app.create_principal(role=body.role, name=body.name, scope=scope, created_by=caller.principal_id)
    )
    return PrincipalCreated(**principal_public(principal).model_dump(), token=token)


@router.get("/principals", response_model=list[PrincipalPublic], **access(*ADMIN_ONLY))
async def list_principals(state: StateDep, include_revoked: bool = False) -> list[PrincipalPublic]:
    """Every principal (without their keys)."""
    principals = await run_in_threadpool(lambda: state.ledger_app.principals(include_revoked=include_revoked))
    return [principal_public(principal) for principal in principals]


@router.delete("/principals/{principal_id}", response_model=PrincipalPublic, **access(*ADMIN_ONLY, errors=(404,)))
async def revoke_principal(
    principal_id: Annotated[int, Path(ge=1, le=2**31 - 1)], caller: CallerDep, state: StateDep
) -> PrincipalPublic:
    """Revoke an API key (takes effect within ``TALLY_ACCESS_CACHE_SECONDS`` everywhere).
    An admin cannot revoke their own key (403)."""
    principal = await run_in_threadpool(lambda: state.ledger_app.revoke_principal(principal_id, revoked_by=caller.principal_id))
    return principal_public(principal)


@router.post(
    "/volunteers",
    response_model=VolunteerPublic,
    status_code=201,
    **access(*ADMIN_ONLY, responses={200: {"model": VolunteerPublic, "description": "Already registered; nothing changed"}}),
)
async def register_volunteer(body: VolunteerCreate, caller: CallerDep, state: StateDep, response: Response) -> VolunteerPublic:
    """Register a volunteer's address (201), or re-admit a revoked one; 200 when it was
    already registered. A registered volunteer can sign in and submit tallies."""
    volunteer, created = await run_in_threadpool(
        lambda: state.ledger_app.register_volunteer(address=body.address, name=body.name, registered_by=caller.principal_id)
    )
    response.status_code = 201 if created else 200
    return volunteer_public(volunteer)


@router.get("/volunteers", response_model=list[VolunteerPublic], **access(*ADMIN_ONLY))
async def list_volunteers(
    state: StateDep,
    offset: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
) -> list[VolunteerPublic]:
    """Registered volunteers, oldest first (revoked ones show ``revoked_at``)."""
    volunteers = await run_in_threadpool(lambda: state.ledger_app.volunteers(offset=offset, limit=limit))
    return [volunteer_public(volunteer) for volunteer in volunteers]


@router.delete("/volunteers/{address}", response_model=VolunteerPublic, **access(*ADMIN_ONLY, errors=(404,)))
async def revoke_volunteer(address: AddressPath, state: StateDep) -> VolunteerPublic:
    """Revoke a volunteer: their sessions stop working within ``TALLY_ACCESS_CACHE_SECONDS``."""
    return volunteer_public(await run_in_threadpool(state.ledger_app.revoke_volunteer, address))
