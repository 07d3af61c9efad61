"""Who may report, decide and certify, as ledger entries: the authority log and its state machine.

CONSENSUS-CRITICAL (format ``tally-authority-v1``). An authority entry is signed by an
admin's key exactly like a decision (EIP-712 ``LedgerEntry``, ``ledger.core.signing``:
subject ↔ ``subject``, entryId ↔ ``grant_id``, createdAt ↔ ``granted_at``, signer ↔
``signer``), stored as DAG-CBOR, batched and anchored like tallies and decisions. The
server and the auditor apply the same entries to the same ``Authority``, so they cannot
disagree about who held which role when.

A ``tally-authority-v1`` node::

    format        "tally-authority-v1"
    election      election id
    grant_id      8-64 chars of [A-Za-z0-9_-] (idempotency)
    granted_at    UTC time "YYYY-MM-DDTHH:MM:SS(.ffffff)Z"
    signer        EIP-55 address of an admin under the rule in force
    action        "genesis" | "admins" | "grant" | "revoke"
    kind          (grant, revoke) see KINDS
    subject       what the entry is about (see KINDS); for genesis and admins, "admins"
    ...           the kind's fields (below)
    signature     65 bytes

Kinds, their subject and fields (a grant replaces what an earlier grant of the same kind
and subject said; a revoke ends it, or for ``scope`` and ``assignment`` removes the listed
items)::

    organisation  subject = organisation id
    member        subject = member's address; role (MEMBER_ROLES), level 1|2|3, organisation
                  (an organisation id; null allowed for levels 2 and 3)
    scope         subject = head's address; constituencies = [constituency id, ...]
    assignment    subject = volunteer's address; units = [polling unit id, ...]
    service_key   subject = purpose (SERVICE_PURPOSES); address
    api_key       subject = SHA-256 of the key, 64 hex digits; role; scope = null, or a map of
                  SCOPE_KINDS to lists of ids (the areas the key is limited to)
    policy        subject = "open_reporting"; enabled = true|false (revoke: false)

The roots of trust are the admins and their threshold. The first entry is a ``genesis``
(``admins`` = sorted addresses, ``threshold`` ≥ 1), signed by one of its own admins; its
CID is what the anchoring contract is told to trust. Every later entry is signed by a
current admin; an ``admins`` entry (a new ``admins`` list and ``threshold``) takes effect
only when ``threshold`` distinct current admins have signed the same proposal. Entries carry
keys, roles and organisations, never a person's name or telephone number.

``Authority`` answers, at the moment it has reached, whether a key may report for a unit,
decide in a role over a unit, or sign as one of the ledger's service keys.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ledger.core.errors import LedgerError
from ledger.core.hashing import checksum_address
from ledger.core.strict import ENTRY_ID_PATTERN

__all__ = [
    "ACTIONS",
    "AUTHORITY_FORMAT",
    "KINDS",
    "MEMBER_ROLES",
    "SCOPE_KINDS",
    "SERVICE_PURPOSES",
    "Authority",
    "AuthorityRefused",
    "Member",
]

AUTHORITY_FORMAT = "tally-authority-v1"
ACTIONS = ("genesis", "admins", "grant", "revoke")
KINDS = ("organisation", "member", "scope", "assignment", "service_key", "api_key", "policy")
MEMBER_ROLES = {"volunteer": 1, "constituency_head": 2, "war_room": 3}
"""The roles a member may hold, with the level each belongs to (an organisation's coordinator
holds an API key, ``api_key``, not a membership)."""
SCOPE_KINDS = ("constituencies", "provinces", "organisations")
"""What an API key's scope may limit it to."""
SERVICE_PURPOSES = ("receipt", "auto_accept", "relay")
"""The ledger's own keys: receipts, automatic acceptance of agreeing reports, relaying for
custodial volunteers."""

_ID = re.compile(r"[A-Za-z0-9_-]{1,64}", re.ASCII)
_KEY_HASH = re.compile(r"[0-9a-f]{64}", re.ASCII)


class AuthorityRefused(LedgerError, ValueError):
    """An authority entry that the rules do not allow, or a signer without the authority it claims."""


@dataclass(frozen=True)
class Member:
    address: str
    organisation: str | None
    role: str

    @property
    def level(self) -> int:
        return MEMBER_ROLES[self.role]


