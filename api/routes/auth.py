"""Volunteer sign-in (challenge → personal_sign → session) and ``whoami``."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool

from api.deps import EVERYONE, CallerDep, StateDep, access
from api.schemas import (
    ChallengeCreate,
    ChallengePublic,
    InvitationRedeem,
    SessionCreate,
    SessionPublic,
    SessionsEndedPublic,
    WhoAmIPublic,
)
from ledger.app import SIGNED_IN_ROLES
from ledger.views import SessionsEndedView

router = APIRouter(prefix="/v1/auth", tags=["auth"])
SIGNED_IN = SIGNED_IN_ROLES
"""Who signs in with their own key (heads and the war room may also hold API keys, which have no sessions)."""


def sessions_ended(ended: SessionsEndedView) -> SessionsEndedPublic:
    return SessionsEndedPublic(address=ended.address, sessions_ended_at=ended.sessions_ended_at)


@router.post("/challenge", response_model=ChallengePublic, status_code=201, **access(*EVERYONE, errors=(422,)))
async def create_challenge(body: ChallengeCreate, state: StateDep) -> ChallengePublic:
    """Ask for a sign-in message for a volunteer address. Sign its ``message`` with
    ``personal_sign`` (EIP-191) and send the signature to ``POST /v1/auth/session`` before
    ``expires_at``. Each challenge can be used once."""
    challenge = await run_in_threadpool(state.ledger_app.issue_challenge, body.address)
    return ChallengePublic(
        address=challenge.address,
        nonce=challenge.nonce,
        message=challenge.message,
        issued_at=challenge.issued_at,
        expires_at=challenge.expires_at,
    )


@router.post("/session", response_model=SessionPublic, status_code=201, **access(*EVERYONE, errors=(403, 422)))
async def create_session(body: SessionCreate, state: StateDep) -> SessionPublic:
    """Trade a signed challenge for a volunteer session token (lifetime
    ``TALLY_SESSION_LIFETIME_SECONDS``). 401 when the signature or nonce is wrong, 403 when
    the address is not a registered volunteer."""
    session = await run_in_threadpool(
        lambda: state.ledger_app.open_session(address=body.address, nonce=body.nonce, signature=body.signature)
    )
    return SessionPublic(token=session.token, address=session.address, expires_at=session.expires_at)


@router.post("/invitation", response_model=SessionPublic, status_code=201, **access(*EVERYONE, errors=(403,)))
async def redeem_invitation(body: InvitationRedeem, state: StateDep) -> SessionPublic:
    """A custodial volunteer, who holds no key, trades the invitation code their coordinator
    gave them for a session token. Each code works once, before it expires; 401 otherwise."""
    session = await run_in_threadpool(state.ledger_app.redeem_invitation, body.code)
    return SessionPublic(token=session.token, address=session.address, expires_at=session.expires_at)


@router.post("/signout", response_model=SessionsEndedPublic, **access(*SIGNED_IN))
async def sign_out(caller: CallerDep, state: StateDep) -> SessionsEndedPublic:
    """End every session of the signed-in caller, on every device (a lost or stolen
    phone's too): each token issued so far gets 401 from now on. Sign in again to go on.
    An API key has no sessions (403): the admin revokes keys."""
    return sessions_ended(await run_in_threadpool(state.ledger_app.sign_out, caller))


@router.get("/whoami", response_model=WhoAmIPublic, **access(*EVERYONE))
async def whoami(caller: CallerDep) -> WhoAmIPublic:
    """Who the credentials sent stand for (``anonymous`` without any)."""
    return WhoAmIPublic(
        role=caller.role,
        name=caller.name,
        address=caller.address,
        principal_id=caller.principal_id,
        scope=dict(caller.scope) if caller.scope else None,
    )
