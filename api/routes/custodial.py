"""Custodial volunteers, who hold no key of their own: the ledger keeps one for each
(``wallets.custodial``). Their coordinator relays their count, or gives them a single-use,
expiring invitation code with which they sign in on their own phone (``POST
/v1/auth/invitation``) to upload photos, submit their count (signed here with their key) and
read their receipts (``GET /v1/me/records``)."""

from __future__ import annotations

from fastapi import APIRouter, Response
from starlette.concurrency import run_in_threadpool

from api.deps import CallerDep, StateDep, access
from api.routes.submissions import receipt_response
from api.schemas import CustodialTallyCreate, InvitationCreate, InvitationPublic, TallyReceiptPublic
from ledger.app import RELAYING_ROLES, VOLUNTEER

router = APIRouter(prefix="/v1/custodial", tags=["custodial volunteers"])


@router.post(
    "/tallies", status_code=201, response_model=TallyReceiptPublic, **access(*RELAYING_ROLES, VOLUNTEER, errors=(404, 409))
)
async def custodial_tally(body: CustodialTallyCreate, caller: CallerDep, state: StateDep) -> Response:
    """A custodial level-1 volunteer's count (an unsigned tally), signed here with their key
    and submitted. Sent by a coordinator whose key is scoped to the volunteer's organisation,
    or by the volunteer themselves, signed in with an invitation (``volunteer`` is then their
    own address). Anyone else, another organisation's volunteer, or a volunteer who holds
    their own key, is 403 (``ledger.people.callers.check_relay``)."""
    accepted = await state.ledger_app.relay_tally(caller, body.volunteer, body.tally)
    state.feed.notify()
    return receipt_response(accepted)


@router.post("/invitations", status_code=201, response_model=InvitationPublic, **access(*RELAYING_ROLES, errors=(404,)))
async def create_invitation(body: InvitationCreate, caller: CallerDep, state: StateDep) -> InvitationPublic:
    """A sign-in code for a custodial volunteer of your organisation, shown once: give it to
    them (read it out, or send it). It works once, until ``expires_at``
    (``TALLY_INVITATION_LIFETIME_HOURS``), and not after their sessions are ended."""
    invitation = await run_in_threadpool(state.ledger_app.invite_custodial, caller, body.volunteer)
    return InvitationPublic(
        code=invitation.code, address=invitation.address, public_id=invitation.public_id, expires_at=invitation.expires_at
    )