@dataclass
class Authority:
    """The authority state, built by applying ``tally-authority-v1`` entries in ledger order.

    ``constituency_of(unit)`` names a polling unit's constituency (None if unknown): the
    election's definitions, which are data, not authority.
    """

    constituency_of: Callable[[str], str | None]
    admins: frozenset[str] = frozenset()
    threshold: int = 0
    genesis: str | None = None
    organisations: set[str] = field(default_factory=set)
    members: dict[str, Member] = field(default_factory=dict)
    scopes: dict[str, set[str]] = field(default_factory=dict)
    assignments: dict[str, set[str]] = field(default_factory=dict)
    service_keys: dict[str, str] = field(default_factory=dict)
    api_keys: dict[str, tuple[str, tuple[tuple[str, frozenset[str]], ...] | None]] = field(default_factory=dict)
    """Key hash → (role, scope as sorted (kind, ids) pairs, or None for no limit)."""
    open_reporting: bool = False
    """Whether volunteers who are no members may report any unit (members are always held
    to their areas); the server's ``TALLY_OPEN_REPORTING``, stated in the log."""
    _proposals: dict[tuple[frozenset[str], int], set[str]] = field(default_factory=dict)
    _grants: set[str] = field(default_factory=set)

    # -- applying entries ---------------------------------------------------------------

    def check(self, entry: Mapping[str, Any]) -> None:
        """Raise ``AuthorityRefused`` unless ``entry`` may be applied now."""
        self._apply("", entry, dry_run=True)

    def apply(self, entry_cid: str, entry: Mapping[str, Any]) -> None:
        """Apply an entry whose signature the caller has checked against its ``signer``."""
        self._apply(entry_cid, entry, dry_run=False)

    def _apply(self, entry_cid: str, entry: Mapping[str, Any], *, dry_run: bool) -> None:
        action, signer = self._check_entry(entry)
        grant_id = str(entry["grant_id"])
        if grant_id in self._grants:
            raise AuthorityRefused(f"grant_id {grant_id} is already in the authority log")
        if action == "genesis":
            admins, threshold = _admin_rule(entry)
            if self.genesis is not None:
                raise AuthorityRefused("the authority log already has its genesis")
            if signer not in admins:
                raise AuthorityRefused("a genesis must be signed by one of the admins it names")
            if not dry_run:
                self.admins, self.threshold, self.genesis = admins, threshold, entry_cid
        else:
            if self.genesis is None:
                raise AuthorityRefused("the authority log must begin with its genesis")
            if signer not in self.admins:
                raise AuthorityRefused(f"{signer} is not an admin of this ledger")
            if action == "admins":
                self._propose_admins(entry, signer, dry_run=dry_run)
            else:
                self._grant_or_revoke(action, entry, dry_run=dry_run)
        if not dry_run:
            self._grants.add(grant_id)

    @staticmethod
    def _check_entry(entry: Mapping[str, Any]) -> tuple[str, str]:
        if entry.get("format") != AUTHORITY_FORMAT:
            raise AuthorityRefused(f"not a {AUTHORITY_FORMAT} entry")
        action = entry.get("action")
        if action not in ACTIONS:
            raise AuthorityRefused(f"unknown action {action!r}; actions are {', '.join(ACTIONS)}")
        if not isinstance(entry.get("grant_id"), str) or not ENTRY_ID_PATTERN.fullmatch(entry["grant_id"]):
            raise AuthorityRefused("grant_id must be 8-64 characters of A-Z, a-z, 0-9, _ and -")
        return str(action), _address(entry.get("signer"), "signer")

    def _propose_admins(self, entry: Mapping[str, Any], signer: str, *, dry_run: bool) -> None:
        proposal = _admin_rule(entry)
        signed = self._proposals.get(proposal, set())
        if signer in signed:
            raise AuthorityRefused(f"{signer} has already signed this change of admins")
        if dry_run:
            return
        signed = self._proposals.setdefault(proposal, set())
        signed.add(signer)
        if len(signed) >= self.threshold:
            self.admins, self.threshold = proposal
            self._proposals.clear()

    def _grant_or_revoke(self, action: str, entry: Mapping[str, Any], *, dry_run: bool) -> None:
        kind, subject = entry.get("kind"), entry.get("subject")
        if kind not in KINDS:
            raise AuthorityRefused(f"unknown kind {kind!r}; kinds are {', '.join(KINDS)}")
        if not isinstance(subject, str):
            raise AuthorityRefused("subject must be text")
        change = _GRANTS[str(kind)] if action == "grant" else _REVOKES[str(kind)]
        change(self, subject, entry, dry_run)

    # -- what the state answers -------------------------------------------------------------

    def may_report(self, address: str, unit: str) -> str | None:
        """None if ``address`` may sign a tally of ``unit`` now, else why not: a volunteer
        for their units, a head for their constituencies' units (a corrected tally), the
        war room for any; anyone else only under open reporting."""
        member = self.members.get(address)
        if member is None:
            return None if self.open_reporting else f"{address} is not a member in the authority log"
        if member.organisation is not None and member.organisation not in self.organisations:
            return f"{address}'s organisation {member.organisation} is not registered"
        if member.role == "volunteer" and unit not in self.assignments.get(address, set()):
            return f"{address} is not assigned to unit {unit}"
        if member.role == "constituency_head":
            constituency = self.constituency_of(unit)
            if constituency not in self.scopes.get(address, set()):
                return f"{address} is not the head of constituency {constituency or unit}"
        return None

    def may_decide(self, address: str, role: str, subject: str) -> str | None:
        """None if ``address`` may decide as ``role`` over ``subject`` (a unit, or a
        constituency for the constituency actions) now, else why not."""
        if role == "ledger":
            if self.service_keys.get("auto_accept") != address:
                return f"{address} is not the ledger's automatic-acceptance key"
            return None
        member = self.members.get(address)
        if member is None or member.role != role:
            held = f"a {member.role}" if member else "not a member"
            return f"{address} does not hold the role {role} ({held})"
        if member.organisation is not None and member.organisation not in self.organisations:
            return f"{address}'s organisation {member.organisation} is not registered"
        if role == "constituency_head":
            constituency = self.constituency_of(subject) or subject
            if constituency not in self.scopes.get(address, set()):
                return f"{address} is not the head of constituency {constituency}"
        return None

    def holds(self, grant_id: str) -> bool:
        """Whether an entry with ``grant_id`` has been applied."""
        return grant_id in self._grants

    def is_service_key(self, purpose: str, address: str) -> bool:
        return self.service_keys.get(purpose) == address


