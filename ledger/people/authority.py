"""The authority log of a serving ledger: who may report, decide and certify, as signed
``tally-authority-v1`` entries (``ledger.core.authority``), stored, sealed and anchored like
tallies and decisions.

The registry and the assignments change the database and then append the entry that states
the change; the entry is checked against the state first (``Authority.check``), so a change
the rules refuse is refused before anything is written. The ``Authority`` state that the
server consults (``may_decide`` for every decision) is built from the stored entries by the
same pure state machine that ``tally verify all`` replays from the chain and the content,
so server and auditor cannot disagree about who held which role when.

A fresh ledger writes its genesis when the log is first loaded: the ledger's authority key
(``keys/authority.json``) and any further admins of ``TALLY_AUTHORITY_ADMINS``, under
``TALLY_AUTHORITY_THRESHOLD``; then it grants the ledger's service keys (receipts,
automatic acceptance). Entries are signed with the authority key; changing the admins
takes entries signed by as many admins as the rule in force asks.
"""

from __future__ import annotations

import re
import secrets
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from ledger.core.authority import AUTHORITY_FORMAT, MEMBER_ROLES, Authority, AuthorityRefused
from ledger.core.errors import FieldError, InvalidEncoding, InvalidSignature, InvalidTally
from ledger.core.record import sign_entry, unsigned, verify_entry_signature
from ledger.core.signing import address_from_private_key
from ledger.core.timefmt import format_time_micro
from ledger.election import Election
from ledger.errors import ConflictingSubmission, Forbidden, NotFound
from ledger.store import Database
from ledger.store import access as access_store
from ledger.store import entries as store
from ledger.store import people as people_store

__all__ = ["AUTHORITY_KIND", "AuthorityLog", "EntryWriter"]

AUTHORITY_KIND = "authority"
"""The ``kind`` of an authority entry's row among the ledger's entries."""


class EntryWriter(Protocol):
    """Where the log's entries go: the ledger's intake (``ledger.intake.service.Ledger``),
    which stores them as it stores decisions, to be sealed and anchored with them."""

    @property
    def database(self) -> Database: ...

    @property
    def election(self) -> Election: ...

    def prepare(
        self, node: dict[str, object], *, kind: str, subject: str, constituency_id: str, signer: str, entry_id: str
    ) -> Any: ...

    def commit(self, group: Sequence[Any]) -> Sequence[Any]: ...


@dataclass
class _Change:
    """An entry being made by ``AuthorityLog.change``: its node, and once stored, its receipt."""

    node: dict[str, Any]
    receipt: dict[str, Any] | None = None
    skip: bool = False
    """Set inside the block when the database changed nothing: no entry is written."""


