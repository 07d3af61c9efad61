"""The volunteer hierarchy and the verification of counts (``ledger.review.service``)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from api.deps import EVERYONE, AreaPath, CallerDep, StateDep, UnitPath, access, read_json
from api.routes.auth import sessions_ended
from api.routes.submissions import receipt_response
from api.schemas import (
    AssignmentCreate,
    AssignmentResult,
    MemberCreate,
    MemberPrivate,
    OrganisationCreate,
    OrganisationPublic,
    SessionsEndedPublic,
    TallyReceiptPublic,
)
from ledger.app import (
    ADMIN,
    ADMIN_ONLY,
    ASSIGNING_ROLES,
    COORDINATOR,
    DECIDERS,
    OVERSIGHT,
    PEOPLE_MANAGERS,
    WAR_ROOM,
    Caller,
    Forbidden,
)
from ledger.views import MemberView

router = APIRouter(prefix="/v1", tags=["review"])

AddressPath = Annotated[str, Path(pattern=r"^0x[0-9a-fA-F]{40}$", description="A member's address")]
DECISION_BODY = {"required": True, "content": {"application/json": {"schema": {"type": "object"}}}}


def _organisations_of(caller: Caller) -> set[str] | None:
    """The organisations a coordinator manages; ``None`` for the admin (all of them)."""
    if caller.role == ADMIN:
        return None
    return set((caller.scope or {}).get("organisations", []))


def _check_organisation(caller: Caller, organisation: str | None) -> None:
    managed = _organisations_of(caller)
    if managed is not None and organisation not in managed:
        raise Forbidden(
            f"coordinator {caller.name!r} manages {', '.join(sorted(managed)) or 'no organisation'}, "
            f"not {organisation or 'members without an organisation'}"
        )


def member_private(member: MemberView) -> MemberPrivate:
    return MemberPrivate(
        address=member.address,
        public_id=member.public_id,
        level=member.level,
        organisation=member.organisation,
        name=member.name,
        contact=member.contact,
        custodial=member.custodial,
        refused_attempts=member.refused_attempts,
        rejected_reports=member.rejected_reports,
        flagged=member.flagged,
    )


@router.post("/organisations", response_model=OrganisationPublic, status_code=201, **access(*ADMIN_ONLY, errors=(409,)))
async def create_organisation(body: OrganisationCreate, state: StateDep) -> OrganisationPublic:
    """Register a coalition member organisation (admin)."""
    organisation = await run_in_threadpool(
        lambda: state.ledger_app.create_organisation(organisation_id=body.id, name=body.name, kind=body.kind)
    )
    return OrganisationPublic(id=organisation.id, name=organisation.name, kind=organisation.kind)


@router.get("/organisations", response_model=list[OrganisationPublic], **access(*EVERYONE))
async def list_organisations(state: StateDep) -> list[OrganisationPublic]:
    """The coalition's organisations (open data)."""
    organisations = await run_in_threadpool(state.ledger_app.organisations)
    return [OrganisationPublic(id=o.id, name=o.name, kind=o.kind) for o in organisations]


@router.post("/members", response_model=MemberPrivate, status_code=201, **access(*PEOPLE_MANAGERS, errors=(404, 409)))
async def register_member(body: MemberCreate, caller: CallerDep, state: StateDep) -> MemberPrivate:
    """Register a person. The admin appoints levels 2 and 3; a coordinator registers level-1
    volunteers of their own organisation. With ``custodial`` the ledger makes a key for a
    volunteer who has never used a wallet and keeps it encrypted."""
    if caller.role == COORDINATOR:
        if body.level != 1:
            raise Forbidden("coordinators register level-1 volunteers; the admin appoints heads and the war room")
        _check_organisation(caller, body.organisation)
    if body.custodial == (body.address is not None):
        raise Forbidden("give either your own address or custodial: true, not both or neither")
    member = await run_in_threadpool(
        lambda: state.ledger_app.register_member(
            address=body.address,  # None with custodial: the ledger makes the key
            level=body.level,
            name=body.name,
            organisation_id=body.organisation,
            contact=body.contact,
            custodial=body.custodial,
            registered_by=caller.name,
            acting_role=caller.role,
        )
    )
    return member_private(member)


@router.get("/members/{address}", response_model=MemberPrivate, **access(*PEOPLE_MANAGERS, errors=(404,)))
async def get_member(address: AddressPath, caller: CallerDep, state: StateDep) -> MemberPrivate:
    """A member's record with personal data (admin, or the coordinator of their organisation)."""
    member = await run_in_threadpool(state.ledger_app.member, address)
    _check_organisation(caller, member.organisation)
    return member_private(member)


