"""The queries of access control (``ledger.people.service``): API key principals, the
volunteers' sign-in state, and sign-in challenges, answering with frozen rows."""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select, update

from ledger.store.access_models import AuthChallenge, Invitation, Principal, Volunteer
from ledger.store.people import VolunteerRow, volunteer_row
from ledger.store.session import Database

__all__ = [
    "ChallengeRow",
    "PrincipalRow",
    "add_challenge",
    "add_invitation",
    "add_principal",
    "end_sessions",
    "get_challenge",
    "list_principals",
    "list_volunteers",
    "principal_by_token_hash",
    "revoke_principal",
    "revoke_volunteer",
    "session_generation",
    "use_challenge",
    "use_invitation",
]


@dataclass(frozen=True, slots=True)
class PrincipalRow:
    """The holder of an API key (only the key's SHA-256 and its first characters are kept)."""

    id: int
    role: str
    name: str
    scope: dict[str, Any] | None
    token_hash: str
    token_hint: str
    created_at: datetime
    created_by: int | None
    revoked_at: datetime | None


@dataclass(frozen=True, slots=True)
class ChallengeRow:
    """A one-time sign-in message issued to an address."""

    nonce: str
    address: str
    message: str
    issued_at: datetime
    expires_at: datetime
    used_at: datetime | None


def _frozen(kind: Any, row: Any) -> Any:
    return kind(**{field.name: getattr(row, field.name) for field in fields(kind)})


# -- principals ----------------------------------------------------------------------


def add_principal(
    database: Database,
    *,
    role: str,
    name: str,
    scope: dict[str, Any] | None,
    token_hash: str,
    token_hint: str,
    created_at: datetime,
    created_by: int | None,
) -> PrincipalRow:
    with database.session() as session:
        row = Principal(
            role=role,
            name=name,
            scope=scope,
            token_hash=token_hash,
            token_hint=token_hint,
            created_at=created_at,
            created_by=created_by,
        )
        session.add(row)
        session.flush()
        return _frozen(PrincipalRow, row)  # type: ignore[no-any-return]


def list_principals(database: Database, *, include_revoked: bool) -> list[PrincipalRow]:
    with database.session() as session:
        query = select(Principal).order_by(Principal.id)
        if not include_revoked:
            query = query.where(Principal.revoked_at.is_(None))
        return [_frozen(PrincipalRow, row) for row in session.scalars(query)]


def revoke_principal(database: Database, principal_id: int, *, revoked_at: datetime) -> PrincipalRow | None:
    """Revoke a key (once: a revoked key keeps its first revocation time); ``None`` if unknown."""
    with database.session() as session:
        row = session.get(Principal, principal_id)
        if row is None:
            return None
        if row.revoked_at is None:
            row.revoked_at = revoked_at
        return _frozen(PrincipalRow, row)  # type: ignore[no-any-return]


def principal_by_token_hash(database: Database, token_hash: str) -> PrincipalRow | None:
    with database.session() as session:
        row = session.scalars(select(Principal).where(Principal.token_hash == token_hash)).one_or_none()
        return None if row is None else _frozen(PrincipalRow, row)


# -- volunteers ----------------------------------------------------------------------


def list_volunteers(database: Database, *, offset: int, limit: int) -> list[VolunteerRow]:
    with database.session() as session:
        query = select(Volunteer).order_by(Volunteer.registered_at, Volunteer.address).offset(offset).limit(limit)
        return [volunteer_row(row) for row in session.scalars(query)]


def revoke_volunteer(database: Database, address: str, *, revoked_at: datetime) -> VolunteerRow | None:
    """Revoke a volunteer (once); ``None`` when the address is not registered."""
    with database.session() as session:
        row = session.get(Volunteer, address)
        if row is None:
            return None
        if row.revoked_at is None:
            row.revoked_at = revoked_at
        return volunteer_row(row)


def session_generation(database: Database, address: str) -> int | None:
    """The volunteer's session generation; ``None`` when not (or no longer) registered."""
    with database.session() as session:
        row = session.get(Volunteer, address)
        return (row.session_generation or 0) if row is not None and row.revoked_at is None else None


def end_sessions(database: Database, address: str, *, ended_at: datetime) -> VolunteerRow | None:
    """Move the volunteer's session generation on (in the database, so that concurrent
    ends each count); the row as it now is, or ``None`` when the address is not registered."""
    with database.session() as session:
        if session.get(Volunteer, address) is None:
            return None
        session.execute(
            update(Volunteer)
            .where(Volunteer.address == address)
            .values(session_generation=Volunteer.session_generation + 1, sessions_ended_at=ended_at)
        )
    with database.session() as session:
        row = session.get(Volunteer, address)
        return None if row is None else volunteer_row(row)


# -- challenges ----------------------------------------------------------------------


def add_challenge(database: Database, challenge: ChallengeRow, *, sweep_before: datetime) -> None:
    """Store a new challenge, and sweep those that expired before ``sweep_before``."""
    with database.session() as session:
        session.execute(delete(AuthChallenge).where(AuthChallenge.expires_at < sweep_before))
        session.add(AuthChallenge(**{field.name: getattr(challenge, field.name) for field in fields(ChallengeRow)}))


def get_challenge(database: Database, nonce: str) -> ChallengeRow | None:
    with database.session() as session:
        row = session.get(AuthChallenge, nonce)
        return None if row is None else _frozen(ChallengeRow, row)


def use_challenge(database: Database, nonce: str, *, used_at: datetime) -> bool:
    """Mark a challenge used, atomically: ``False`` when it was used already."""
    with database.session() as session:
        used = session.execute(
            update(AuthChallenge).where(AuthChallenge.nonce == nonce, AuthChallenge.used_at.is_(None)).values(used_at=used_at)
        )
        return bool(used.rowcount == 1)  # type: ignore[attr-defined]


def add_invitation(
    database: Database,
    *,
    code_hash: str,
    address: str,
    session_generation: int,
    issued_by: int | None,
    issued_at: datetime,
    expires_at: datetime,
) -> None:
    """Store a new invitation, and sweep those that expired a day before ``issued_at``."""
    with database.session() as session:
        session.execute(delete(Invitation).where(Invitation.expires_at < issued_at - timedelta(days=1)))
        session.add(
            Invitation(
                code_hash=code_hash,
                address=address,
                session_generation=session_generation,
                issued_by=issued_by,
                issued_at=issued_at,
                expires_at=expires_at,
            )
        )


def use_invitation(database: Database, code_hash: str, *, now: datetime) -> tuple[str | None, int, str]:
    """Mark an unused, unexpired invitation used, atomically: ``(address, session generation
    at issue, "")``, or ``(None, 0, why)`` with why ``"unknown"``, ``"used"`` or ``"expired"``."""
    with database.session() as session:
        row = session.get(Invitation, code_hash)
        if row is None:
            return None, 0, "unknown"
        if row.used_at is not None:
            return None, 0, "used"
        if row.expires_at <= now:
            return None, 0, "expired"
        used = session.execute(
            update(Invitation).where(Invitation.code_hash == code_hash, Invitation.used_at.is_(None)).values(used_at=now)
        )
        if used.rowcount != 1:  # type: ignore[attr-defined]
            return None, 0, "used"
        return str(row.address), int(row.session_generation), ""
