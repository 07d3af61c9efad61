"""Volunteer sign-in (challenge → personal_sign → session) and ``whoami``."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool

from api.deps import EVERYONE, CallerDep, StateDep, access
from api.schemas import ChallengeCreate, ChallengePublic, SessionCreate, SessionPublic, SessionsEndedPublic, WhoAmIPublic
from ledger.intake.service import format_time
from ledger.store import Volunteer

router = APIRouter(prefix="/v1/auth", tags=["auth"])
SIGNED_IN = ("volunteer", "constituency_head", "war_room")
"""Who signs in with their own key (heads and the war room may also hold API keys, which have no sessions)."""


def sessions_ended(row: Volunteer) -> SessionsEndedPublic:
    assert row.sessions_ended_at is not None
    return SessionsEndedPublic(address=row.address, sessions_ended_at=format_time(row.sessions_ended_at))


@router.post("/challenge", response_model=ChallengePublic, status_code=201, **access(*EVERYONE, errors=(422,)))
async def create_challenge(body: ChallengeCreate, state: StateDep) -> ChallengePublic:
    """Ask for a sign-in message for a volunteer address. Sign its ``message`` with
    ``personal_sign`` (EIP-191) and send the signature to ``POST /v1/auth/session`` before
    ``expires_at``. Each challenge can be used once."""
    row = await run_in_threadpool(state.access.issue_challenge, body.address)
    return ChallengePublic(
        address=row.address,
        nonce=row.nonce,
        message=row.message,
        issued_at=format_time(row.issued_at),
        expires_at=format_time(row.expires_at),
    )


@router.post("/session", response_model=SessionPublic, status_code=201, **access(*EVERYONE, errors=(403, 422)))
async def create_session(body: SessionCreate, state: StateDep) -> SessionPublic:
    """Trade a signed challenge for a volunteer session token (lifetime
    ``TALLY_SESSION_LIFETIME_SECONDS``). 401 when the signature or nonce is wrong, 403 when
    the address is not a registered volunteer."""
    token, expires_at, address = await run_in_threadpool(
        state.access.open_session, address=body.address, nonce=body.nonce, signature=body.signature
    )
    return SessionPublic(token=token, address=address, expires_at=format_time(expires_at))


@router.post("/signout", response_model=SessionsEndedPublic, **access(*SIGNED_IN))
async def sign_out(caller: CallerDep, state: StateDep) -> SessionsEndedPublic:
    """End every session of the signed-in caller, on every device (a lost or stolen
    phone's too): each token issued so far gets 401 from now on. Sign in again to go on.
    An API key has no sessions (403): the admin revokes keys."""
    return sessions_ended(await run_in_threadpool(state.access.sign_out, caller))


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
