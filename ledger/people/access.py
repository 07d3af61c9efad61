"""Who may call the API: roles, principals with API keys, volunteer sign-in, rate limits.

Pure rules and data access; the HTTP layer (``api/deps.py``) only reads the
``Authorization`` header and hands the token here.

Roles
=====
``volunteer``          reports tallies and uploads photos; signs in with their Ethereum key
``constituency_head``  reviews the reports of their constituencies (``scope``)
``war_room``           the coalition's operations room: everything read-only, plus the feed
``newsroom``           media partners: the open data at higher rate limits, plus the feed
``auditor``            anyone who wants a key for higher rate limits on the open data
``admin``              creates principals and registers volunteers
``anonymous``          (no credentials) the public: open data at the lowest rate limit

Credentials (``Authorization: Bearer <token>``)
===============================================
- **API keys** (every role but volunteer): ``tly_`` + 43 characters of URL-safe base64 (256
  random bits). Shown once when made; only their SHA-256 is stored, which is enough for
  keys of that strength (no password KDF is needed). A key is revoked by the admin.
- **Volunteer sessions**: a volunteer is a registered Ethereum address. To sign in they ask
  for a challenge (a text message with a one-time nonce and an expiry), sign it with
  ``personal_sign`` (EIP-191), and trade the signature for a session token::

      tvs2.<checksummed address>.<session generation>.<expiry, unix seconds>.<base64url HMAC-SHA256>

  The HMAC key is ``<data dir>/keys/session.secret`` (made on first use). Sessions are not
  stored, but each volunteer has a session generation (``volunteers.session_generation``)
  that every token carries: ending the address's sessions (``POST /v1/auth/signout``, or a
  coordinator's or the admin's revocation) increments it, and a token of an older
  generation is refused. So a token is good until it expires, its sessions are ended, or
  its volunteer is revoked; deleting the secret file ends every session. Tokens of the
  first format, ``tvs1.<address>.<expiry>.<mac>``, are still accepted until they expire,
  as generation 0.

Rate limits
===========
A token bucket per caller: per API key, per volunteer address, and per client IP for
anonymous callers. Each role has a rate (requests per second); a bucket holds
``rate × burst_seconds`` requests. An empty bucket raises ``RateLimited`` with the seconds
until the next request would be admitted.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import secrets
import threading
import time
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import delete, select, update

from ledger.core.signing import to_checksum_address
from ledger.core.strict import InvalidNumber, parse_decimal
from ledger.core.timefmt import format_time_seconds
from ledger.election import Election
from ledger.errors import Forbidden, InvalidSignature, LedgerError, NotFound
from ledger.people.registry import ORGANISATION_ID_PATTERN, PeopleRegistry
from ledger.people.roles import ANONYMOUS, KEY_ROLES, RELAYING_ROLES, ROLES, VOLUNTEER
from ledger.plaintext import check_plain_text
from ledger.store import AuthChallenge, Database, Principal, Volunteer

__all__ = [
    "ANONYMOUS",
    "API_KEY_PREFIX",
    "KEY_ROLES",
    "LEGACY_SESSION_PREFIX",
    "RELAYING_ROLES",
    "ROLES",
    "SESSION_PREFIX",
    "AccessService",
    "Caller",
    "Forbidden",
    "InvalidScope",
    "RateLimited",
    "RateLimiter",
    "SessionSigner",
    "Unauthenticated",
    "challenge_message",
    "check_relay",
    "check_submitter",
    "hash_api_key",
    "is_session_token",
    "load_or_create_session_secret",
    "new_api_key",
    "recover_personal_sign",
    "require_role",
]

API_KEY_PREFIX = "tly_"
SESSION_PREFIX = "tvs2."
LEGACY_SESSION_PREFIX = "tvs1."
"""Tokens issued before session generations: generation 0, accepted until they expire."""
_ID_PATTERN = re.compile(r"^[A-Z0-9_]{1,32}$")


# -- errors ------------------------------------------------------------------------


class Unauthenticated(LedgerError, PermissionError):
    """No credentials where some are needed, or credentials that are not (or no longer) good."""


class InvalidScope(LedgerError, ValueError):
    """A principal's scope names areas that are not in the election."""


class RateLimited(LedgerError, RuntimeError):
    """Too many requests; ``retry_after`` says how many seconds to wait."""

    def __init__(self, message: str, *, retry_after: float):
        self.retry_after = retry_after
        super().__init__(message)