def _address(value: object, what: str) -> str:
    if not isinstance(value, str):
        raise AuthorityRefused(f"{what} must be an EIP-55 address")
    try:
        address = checksum_address(value)
    except ValueError as error:
        raise AuthorityRefused(f"{what}: {error}") from error
    if address != value:
        raise AuthorityRefused(f"{what} must be written in its EIP-55 checksum form, {address}")
    return address


def _admin_rule(entry: Mapping[str, Any]) -> tuple[frozenset[str], int]:
    admins, threshold = entry.get("admins"), entry.get("threshold")
    if entry.get("subject") != "admins":
        raise AuthorityRefused('the subject of a genesis or a change of admins is "admins"')
    if not isinstance(admins, list) or not admins:
        raise AuthorityRefused("admins must be a non-empty list of addresses")
    addresses = [_address(a, "admins") for a in admins]
    if addresses != sorted(set(addresses)):
        raise AuthorityRefused("admins must be sorted and without repeats")
    if isinstance(threshold, bool) or not isinstance(threshold, int) or not 1 <= threshold <= len(addresses):
        raise AuthorityRefused(f"threshold must be a whole number from 1 to {len(addresses)}")
    return frozenset(addresses), threshold


def _ids(entry: Mapping[str, Any], name: str, *, may_be_empty: bool = False) -> set[str]:
    values = entry.get(name)
    if not isinstance(values, list) or (not values and not may_be_empty):
        raise AuthorityRefused(f"{name} must be a {'' if may_be_empty else 'non-empty '}list of ids")
    if not all(isinstance(v, str) and _ID.fullmatch(v) for v in values):
        raise AuthorityRefused(f"{name} must list ids of A-Z, a-z, 0-9, _ and -")
    return set(values)


def _grant_organisation(state: Authority, subject: str, _entry: Mapping[str, Any], dry_run: bool) -> None:
    if not _ID.fullmatch(subject):
        raise AuthorityRefused("an organisation id is 1-64 characters of A-Z, a-z, 0-9, _ and -")
    if not dry_run:
        state.organisations.add(subject)


def _grant_member(state: Authority, subject: str, entry: Mapping[str, Any], dry_run: bool) -> None:
    address = _address(subject, "subject")
    organisation, role, level = entry.get("organisation"), entry.get("role"), entry.get("level")
    if not isinstance(role, str) or role not in MEMBER_ROLES:
        raise AuthorityRefused(f"unknown role {role!r}; members are {', '.join(MEMBER_ROLES)}")
    if level != MEMBER_ROLES[str(role)]:
        raise AuthorityRefused(f"a {role} is at level {MEMBER_ROLES[str(role)]}")
    if organisation is None and level == 1:
        raise AuthorityRefused("a level-1 volunteer belongs to an organisation")
    if organisation is not None and (not isinstance(organisation, str) or organisation not in state.organisations):
        raise AuthorityRefused(f"organisation {organisation!r} is not registered")
    if not dry_run:
        state.members[address] = Member(address, None if organisation is None else str(organisation), str(role))


def _grant_scope(state: Authority, subject: str, entry: Mapping[str, Any], dry_run: bool) -> None:
    address = _address(subject, "subject")
    member = state.members.get(address)
    if member is None or member.role != "constituency_head":
        raise AuthorityRefused(f"{address} is not a constituency head")
    constituencies = _ids(entry, "constituencies")
    if not dry_run:
        state.scopes.setdefault(address, set()).update(constituencies)


