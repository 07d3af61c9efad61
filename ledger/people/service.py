"""``AccessService``: principals (API keys), volunteers' sign-in and sessions, and the caller
behind a bearer token, over the database (``ledger.people.access`` describes the credentials)."""

from __future__ import annotations

import hmac
import re
import secrets
import threading
import time
from collections.abc import Callable, Collection, Mapping
from contextlib import AbstractContextManager, nullcontext
from datetime import UTC, datetime, timedelta
from typing import Any

from ledger.core.signing import to_checksum_address
from ledger.election import Election
from ledger.errors import Forbidden, NotFound
from ledger.people.authority import AuthorityLog
from ledger.people.callers import Caller, anonymous_caller
from ledger.people.errors import InvalidScope, Unauthenticated
from ledger.people.keys import (
    API_KEY_PREFIX,
    INVITATION_LENGTH,
    hash_api_key,
    new_api_key,
    new_invitation_code,
    normalise_invitation_code,
)
from ledger.people.registry import ORGANISATION_ID_PATTERN, PeopleRegistry
from ledger.people.roles import KEY_ROLES, VOLUNTEER
from ledger.people.sessions import SessionSigner, challenge_message, is_session_token, recover_personal_sign
from ledger.plaintext import check_plain_text
from ledger.store import Database
from ledger.store import access as store
from ledger.store.access import ChallengeRow, PrincipalRow
from ledger.store.people import VolunteerRow

__all__ = ["AccessService"]