# -- callers -----------------------------------------------------------------------


@dataclass(frozen=True)
class Caller:
    """Who is calling: a role, and what identifies them for auditing and rate limits."""

    role: str
    rate_key: str
    name: str = ""
    principal_id: int | None = None
    address: str | None = None
    scope: Mapping[str, Any] | None = field(default=None, hash=False)

    @property
    def anonymous(self) -> bool:
        return self.role == ANONYMOUS


def anonymous_caller(client_ip: str | None) -> Caller:
    return Caller(role=ANONYMOUS, rate_key=f"ip:{client_ip or 'unknown'}", name="anonymous")


def require_role(caller: Caller, allowed: Iterable[str]) -> None:
    """Raise ``Unauthenticated`` (no credentials) or ``Forbidden`` unless ``caller.role`` is allowed."""
    allowed = tuple(allowed)
    if caller.role in allowed:
        return
    listed = ", ".join(allowed)
    if caller.anonymous:
        raise Unauthenticated(f"this needs credentials (Authorization: Bearer <token>) of one of the roles: {listed}")
    raise Forbidden(f"this is for the roles {listed}; you are signed in as {caller.role} {caller.name!r}")


def check_submitter(caller: Caller, submission: Any) -> None:
    """A signed-in person may submit only records whose ``submitter`` is their own address.

    No API key may submit one, whatever its role and scope: a tally signed by a volunteer
    is submitted by that volunteer, signed in; relaying a volunteer's count is the
    custodial path's job (``check_relay``). A missing or malformed submitter is left for
    validation to report with its field path.
    """
    if caller.address is None:
        raise Forbidden(
            f"only a signed-in person may submit a tally signed with their key, and you are the API key of "
            f"{caller.role} {caller.name!r}: a volunteer, head or war-room member submits their own, signed in "
            "(POST /v1/auth/challenge); a coordinator relays the count of a custodial volunteer of their "
            "organisation at POST /v1/custodial/tallies"
        )
    stated = submission.get("submitter") if isinstance(submission, Mapping) else None
    if not isinstance(stated, str):
        return
    try:
        submitter = to_checksum_address(stated)
    except InvalidSignature:
        return
    if submitter != caller.address:
        raise Forbidden(
            f"this record's submitter is {submitter}, but you are signed in as {caller.address}: "
            "a volunteer may submit only records signed with their own key"
        )


def check_relay(caller: Caller, *, volunteer: str, organisation: str | None, level: int, custodial: bool) -> None:
    """Who may have the ledger sign a count with a volunteer's custodial key and submit it.

    Only a coordinator's API key whose scope lists the volunteer's organisation, and only for
    a custodial level-1 volunteer of it: the organisation recruited the volunteer and holds
    their trust, and takes the count by phone. Nobody else: the war room, heads and the
    admin judge the reports, so a report they entered in a volunteer's name would be their
    own number posing as an independent organisation's; a head enters corrections signed
    with their own key. ``volunteer`` is the public id, for the messages.
    """
    if caller.role not in RELAYING_ROLES:
        raise Forbidden(
            f"only a coordinator of the volunteer's organisation relays a custodial volunteer's count; "
            f"you are {caller.role} {caller.name!r}"
        )
    managed = set((caller.scope or {}).get("organisations", []))
    if organisation is None or organisation not in managed:
        raise Forbidden(
            f"{volunteer} belongs to {organisation or 'no organisation'}, and coordinator {caller.name!r} "
            f"relays only for {', '.join(sorted(managed)) or 'no organisation'}"
        )
    if level != 1:
        raise Forbidden(
            f"{volunteer} is a level-{level} member: only level-1 volunteers' counts are relayed; "
            "heads and the war room sign their own"
        )
    if not custodial:
        raise Forbidden(f"{volunteer} holds their own key; they sign and submit their tallies themselves")


# -- API keys ----------------------------------------------------------------------


def new_api_key() -> str:
    return API_KEY_PREFIX + secrets.token_urlsafe(32)