def _grant_assignment(state: Authority, subject: str, entry: Mapping[str, Any], dry_run: bool) -> None:
    address = _address(subject, "subject")
    member = state.members.get(address)
    if member is None or member.role != "volunteer":
        raise AuthorityRefused(f"{address} is not a volunteer")
    units = _ids(entry, "units")
    unknown = sorted(u for u in units if state.constituency_of(u) is None)
    if unknown:
        raise AuthorityRefused(f"unknown polling unit {unknown[0]}")
    if not dry_run:
        state.assignments.setdefault(address, set()).update(units)


def _grant_service_key(state: Authority, subject: str, entry: Mapping[str, Any], dry_run: bool) -> None:
    if subject not in SERVICE_PURPOSES:
        raise AuthorityRefused(f"unknown service key {subject!r}; they are {', '.join(SERVICE_PURPOSES)}")
    address = _address(entry.get("address"), "address")
    if not dry_run:
        state.service_keys[subject] = address


def _grant_api_key(state: Authority, subject: str, entry: Mapping[str, Any], dry_run: bool) -> None:
    if not _KEY_HASH.fullmatch(subject):
        raise AuthorityRefused("an API key is named by its SHA-256, 64 lowercase hex digits")
    role = entry.get("role")
    if not isinstance(role, str) or not _ID.fullmatch(role):
        raise AuthorityRefused("an API key's role must be a role name")
    scope = entry.get("scope")
    if scope is not None and (not isinstance(scope, Mapping) or not set(scope) <= set(SCOPE_KINDS)):
        raise AuthorityRefused(f"an API key's scope is null or a map of {', '.join(SCOPE_KINDS)} to lists of ids")
    limits = None if scope is None else tuple(sorted((kind, frozenset(_ids(scope, kind))) for kind in scope))
    if not dry_run:
        state.api_keys[subject] = (role, limits)


def _grant_policy(state: Authority, subject: str, entry: Mapping[str, Any], dry_run: bool) -> None:
    if subject != "open_reporting":
        raise AuthorityRefused(f'unknown policy {subject!r}; the policy is "open_reporting"')
    if not isinstance(entry.get("enabled"), bool):
        raise AuthorityRefused("a policy's enabled is true or false")
    if not dry_run:
        state.open_reporting = bool(entry["enabled"])


def _revoke_policy(state: Authority, subject: str, _entry: Mapping[str, Any], dry_run: bool) -> None:
    _grant_policy(state, subject, {"enabled": False}, dry_run)


def _revoke_whole(table: str, what: str) -> Callable[[Authority, str, Mapping[str, Any], bool], None]:
    """Revoke a grant held whole under ``subject`` in ``table`` (a set or a dict of the state)."""

    def revoke(state: Authority, subject: str, _entry: Mapping[str, Any], dry_run: bool) -> None:
        held: set[str] | dict[str, Any] = getattr(state, table)
        if subject not in held:
            raise AuthorityRefused(f"nothing to revoke: {subject} holds no {what}")
        if dry_run:
            return
        if isinstance(held, set):
            held.discard(subject)
        else:
            del held[subject]

    return revoke


def _revoke_items(table: str, name: str) -> Callable[[Authority, str, Mapping[str, Any], bool], None]:
    def revoke(state: Authority, subject: str, entry: Mapping[str, Any], dry_run: bool) -> None:
        items = _ids(entry, name)
        held = getattr(state, table).get(subject, set())
        missing = sorted(items - held)
        if missing:
            raise AuthorityRefused(f"nothing to revoke: {subject} does not hold {missing[0]}")
        if not dry_run:
            held -= items

    return revoke


_GRANTS = {
    "organisation": _grant_organisation,
    "member": _grant_member,
    "scope": _grant_scope,
    "assignment": _grant_assignment,
    "service_key": _grant_service_key,
    "api_key": _grant_api_key,
    "policy": _grant_policy,
}


def _revoke_member(state: Authority, subject: str, entry: Mapping[str, Any], dry_run: bool) -> None:
    """A member's revocation ends their constituencies and unit assignments with them: a key
    granted again starts with none."""
    _revoke_whole("members", "membership")(state, subject, entry, dry_run)
    if not dry_run:
        state.scopes.pop(subject, None)
        state.assignments.pop(subject, None)


_REVOKES = {
    "organisation": _revoke_whole("organisations", "organisation"),
    "member": _revoke_member,
    "scope": _revoke_items("scopes", "constituencies"),
    "assignment": _revoke_items("assignments", "units"),
    "service_key": _revoke_whole("service_keys", "service key"),
    "api_key": _revoke_whole("api_keys", "API key"),
    "policy": _revoke_policy,
}
