"""Models of who may call the API: principals with API keys, registered volunteers, and
the one-time sign-in challenges of volunteers. The rules live in ``ledger.people``
(callers, keys, sessions, service; the one registry of people in ``ledger.people.registry``);
the queries in ``ledger.store.access`` and ``ledger.store.people``."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from ledger.store.models import Base, UTCDateTime

__all__ = ["AuthChallenge", "Invitation", "Principal", "Volunteer"]


class Principal(Base):
    """A holder of an API key: constituency head, war room, newsroom, auditor or admin.

    Only the SHA-256 of the key is stored (keys are 256-bit random, so a fast hash is
    enough); ``token_hint`` is the key's first characters, for telling keys apart.
    """

    __tablename__ = "principals"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    role: Mapped[str] = mapped_column(String(32), index=True)
    name: Mapped[str] = mapped_column(String(100))
    scope: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    token_hint: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_by: Mapped[int | None] = mapped_column(ForeignKey("principals.id"), nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class Volunteer(Base):
    """An Ethereum address allowed to sign in as a volunteer and submit tallies.

    ``session_generation`` is written into each session token; ending the address's
    sessions (sign-out, or a coordinator's revocation) increments it, so every token
    issued before no longer matches."""

    __tablename__ = "volunteers"

    address: Mapped[str] = mapped_column(String(42), primary_key=True)  # EIP-55 checksummed
    name: Mapped[str | None] = mapped_column(String(100), nullable=True)
    registered_at: Mapped[datetime] = mapped_column(UTCDateTime())
    registered_by: Mapped[int | None] = mapped_column(ForeignKey("principals.id"), nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    session_generation: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    sessions_ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class AuthChallenge(Base):
    """A sign-in message issued to an address; it may be answered once, before it expires."""

    __tablename__ = "auth_challenges"

    nonce: Mapped[str] = mapped_column(String(64), primary_key=True)
    address: Mapped[str] = mapped_column(String(42), index=True)
    message: Mapped[str] = mapped_column(Text)
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class Invitation(Base):
    """A sign-in code a coordinator gives a custodial volunteer, who has no key of their own:
    answered once, before it expires, it opens a session as that volunteer. Only the code's
    SHA-256 is stored (codes are 80-bit random, a fast hash is enough)."""

    __tablename__ = "invitations"

    code_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    address: Mapped[str] = mapped_column(String(42), index=True)
    issued_by: Mapped[int | None] = mapped_column(ForeignKey("principals.id"), nullable=True)
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    session_generation: Mapped[int] = mapped_column(Integer)
    """The volunteer's session generation when it was issued: ending their sessions ends it too."""