def hash_api_key(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


# -- volunteer sessions ------------------------------------------------------------


def load_or_create_session_secret(path: Path) -> bytes:
    """The HMAC key of session tokens, made (32 random bytes, mode 0600) on first use."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w", encoding="ascii") as handle:
            handle.write(secrets.token_hex(32))
    secret = bytes.fromhex(path.read_text(encoding="ascii").strip())
    if len(secret) < 32:
        raise LedgerError(f"{path} must hold at least 32 bytes of hex")
    return secret


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


class SessionSigner:
    """Issues and checks volunteer session tokens (stateless, HMAC-SHA256)."""

    def __init__(self, secret: bytes, *, lifetime_seconds: float, clock: Callable[[], float] = time.time):
        self._secret = secret
        self.lifetime_seconds = lifetime_seconds
        self._clock = clock

    def _mac(self, address: str, expires: int, generation: int | None = None) -> str:
        """The MAC of a token; ``generation=None`` for a legacy ``tvs1.`` token."""
        if generation is None:
            message = f"{LEGACY_SESSION_PREFIX}{address}.{expires}".encode("ascii")
        else:
            message = f"{SESSION_PREFIX}{address}.{generation}.{expires}".encode("ascii")
        return _b64(hmac.new(self._secret, message, hashlib.sha256).digest())

    def issue(self, address: str, *, generation: int = 0) -> tuple[str, datetime]:
        """A token for ``address`` at its current session ``generation``, and its expiry."""
        expires = int(self._clock() + self.lifetime_seconds)
        token = f"{SESSION_PREFIX}{address}.{generation}.{expires}.{self._mac(address, expires, generation)}"
        return token, datetime.fromtimestamp(expires, UTC)

    def verify(self, token: str) -> str:
        """The volunteer address of a good, unexpired token; raises ``Unauthenticated``."""
        return self.verify_session(token)[0]

    def verify_session(self, token: str) -> tuple[str, int]:
        """``(address, session generation)`` of a good, unexpired token; raises ``Unauthenticated``.

        The token is parsed strictly before anything else reads it: ASCII only, an address
        of 40 hex digits, an expiry of canonical ASCII digits (``ledger.core.strict``), and a MAC
        of 43 base64url characters. Anything else (a Thai or superscript digit, a sign, a
        leading zero) is a malformed token, never an exception of another kind."""
        address, generation, expires, mac = _parse_session_token(token)
        expected = self._mac(address, expires, None if token.startswith(LEGACY_SESSION_PREFIX) else generation)
        if not hmac.compare_digest(mac.encode("ascii"), expected.encode("ascii")):
            raise Unauthenticated("session token is not valid here (wrong signature); sign in again")
        if expires <= self._clock():
            raise Unauthenticated("session expired; sign in again at POST /v1/auth/challenge")
        return address, generation


_SESSION_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}", re.ASCII)
_SESSION_MAC = re.compile(r"[A-Za-z0-9_-]{43}", re.ASCII)


def is_session_token(token: str) -> bool:
    return token.startswith((SESSION_PREFIX, LEGACY_SESSION_PREFIX))


def _token_number(text: str, max_digits: int, refusal: Unauthenticated) -> int:
    """A number field of a session token, by the strict rule; ``refusal`` otherwise."""
    try:
        return parse_decimal(text, max_digits=max_digits)
    except InvalidNumber:
        raise refusal from None


def _parse_session_token(token: object) -> tuple[str, int, int, str]:
    """``(address, generation, expiry, mac)`` of a ``tvs2.`` token (or of a legacy ``tvs1.``
    one, generation 0), or ``Unauthenticated`` saying what is wrong."""

    def malformed(what: str) -> Unauthenticated:
        return Unauthenticated(f"malformed session token ({what}); sign in again at POST /v1/auth/challenge")

    if not isinstance(token, str) or not is_session_token(token):
        raise malformed(f"it does not start with {SESSION_PREFIX!r}")
    if not token.isascii():
        raise malformed("it holds characters that are not ASCII")
    parts = token[len(SESSION_PREFIX) :].split(".")
    generation = 0
    if token.startswith(LEGACY_SESSION_PREFIX):
        if len(parts) != 3:
            raise malformed("expected tvs1.<address>.<expiry>.<signature>")
        address, expires_text, mac = parts
    else:
        if len(parts) != 4:
            raise malformed("expected tvs2.<address>.<generation>.<expiry>.<signature>")
        address, generation_text, expires_text, mac = parts
        generation = _token_number(generation_text, 9, malformed("the session generation is not a whole number in ASCII digits"))
    if _SESSION_ADDRESS.fullmatch(address) is None:
        raise malformed("the address is not 0x and 40 hex digits")
    expires = _token_number(expires_text, 12, malformed("the expiry is not a time in whole seconds, in ASCII digits"))
    if _SESSION_MAC.fullmatch(mac) is None:
        raise malformed("the signature is not 43 base64url characters")
    return address, generation, expires, mac


# -- challenges (EIP-191 personal_sign) --------------------------------------------


def challenge_message(*, election_id: str, address: str, nonce: str, issued_at: datetime, expires_at: datetime) -> str:
    """The text a volunteer signs with ``personal_sign`` to sign in."""
    return (
        "Tally Ledger volunteer sign-in\n"
        "\n"
        "Sign this message to report tallies with this address. It costs nothing and sends no transaction.\n"
        "\n"
        f"Election: {election_id}\n"
        f"Address: {address}\n"
        f"Nonce: {nonce}\n"
        f"Issued At: {format_time_seconds(issued_at)}\n"
        f"Expiration Time: {format_time_seconds(expires_at)}"
    )


def recover_personal_sign(message: str, signature: str) -> str:
    """The checksummed address that signed ``message`` with EIP-191 ``personal_sign``.

    Raises ``Unauthenticated`` when the signature is malformed or recovers to no key.
    """
    from eth_account import Account
    from eth_account.messages import encode_defunct

    try:
        if not isinstance(signature, str) or not signature.startswith("0x"):
            raise ValueError("not 0x-prefixed hex")
        raw = bytes.fromhex(signature[2:])
        if len(raw) != 65:
            raise ValueError(f"{len(raw)} bytes, not 65")
        recovered = Account.recover_message(encode_defunct(text=message), signature=raw)
    except Exception as exc:  # eth-account raises several types for bad signatures
        raise Unauthenticated(f"the signature is not a 65-byte personal_sign signature of the challenge ({exc})") from None
    return to_checksum_address(str(recovered))


# -- the service -------------------------------------------------------------------


class _TTLCache:
    """A small thread-safe cache whose entries expire; cleared wholesale when it grows too big."""

    def __init__(self, ttl_seconds: float, *, max_entries: int = 50_000, clock: Callable[[], float] = time.monotonic):
        self.ttl = ttl_seconds
        self.max_entries = max_entries
        self._clock = clock
        self._items: dict[str, tuple[float, Any]] = {}
        self._lock = threading.Lock()

    def get(self, key: str) -> tuple[bool, Any]:
        hit = self._items.get(key)
        if hit is None or hit[0] < self._clock():
            return False, None
        return True, hit[1]

    def put(self, key: str, value: Any) -> None:
        if self.ttl <= 0:
            return
        # Jittered lifetimes: entries cached together do not all expire (and get looked up) together.
        lifetime = self.ttl * (0.75 + 0.5 * secrets.randbelow(1000) / 1000)
        with self._lock:
            if len(self._items) >= self.max_entries:
                self._items.clear()
            self._items[key] = (self._clock() + lifetime, value)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()

    def discard(self, key: str) -> None:
        with self._lock:
            self._items.pop(key, None)


class AccessService:
    """Principals, volunteers, challenges and sessions, over the database. Thread-safe."""

    def __init__(
        self,
        *,
        database: Database,
        election: Election,
        sessions: SessionSigner,
        challenge_lifetime_seconds: float = 300,
        cache_seconds: float = 5.0,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        member_role: Callable[[str], str | None] | None = None,
    ):
        """``member_role(address)`` gives a signed-in member's role by their level in the
        hierarchy (unit volunteer, constituency head, war room); plain volunteers without
        a level sign in as ``volunteer``."""
        self.member_role = member_role
        self.database = database
        self.election = election
        self.sessions = sessions
        self.challenge_lifetime = timedelta(seconds=challenge_lifetime_seconds)
        self.clock = clock
        self.registry = PeopleRegistry(database=database, clock=lambda: self.clock())
        self._principals = _TTLCache(cache_seconds)
        self._volunteers = _TTLCache(cache_seconds)
        self._generation_floor: dict[str, int] = {}
        """The generation each address's sessions were ended at in this process: a lookup
        that read the old one just before may cache it after, and must not win."""
        self._session_roles = _TTLCache(cache_seconds)

    # -- principals ----------------------------------------------------------------

    def _check_scope(self, scope: Mapping[str, Any] | None) -> dict[str, Any] | None:
        if scope is None:
            return None
        known: dict[str, Collection[str]] = {
            "constituencies": self.election.constituencies,
            "provinces": self.election.provinces,
            "organisations": self.registry.organisation_ids(),
        }
        checked: dict[str, list[str]] = {}
        for kind, ids in scope.items():
            if kind not in known:
                raise InvalidScope(f"scope.{kind}: a scope lists 'constituencies', 'provinces' and/or 'organisations'")
            for position, area in enumerate(ids):
                pattern = ORGANISATION_ID_PATTERN if kind == "organisations" else _ID_PATTERN
                if not isinstance(area, str) or not pattern.match(area) or area not in known[kind]:
                    raise InvalidScope(f"scope.{kind}[{position}]: {area!r} is not one of this election's {kind}")
            checked[kind] = sorted(set(ids))
        return checked

    def create_principal(
        self, *, role: str, name: str, scope: Mapping[str, Any] | None = None, created_by: int | None = None
    ) -> tuple[Principal, str]:
        """Make an API key for ``role``; returns the row and the key (the only time it is seen)."""
        if role not in KEY_ROLES:
            hint = " (volunteers sign in with their own key at POST /v1/auth/challenge)" if role == VOLUNTEER else ""
            raise InvalidScope(f"role {role!r} cannot hold an API key{hint}; roles: {', '.join(KEY_ROLES)}")
        check_plain_text(name, field="name")
        token = new_api_key()
        row = Principal(
            role=role,
            name=name,
            scope=self._check_scope(scope),
            token_hash=hash_api_key(token),
            token_hint=token[:10],
            created_at=self.clock(),
            created_by=created_by,
        )
        with self.database.session() as session:
            session.add(row)
        return row, token

    def principals(self, *, include_revoked: bool = False) -> list[Principal]:
        with self.database.session() as session:
            query = select(Principal).order_by(Principal.id)
            if not include_revoked:
                query = query.where(Principal.revoked_at.is_(None))
            return list(session.scalars(query))

    def revoke_principal(self, principal_id: int, *, revoked_by: int | None = None) -> Principal:
        """Revoke a key. An admin cannot revoke the key they are using (so one always remains)."""
        if revoked_by is not None and revoked_by == principal_id:
            raise Forbidden("you cannot revoke the key you are using; another admin can")
        with self.database.session() as session:
            row = session.get(Principal, principal_id)
            if row is None:
                raise NotFound(f"no principal {principal_id}")
            if row.revoked_at is None:
                row.revoked_at = self.clock()
        self._principals.clear()
        return row

    # -- volunteers ----------------------------------------------------------------

    def register_volunteer(
        self, *, address: str, name: str | None = None, registered_by: int | None = None
    ) -> tuple[Volunteer, bool]:
        """Register (or re-admit a revoked) volunteer address (``ledger.people.registry``);
        returns the row and whether it changed."""
        row, changed = self.registry.register_volunteer(address=address, name=name, registered_by=registered_by)
        if changed:
            self._volunteers.clear()
            self._session_roles.clear()
        return row, changed

    def volunteers(self, *, offset: int = 0, limit: int = 1000) -> list[Volunteer]:
        with self.database.session() as session:
            query = select(Volunteer).order_by(Volunteer.registered_at, Volunteer.address).offset(offset).limit(limit)
            return list(session.scalars(query))

    def revoke_volunteer(self, address: str) -> Volunteer:
        address = to_checksum_address(address)
        with self.database.session() as session:
            row = session.get(Volunteer, address)
            if row is None:
                raise NotFound(f"{address} is not a registered volunteer")
            if row.revoked_at is None:
                row.revoked_at = self.clock()
        self._volunteers.clear()
        self._session_roles.clear()
        return row

    def is_volunteer(self, address: str) -> bool:
        return self._session_generation(address) is not None

    def _session_generation(self, address: str) -> int | None:
        """The address's current session generation; ``None`` when it is not (or no longer)
        a registered volunteer. Cached; ``end_sessions`` drops the entry at once."""
        hit, generation = self._volunteers.get(address)
        if not hit:
            with self.database.session() as session:
                row = session.get(Volunteer, address)
                generation = (row.session_generation or 0) if row is not None and row.revoked_at is None else None
            self._volunteers.put(address, generation)
        if generation is None:
            return None
        return max(int(generation), self._generation_floor.get(address, 0))

    def end_sessions(self, address: str) -> Volunteer:
        """End every session of ``address`` (its tokens so far stop working), by moving its
        session generation on; ``NotFound`` when it is not a registered volunteer."""
        address = to_checksum_address(address)
        with self.database.session() as session:
            if session.get(Volunteer, address) is None:
                raise NotFound(f"{address} is not a registered volunteer")
            session.execute(
                update(Volunteer)
                .where(Volunteer.address == address)
                .values(session_generation=Volunteer.session_generation + 1, sessions_ended_at=self.clock())
            )
        with self.database.session() as session:
            row = session.get(Volunteer, address)
        assert row is not None
        self._generation_floor[address] = row.session_generation or 0
        self._volunteers.discard(address)
        self._session_roles.discard(address)
        return row

    def sign_out(self, caller: Caller) -> Volunteer:
        """End every session of the signed-in caller (all their devices: a lost phone's too)."""
        if caller.address is None:
            raise Forbidden(
                f"you are the API key of {caller.role} {caller.name!r}, which has no sessions to end; "
                "the admin revokes a key (DELETE /v1/admin/principals/{id})"
            )
        return self.end_sessions(caller.address)

    @staticmethod
    def _check_generation(address: str, generation: int, current: int | None) -> None:
        if current is None:
            raise Unauthenticated(f"{address} is no longer a registered volunteer")
        if generation != current:
            raise Unauthenticated(
                "this session was ended (signed out, or revoked by a coordinator); sign in again at POST /v1/auth/challenge"
            )

    # -- sign-in -------------------------------------------------------------------

    def issue_challenge(self, address: str) -> AuthChallenge:
        """A one-time sign-in message for ``address`` (expired challenges are swept here)."""
        address = to_checksum_address(address)
        now = self.clock()
        nonce = secrets.token_hex(16)
        expires = now + self.challenge_lifetime
        row = AuthChallenge(
            nonce=nonce,
            address=address,
            message=challenge_message(
                election_id=self.election.id, address=address, nonce=nonce, issued_at=now, expires_at=expires
            ),
            issued_at=now,
            expires_at=expires,
        )
        with self.database.session() as session:
            session.execute(delete(AuthChallenge).where(AuthChallenge.expires_at < now - timedelta(hours=1)))
            session.add(row)
        return row

    def open_session(self, *, address: str, nonce: str, signature: str) -> tuple[str, datetime, str]:
        """Check a signed challenge and return ``(token, expires_at, address)``.

        Raises ``Unauthenticated`` for an unknown, used or expired nonce or a signature by
        another key, and ``Forbidden`` when the address is not a registered volunteer.
        """
        address = to_checksum_address(address)
        now = self.clock()
        with self.database.session() as session:
            challenge = session.get(AuthChallenge, nonce) if isinstance(nonce, str) and len(nonce) <= 64 else None
            if challenge is None or challenge.address != address:
                raise Unauthenticated(
                    f"no sign-in challenge {nonce!r} was issued to {address}; ask for one at POST /v1/auth/challenge"
                )
            if challenge.used_at is not None:
                raise Unauthenticated("this challenge was already used; ask for a new one")
            if challenge.expires_at <= now:
                raise Unauthenticated("this challenge has expired; ask for a new one")
            signer = recover_personal_sign(challenge.message, signature)
            if not hmac.compare_digest(signer, address):
                raise Unauthenticated(f"the challenge was signed by {signer}, not by {address}")
            used = session.execute(
                update(AuthChallenge).where(AuthChallenge.nonce == nonce, AuthChallenge.used_at.is_(None)).values(used_at=now)
            )
            if used.rowcount != 1:  # type: ignore[attr-defined]
                raise Unauthenticated("this challenge was already used; ask for a new one")
        generation = self._session_generation(address)
        if generation is None:
            raise Forbidden(f"{address} is not a registered volunteer; ask your coordinator to register it")
        token, expires_at = self.sessions.issue(address, generation=generation)
        return token, expires_at, address

    # -- authenticating requests -----------------------------------------------------

    @staticmethod
    def anonymous(client_ip: str | None) -> Caller:
        return anonymous_caller(client_ip)

    def peek(self, token: str | None, *, client_ip: str | None) -> Caller | None:
        """``authenticate`` without I/O: the caller when nothing needs the database, else ``None``."""
        if token is None:
            return anonymous_caller(client_ip)
        if is_session_token(token):
            address, generation = self.sessions.verify_session(token)
            hit, current = self._volunteers.get(address)
            role_hit, role = self._session_roles.get(address)
            if not hit or not role_hit:
                return None
            self._check_generation(address, generation, current)
            return Caller(role=role, rate_key=f"{role}:{address}", name=address, address=address)
        if token.startswith(API_KEY_PREFIX):
            hit, caller = self._principals.get(hash_api_key(token))
            return caller if hit else None
        raise Unauthenticated("unknown kind of token: expected an API key (tly_…) or a volunteer session (tvs2.…)")

    def authenticate(self, token: str | None, *, client_ip: str | None) -> Caller:
        """The caller a bearer token stands for (``None``: anonymous); raises ``Unauthenticated``."""
        if token is None:
            return anonymous_caller(client_ip)
        if is_session_token(token):
            address, generation = self.sessions.verify_session(token)
            self._check_generation(address, generation, self._session_generation(address))
            role = (self.member_role(address) if self.member_role else None) or VOLUNTEER
            self._session_roles.put(address, role)  # the role of a member's level, for peek
            return Caller(role=role, rate_key=f"{role}:{address}", name=address, address=address)
        if not token.startswith(API_KEY_PREFIX):
            raise Unauthenticated("unknown kind of token: expected an API key (tly_…) or a volunteer session (tvs2.…)")
        digest = hash_api_key(token)
        hit, caller = self._principals.get(digest)
        if hit:
            return caller  # type: ignore[no-any-return]
        with self.database.session() as session:
            row = session.scalars(select(Principal).where(Principal.token_hash == digest)).one_or_none()
        if row is None or row.revoked_at is not None:
            raise Unauthenticated("this API key is not valid" + (" (revoked)" if row is not None else ""))
        caller = Caller(role=row.role, rate_key=f"key:{row.id}", name=row.name, principal_id=row.id, scope=row.scope)
        self._principals.put(digest, caller)
        return caller


# -- rate limiting -----------------------------------------------------------------


class RateLimiter:
    """Token buckets per caller key. ``rates`` maps a role to requests per second (≤ 0: unlimited)."""

    def __init__(
        self,
        rates: Mapping[str, float],
        *,
        burst_seconds: float = 5.0,
        enabled: bool = True,
        max_keys: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.rates = dict(rates)
        self.burst_seconds = burst_seconds
        self.enabled = enabled
        self.max_keys = max_keys
        self._clock = clock
        self._buckets: dict[str, list[float]] = {}
        self._lock = threading.Lock()

    def capacity(self, role: str) -> float:
        return max(1.0, self.rates.get(role, 0.0) * self.burst_seconds)

    def admit(self, caller: Caller) -> None:
        """Take one request from the caller's bucket, or raise ``RateLimited``."""
        rate = self.rates.get(caller.role, 0.0)
        if not self.enabled or rate <= 0:
            return
        capacity = self.capacity(caller.role)
        now = self._clock()
        with self._lock:
            bucket = self._buckets.get(caller.rate_key)
            if bucket is None:
                if len(self._buckets) >= self.max_keys:
                    self._prune(now)
                bucket = self._buckets[caller.rate_key] = [capacity, now]
            tokens = min(capacity, bucket[0] + (now - bucket[1]) * rate)
            bucket[1] = now
            if tokens >= 1.0:
                bucket[0] = tokens - 1.0
                return
            bucket[0] = tokens
        wait = (1.0 - tokens) / rate
        raise RateLimited(
            f"too many requests: {caller.role} callers may make {rate:g} requests per second "
            f"(bursts of {capacity:g}); retry in {wait:.2f} s",
            retry_after=wait,
        )

    def _prune(self, now: float) -> None:
        """Forget buckets that have refilled completely (they hold nothing worth keeping)."""
        longest = self.burst_seconds
        for key in [k for k, (_, last) in self._buckets.items() if now - last >= longest]:
            del self._buckets[key]
        if len(self._buckets) >= self.max_keys:
            self._buckets.clear()
