"""Who is calling (``Caller``), and the checks of what a caller may do: a role, a submitter, a relay."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ledger.core.signing import to_checksum_address
from ledger.errors import Forbidden, InvalidSignature
from ledger.people.errors import Unauthenticated
from ledger.people.roles import ANONYMOUS, RELAYING_ROLES, VOLUNTEER

__all__ = ["Caller", "anonymous_caller", "check_relay", "check_submitter", "require_role"]


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


def check_relay(
    caller: Caller, *, volunteer: str, organisation: str | None, level: int, custodial: bool, address: str | None = None
) -> None:
    """Who may have the ledger sign a count with a volunteer's custodial key and submit it.

    Only a coordinator's API key whose scope lists the volunteer's organisation, and only for
    a custodial level-1 volunteer of it: the organisation recruited the volunteer and holds
    their trust, and takes the count by phone. Nobody else: the war room, heads and the
    admin judge the reports, so a report they entered in a volunteer's name would be their
    own number posing as an independent organisation's; a head enters corrections signed
    with their own key. ``volunteer`` is the public id, for the messages.

    Given the volunteer's ``address``, the custodial volunteer themselves may have the
    ledger sign their own count: signed in with an invitation, they hold no key to sign it.
    """
    if address is not None and caller.role == VOLUNTEER and caller.address == address:
        if not custodial or level != 1:
            raise Forbidden(f"{volunteer} holds their own key; sign your tally and POST it to /v1/tallies")
        return
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