class AuthorityLog:
    """The ledger's authority entries and the state they build. Thread-safe: one lock orders
    the checks, writes and applications of entries."""

    def __init__(
        self,
        *,
        ledger: EntryWriter,
        admin_key: bytes,
        service_keys: Mapping[str, str],
        clock: Callable[[], datetime],
    ):
        """``service_keys``: purpose → address of the ledger's own keys (``SERVICE_PURPOSES``)."""
        self.ledger = ledger
        self.election = ledger.election
        self.clock = clock
        self.admin = address_from_private_key(admin_key)
        self._admin_key = admin_key
        self._genesis_admins = [self.admin]
        self._genesis_threshold = 1
        self._open_reporting = False
        self._service_keys = dict(service_keys)
        self.lock = threading.RLock()
        self.state = Authority(constituency_of=self._constituency_of)
        self._cursor = 0

    def _constituency_of(self, unit_id: str) -> str | None:
        try:
            return self.election.polling_unit(unit_id).constituency_id
        except NotFound:
            return None

    # -- the log ---------------------------------------------------------------------------

    def configure(self, *, admins: Sequence[str], threshold: int, open_reporting: bool) -> None:
        """Before ``load``: the rule a fresh ledger's genesis states (``admins`` beside the
        authority key, and how many of them must sign a change of admins; read only when the
        genesis is written), and the open-reporting policy the log must state."""
        self._genesis_admins = sorted({self.admin, *admins})
        self._genesis_threshold = threshold
        self._open_reporting = open_reporting

    def load(self) -> int:
        """Apply the stored entries not yet applied, in ledger order; on a ledger without a
        genesis, write it and the ledger's service keys. Returns how many entries were read."""
        with self.lock:
            read = 0
            for entry_id, cid, document in store.kind_documents_after(self.ledger.database, AUTHORITY_KIND, self._cursor):
                self._cursor = entry_id
                if not self.state.holds(str(document.get("grant_id"))):  # this process's own entries are applied
                    self.state.apply(cid, document)
                    read += 1
            if self.state.genesis is None:
                self._append("genesis", subject="admins", admins=self._genesis_admins, threshold=self._genesis_threshold)
                self._state_registered_before()
            for purpose, address in sorted(self._service_keys.items()):
                if self.state.service_keys.get(purpose) != address:
                    self._append("grant", kind="service_key", subject=purpose, address=address)
            self.set_open_reporting(self._open_reporting)
            return read

    def _state_registered_before(self) -> None:
        """A ledger whose people were registered before it kept an authority log: state its
        organisations, members, their areas and live API keys now, after the genesis, so that
        it goes on. (Its earlier reports and decisions stay unproven: the auditor names them,
        since the log did not exist when they were signed.)"""
        for organisation_id in sorted(people_store.organisation_ids(self.ledger.database)):
            self._append("grant", kind="organisation", subject=organisation_id)
        for member, areas in people_store.active_members(self.ledger.database):
            with self.grant_member(member.address, level=member.level, organisation_id=member.organisation_id):
                pass
            if member.level in (1, 2):
                with self.grant_areas(member.address, areas, level=member.level):
                    pass  # the database holds them already
        for principal in access_store.list_principals(self.ledger.database, include_revoked=False):
            with self.grant_api_key(principal.token_hash, role=principal.role, scope=principal.scope):
                pass

    def set_open_reporting(self, enabled: bool) -> None:
        """State the open-reporting policy in the log, when it says otherwise."""
        with self.lock:
            self._open_reporting = enabled
            if self.state.open_reporting != enabled:
                self._append("grant", kind="policy", subject="open_reporting", enabled=enabled)

    def _append(self, action: str, **fields: Any) -> None:
        """Sign, check, store and apply one entry."""
        with self.change(action, **fields):
            pass

    @contextmanager
    def change(self, action: str, **fields: Any) -> Iterator[_Change]:
        """Check an entry against the state (``Forbidden`` if the rules refuse it), let the
        caller write what it states to the database inside the block, then sign, store and
        apply the entry. The lock is held throughout, so no other change comes between the
        check and the entry; an exception in the block writes no entry."""
        with self.lock:
            node: dict[str, Any] = {
                "format": AUTHORITY_FORMAT,
                "election": self.election.id,
                "grant_id": "g-" + secrets.token_hex(12),
                "granted_at": format_time_micro(self.clock()),
                "signer": self.admin,
                "action": action,
                **fields,
            }
            self._check(node)
            change = _Change(node)
            yield change
            if change.skip:
                return
            change.receipt = self._store(sign_entry(node, self._admin_key)).receipt

    def submit(self, entry: Mapping[str, Any]) -> Any:
        """An entry signed elsewhere by an admin, as JSON (its signature 0x-hex): a change of
        admins takes as many such entries as the rule in force asks. Its envelope and
        signature are checked (``InvalidTally``), then the rules (``Forbidden``); then it is
        stored and applied like the log's own entries. Returns its ``Accepted``."""
        node = _signed_entry(entry, self.election.id)
        with self.lock:
            self._check(node)
            return self._store(node)

    def _check(self, node: Mapping[str, Any]) -> None:
        try:
            self.state.check(node)
        except AuthorityRefused as refused:
            raise Forbidden(str(refused)) from refused

    def _store(self, signed: dict[str, Any]) -> Any:
        """Store a signed, checked entry and apply it (under the lock); its ``Accepted``."""
        prepared = self.ledger.prepare(
            signed,
            kind=AUTHORITY_KIND,
            subject=str(signed["subject"]),
            constituency_id="",
            signer=str(signed["signer"]),
            entry_id=str(signed["grant_id"]),
        )
        (accepted,) = self.ledger.commit([prepared])
        if isinstance(accepted, ConflictingSubmission):  # the same grant id with other content
            raise accepted
        if accepted.created:  # a retry of an entry already applied changes nothing
            self.state.apply(str(prepared.cid), unsigned(signed))
        return accepted

    # -- what the registry and the assignments state -----------------------------------------

    def grant_organisation(self, organisation_id: str) -> AbstractContextManager[_Change]:
        return self.change("grant", kind="organisation", subject=organisation_id)

    def grant_member(self, address: str, *, level: int, organisation_id: str | None) -> AbstractContextManager[_Change]:
        role = next(role for role, at in MEMBER_ROLES.items() if at == level)
        return self.change("grant", kind="member", subject=address, role=role, level=level, organisation=organisation_id)

    def revoke_member(self, address: str) -> AbstractContextManager[_Change | None]:
        """End a member's role (with their constituencies and units); no entry if they hold none."""
        with self.lock:
            if address not in self.state.members:
                return nullcontext()
            return self.change("revoke", kind="member", subject=address)

    def grant_areas(self, address: str, areas: Sequence[str], *, level: int) -> AbstractContextManager[_Change | None]:
        """Grant a level-1 volunteer polling units, or a head constituencies."""
        if not areas:
            return nullcontext()
        kind, name = ("assignment", "units") if level == 1 else ("scope", "constituencies")
        return self.change("grant", kind=kind, subject=address, **{name: sorted(set(areas))})

    def grant_api_key(self, token_hash: str, *, role: str, scope: Mapping[str, Any] | None) -> AbstractContextManager[_Change]:
        return self.change("grant", kind="api_key", subject=token_hash, role=role, scope=None if scope is None else dict(scope))

    def revoke_api_key(self, token_hash: str) -> None:
        """End an API key in the log (nothing if the log does not hold it)."""
        with self.lock:
            if token_hash in self.state.api_keys:
                self._append("revoke", kind="api_key", subject=token_hash)

    # -- what the state answers ------------------------------------------------------------

    def may_report(self, address: str, unit_id: str) -> str | None:
        with self.lock:
            return self.state.may_report(address, unit_id)

    def may_decide(self, address: str, role: str, subject: str) -> str | None:
        with self.lock:
            return self.state.may_decide(address, role, subject)