_ID_PATTERN = re.compile(r"^[A-Z0-9_]{1,32}$")


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
    """Principals, volunteers, challenges and sessions, over the database (``ledger.store.access``). Thread-safe."""

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
        authority: AuthorityLog | None = None,
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
        self.authority = authority
        self.registry = PeopleRegistry(database=database, clock=lambda: self.clock(), authority=authority)
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
    ) -> tuple[PrincipalRow, str]:
        """Make an API key for ``role``; returns the row and the key (the only time it is seen)."""
        if role not in KEY_ROLES:
            hint = " (volunteers sign in with their own key at POST /v1/auth/challenge)" if role == VOLUNTEER else ""
            raise InvalidScope(f"role {role!r} cannot hold an API key{hint}; roles: {', '.join(KEY_ROLES)}")
        check_plain_text(name, field="name")
        token = new_api_key()
        checked = self._check_scope(scope)
        stated: AbstractContextManager[Any] = nullcontext()
        if self.authority is not None:  # the key's hash, role and scope; never its name
            stated = self.authority.grant_api_key(hash_api_key(token), role=role, scope=checked)
        with stated:
            row = store.add_principal(
                self.database,
                role=role,
                name=name,
                scope=checked,
                token_hash=hash_api_key(token),
                token_hint=token[:10],
                created_at=self.clock(),
                created_by=created_by,
            )
        return row, token

    def principals(self, *, include_revoked: bool = False) -> list[PrincipalRow]:
        return store.list_principals(self.database, include_revoked=include_revoked)

    def revoke_principal(self, principal_id: int, *, revoked_by: int | None = None) -> PrincipalRow:
        """Revoke a key. An admin cannot revoke the key they are using (so one always remains)."""
        if revoked_by is not None and revoked_by == principal_id:
            raise Forbidden("you cannot revoke the key you are using; another admin can")
        row = store.revoke_principal(self.database, principal_id, revoked_at=self.clock())
        if row is None:
            raise NotFound(f"no principal {principal_id}")
        if self.authority is not None:
            self.authority.revoke_api_key(row.token_hash)
        self._principals.clear()
        return row

    # -- volunteers ----------------------------------------------------------------

    def register_volunteer(
        self, *, address: str, name: str | None = None, registered_by: int | None = None
    ) -> tuple[VolunteerRow, bool]:
        """Register (or re-admit a revoked) volunteer address (``ledger.people.registry``);
        returns the row and whether it changed."""
        row, changed = self.registry.register_volunteer(address=address, name=name, registered_by=registered_by)
        if changed:
            self._volunteers.clear()
            self._session_roles.clear()
        return row, changed

    def volunteers(self, *, offset: int = 0, limit: int = 1000) -> list[VolunteerRow]:
        return store.list_volunteers(self.database, offset=offset, limit=limit)

    def revoke_volunteer(self, address: str) -> VolunteerRow:
        address = to_checksum_address(address)
        stated: AbstractContextManager[Any] = nullcontext()
        if self.authority is not None:  # a member's role ends with them
            stated = self.authority.revoke_member(address)
        with stated:
            row = store.revoke_volunteer(self.database, address, revoked_at=self.clock())
            if row is None:
                raise NotFound(f"{address} is not a registered volunteer")
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
            generation = store.session_generation(self.database, address)
            self._volunteers.put(address, generation)
        if generation is None:
            return None
        return max(int(generation), self._generation_floor.get(address, 0))

    def end_sessions(self, address: str) -> VolunteerRow:
        """End every session of ``address`` (its tokens so far stop working), by moving its
        session generation on; ``NotFound`` when it is not a registered volunteer."""
        address = to_checksum_address(address)
        row = store.end_sessions(self.database, address, ended_at=self.clock())
        if row is None:
            raise NotFound(f"{address} is not a registered volunteer")
        self._generation_floor[address] = row.session_generation
        self._volunteers.discard(address)
        self._session_roles.discard(address)
        return row

    def sign_out(self, caller: Caller) -> VolunteerRow:
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

    def issue_challenge(self, address: str) -> ChallengeRow:
        """A one-time sign-in message for ``address`` (expired challenges are swept here)."""
        address = to_checksum_address(address)
        now = self.clock()
        nonce = secrets.token_hex(16)
        expires = now + self.challenge_lifetime
        row = ChallengeRow(
            nonce=nonce,
            address=address,
            message=challenge_message(
                election_id=self.election.id, address=address, nonce=nonce, issued_at=now, expires_at=expires
            ),
            issued_at=now,
            expires_at=expires,
            used_at=None,
        )
        store.add_challenge(self.database, row, sweep_before=now - timedelta(hours=1))
        return row

    def open_session(self, *, address: str, nonce: str, signature: str) -> tuple[str, datetime, str]:
        """Check a signed challenge and return ``(token, expires_at, address)``.

        Raises ``Unauthenticated`` for an unknown, used or expired nonce or a signature by
        another key, and ``Forbidden`` when the address is not a registered volunteer.
        """
        address = to_checksum_address(address)
        now = self.clock()
        challenge = store.get_challenge(self.database, nonce) if isinstance(nonce, str) and len(nonce) <= 64 else None
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
        if not store.use_challenge(self.database, nonce, used_at=now):
            raise Unauthenticated("this challenge was already used; ask for a new one")
        generation = self._session_generation(address)
        if generation is None:
            raise Forbidden(f"{address} is not a registered volunteer; ask your coordinator to register it")
        token, expires_at = self.sessions.issue(address, generation=generation)
        return token, expires_at, address

    # -- invitations (custodial volunteers) -------------------------------------------

    def invite(self, *, address: str, issued_by: int | None, lifetime_seconds: float) -> tuple[str, datetime]:
        """A single-use sign-in code for the registered volunteer ``address`` (who may ask is
        the caller's business: ``ledger.people.callers.check_relay``); ``(code, expires_at)``."""
        address = to_checksum_address(address)
        generation = self._session_generation(address)
        if generation is None:
            raise Forbidden(f"{address} is not a registered volunteer")
        code = new_invitation_code()
        now = self.clock()
        expires_at = now + timedelta(seconds=lifetime_seconds)
        store.add_invitation(
            self.database,
            code_hash=hash_api_key(normalise_invitation_code(code) or ""),
            address=address,
            session_generation=generation,
            issued_by=issued_by,
            issued_at=now,
            expires_at=expires_at,
        )
        return code, expires_at

    def redeem_invitation(self, code: str) -> tuple[str, datetime, str]:
        """Open a session with an invitation code, once: ``(token, expires_at, address)``.
        ``Unauthenticated`` for a code that is malformed, unknown, used or expired."""
        normalised = normalise_invitation_code(code)
        if normalised is None:
            raise Unauthenticated(
                f"an invitation code is {INVITATION_LENGTH} letters and digits (dashes and spaces are ignored), "
                "as your coordinator gave it"
            )
        address, issued_generation, why = store.use_invitation(self.database, hash_api_key(normalised), now=self.clock())
        if address is None:
            raise Unauthenticated(
                {
                    "unknown": "no such invitation; check the code with your coordinator",
                    "used": "this invitation was used already; ask your coordinator for a new one",
                    "expired": "this invitation has expired; ask your coordinator for a new one",
                }[why]
            )
        generation = self._session_generation(address)
        if generation is None:
            raise Forbidden(f"{address} is no longer a registered volunteer; ask your coordinator")
        if generation != issued_generation:
            raise Unauthenticated("your sessions were ended after this invitation was issued; ask your coordinator for a new one")
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
        row = store.principal_by_token_hash(self.database, digest)
        if row is None or row.revoked_at is not None:
            raise Unauthenticated("this API key is not valid" + (" (revoked)" if row is not None else ""))
        caller = Caller(role=row.role, rate_key=f"key:{row.id}", name=row.name, principal_id=row.id, scope=row.scope)
        self._principals.put(digest, caller)
        return caller