@router.post("/members/{address}/assignments", response_model=AssignmentResult, **access(*ASSIGNING_ROLES, errors=(404,)))
async def assign(address: AddressPath, body: AssignmentCreate, caller: CallerDep, state: StateDep) -> AssignmentResult:
    """Assign polling units to a level-1 volunteer, or constituencies to a head. The admin
    and the war room assign anyone's areas; a coordinator only polling units, to level-1
    volunteers of their own organisation (403 otherwise)."""
    organisation = None
    if caller.role == COORDINATOR:
        member = await run_in_threadpool(state.ledger_app.member, address)
        _check_organisation(caller, member.organisation)
        organisation = member.organisation
    added = await run_in_threadpool(
        state.review.assign,
        address=address,
        areas=body.areas,
        assigned_by=caller.name,
        organisation_id=organisation,
        acting_role=caller.role,
    )
    return AssignmentResult(address=address, added=added)


@router.post("/members/{address}/sessions/revoke", response_model=SessionsEndedPublic, **access(*PEOPLE_MANAGERS, errors=(404,)))
async def revoke_sessions(address: AddressPath, caller: CallerDep, state: StateDep) -> SessionsEndedPublic:
    """End every session of a member (a lost or stolen phone): the admin, or the
    coordinator of the member's organisation. The member can sign in again with their key;
    to stop them altogether, revoke the volunteer (``DELETE /v1/admin/volunteers/{address}``)."""
    if caller.role == COORDINATOR:
        member = await run_in_threadpool(state.ledger_app.member, address)
        _check_organisation(caller, member.organisation)
    return sessions_ended(await run_in_threadpool(state.ledger_app.end_sessions, address))


@router.get("/members-flagged", **access(*OVERSIGHT))
async def flagged_members(caller: CallerDep, state: StateDep) -> list[dict[str, Any]]:
    """Volunteers whose reports keep being rejected (their pending reports are held)."""
    managed = _organisations_of(caller) if caller.role == COORDINATOR else None
    rows = await run_in_threadpool(state.review.flagged_members)
    return [r for r in rows if managed is None or r["organisation"] in managed]


@router.get("/coverage", **access(*EVERYONE, errors=(404,)))
async def coverage(
    state: StateDep, constituency: Annotated[str | None, Query(pattern=r"^[A-Z0-9_]{1,32}$")] = None
) -> list[dict[str, Any]]:
    """Per constituency: units with volunteers, and from how many organisations (open data)."""
    return await run_in_threadpool(state.review.coverage, constituency)


@router.get("/coverage/{constituency_id}/uncovered", **access(*OVERSIGHT, errors=(404,)))
async def uncovered(constituency_id: AreaPath, state: StateDep, limit: Annotated[int, Query(ge=1, le=5000)] = 1000) -> list[str]:
    """Units of a constituency that no volunteer covers yet, for recruiting."""
    state.ledger_app.election.constituency(constituency_id)
    return await run_in_threadpool(state.review.uncovered_units, constituency_id, limit=limit)


@router.get("/review/queue", **access(*DECIDERS, errors=(404,)))
async def queue(caller: CallerDep, state: StateDep, limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> Any:
    """A head's units needing a decision (oldest first), or the war room's escalations,
    units to certify and constituencies ready to certify."""
    if caller.role == WAR_ROOM:
        return await run_in_threadpool(state.review.war_room_queue, limit=limit)
    if caller.address is not None:
        return await run_in_threadpool(state.review.head_queue, caller.address, limit=limit)
    constituencies = list((caller.scope or {}).get("constituencies", []))
    return await run_in_threadpool(state.review.constituency_queue, constituencies, limit=limit)


@router.get("/units/{unit_id}/review", **access(*EVERYONE, errors=(404,)))
async def unit_review(unit_id: UnitPath, caller: CallerDep, state: StateDep) -> dict[str, Any]:
    """A unit's reports side by side with their photos, flags and decisions. Publicly
    (``"view": "public"``) reporters appear only as their organisation, with no address
    and no volunteer id; the war room, the admin and the unit's heads get ``"full"``, with
    the opaque volunteer id and each record as signed."""
    full = await run_in_threadpool(state.review.may_see_reporters, caller, unit_id)
    return await run_in_threadpool(lambda: state.review.unit_review(unit_id, full=full))


@router.post(
    "/decisions",
    status_code=201,
    response_model=TallyReceiptPublic,
    **access(*DECIDERS, errors=(404, 409, 413, 415), openapi_extra={"requestBody": DECISION_BODY}),
)
async def decide(request: Request, caller: CallerDep, state: StateDep) -> Response:
    """A signed ``tally-decision-v1`` (``wallets.tally_client.sign_decision``): accept,
    correct, reject, escalate (heads, in their constituencies), certify, exclude,
    certify_constituency, reopen (war room). 201 with the ledger's receipt; 200 on a retry."""
    body = await read_json(request)
    if isinstance(body, dict) and body.get("role") not in (None, caller.role):
        raise Forbidden(f"you are signed in as {caller.role}, but the decision is a {body.get('role')}'s")
    accepted = await state.ledger_app.submit_decision(body, caller.address)
    state.feed.notify()
    return receipt_response(accepted)