_ENTRY_FIELDS = {
    "format", "election", "grant_id", "granted_at", "signer", "action", "kind", "subject", "admins", "threshold",
    "organisation", "role", "level", "constituencies", "units", "address", "scope", "enabled", "signature",
}  # fmt: skip
_TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?Z", re.ASCII)


def _signed_entry(entry: Mapping[str, Any], election_id: str) -> dict[str, Any]:
    """The node of an authority entry sent as JSON, its signature checked against its signer."""
    errors: list[FieldError] = []
    if not isinstance(entry, Mapping):
        raise InvalidTally([FieldError((), "an authority entry must be a JSON object")])
    for extra in sorted(set(entry) - _ENTRY_FIELDS):  # keys, roles and organisations only: never a name
        errors.append(FieldError((str(extra),), "is not a field of an authority entry"))
    if entry.get("format") != AUTHORITY_FORMAT:
        errors.append(FieldError(("format",), f"must be {AUTHORITY_FORMAT!r}"))
    if entry.get("election") != election_id:
        errors.append(FieldError(("election",), f"this ledger keeps the authority of election {election_id!r}"))
    if not isinstance(entry.get("granted_at"), str) or not _TIME.fullmatch(entry["granted_at"]):
        errors.append(FieldError(("granted_at",), "must be a UTC time like '2023-05-14T09:00:00Z'"))
    if not isinstance(entry.get("subject"), str):
        errors.append(FieldError(("subject",), "is required: what the entry is about"))
    raw = entry.get("signature")
    signature = None
    if isinstance(raw, str) and raw.startswith("0x") and len(raw) == 132:
        try:
            signature = bytes.fromhex(raw[2:])
        except ValueError:
            pass
    if signature is None:
        errors.append(FieldError(("signature",), "must be 0x and 130 hex digits (65 bytes)"))
    if errors:
        raise InvalidTally(errors)
    node = {**entry, "signature": signature}
    try:
        verify_entry_signature(node)
    except (InvalidSignature, InvalidEncoding) as exc:
        raise InvalidTally([FieldError(("signature",), str(exc))]) from None
    return node
