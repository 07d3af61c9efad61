"""The one registry of people: organisations, volunteers, and the members of the hierarchy.

Every person the ledger knows is a volunteer: an Ethereum address that may sign in
(``volunteers``). A member of the hierarchy is a volunteer with a level (1 unit volunteer,
2 constituency head, 3 war room), and at level 1 an organisation (``members``, keyed by the
same address). The admin may also register a plain volunteer, with no level: they sign in
as ``volunteer`` and report only under open reporting. Both kinds are written by one path,
``PeopleRegistry.register``, in one transaction.

Who may register whom: the admin appoints levels 2 and 3; an organisation's coordinator
registers level-1 volunteers of their own organisation.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ledger.core.signing import to_checksum_address
from ledger.errors import AlreadyExists, Forbidden, NotFound
from ledger.people.authority import AuthorityLog
from ledger.people.roles import ADMIN, LEVEL_ROLES
from ledger.plaintext import check_plain_text
from ledger.store import Database
from ledger.store import people as store
from ledger.store.people import MemberRow, OrganisationRow, VolunteerRow

__all__ = ["FLAG_AFTER_REJECTIONS", "ORGANISATION_ID_PATTERN", "ORGANISATION_KINDS", "Membership", "PeopleRegistry", "Registered"]

ORGANISATION_ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]{1,39}$")
ORGANISATION_KINDS = ("civil_society", "party", "university", "local_government", "media", "other")
FLAG_AFTER_REJECTIONS = 3
"""A member is flagged after this many rejected reports, if they are half of their reports or more."""


@dataclass(frozen=True)
class Membership:
    """What makes a volunteer a member of the hierarchy (checked by ``check_membership``)."""

    level: int
    name: str
    organisation_id: str | None
    contact: str | None = None
    custodial: bool = False
    registered_by: str | None = None
    """The name of who registered the member (a principal's name)."""


@dataclass(frozen=True)
class Registered:
    """What ``PeopleRegistry.register`` wrote: the volunteer, the member (with a membership),
    and whether anything changed."""

    volunteer: VolunteerRow
    member: MemberRow | None
    changed: bool


def check_membership(membership: Membership, *, acting_role: str) -> None:
    """Refuse (``Forbidden``) a membership that ``acting_role`` may not register."""
    level = membership.level
    if level not in LEVEL_ROLES:
        raise Forbidden("level must be 1 (unit volunteer), 2 (constituency head) or 3 (war room)")
    if acting_role != ADMIN and level != 1:
        raise Forbidden(
            f"only the admin appoints level-{level} members; a {acting_role} registers level-1 volunteers of their organisation"
        )
    if level == 1 and not membership.organisation_id:
        raise Forbidden("a level-1 volunteer belongs to an organisation")
    check_plain_text(membership.name, field="name")
    check_plain_text(membership.contact, field="contact", what="contacts")


class PeopleRegistry:
    """Organisations, volunteers and members, over the database (``ledger.store.people``).
    Stateless and thread-safe: the services that cache what it answers (``AccessService``)
    drop their entries after they change it."""

    def __init__(self, *, database: Database, clock: Callable[[], datetime], authority: AuthorityLog | None = None):
        """``authority``: the authority log that each registration is also stated in (the
        registry of a serving ledger has one; a registry that only reads needs none)."""
        self.database = database
        self.clock = clock
        self.authority = authority

    # -- organisations ---------------------------------------------------------------

    def create_organisation(self, *, organisation_id: str, name: str, kind: str) -> OrganisationRow:
        if not ORGANISATION_ID_PATTERN.match(organisation_id or ""):
            raise Forbidden("an organisation id is 2-40 characters of lowercase letters, digits and '-', like 'civic-watch'")
        if kind not in ORGANISATION_KINDS:
            raise Forbidden(f"organisation kind must be one of {', '.join(ORGANISATION_KINDS)}")
        check_plain_text(name, field="name")
        row = OrganisationRow(id=organisation_id, name=name, kind=kind, created_at=self.clock())
        with self._stated(lambda log: log.grant_organisation(organisation_id)):
            if not store.add_organisation(self.database, row):
                raise AlreadyExists(f"organisation {organisation_id!r} exists already")
        return row

    def _stated(self, change: Callable[[AuthorityLog], AbstractContextManager[Any]]) -> AbstractContextManager[Any]:
        """The authority log's change around a write of the database, if there is a log."""
        return nullcontext() if self.authority is None else change(self.authority)

    def organisations(self) -> list[OrganisationRow]:
        return store.organisations(self.database)

    def organisation_ids(self) -> set[str]:
        return store.organisation_ids(self.database)

    # -- registering -----------------------------------------------------------------

    def register(
        self,
        *,
        address: str,
        name: str | None = None,
        registered_by: int | None = None,
        membership: Membership | None = None,
    ) -> Registered:
        """Register a person: the volunteer row, and with ``membership`` the member row too.

        A plain volunteer (no membership) registered again is left as it is (``changed``
        False), or re-admitted when it was revoked. A member is registered once: its
        address registered as a member already is ``Forbidden``, and an unknown
        organisation ``NotFound``; its volunteer row is added when there is none (name
        and ``registered_by`` stay on the member), and a revoked one stays revoked, since
        only the admin re-admits an address. ``registered_by`` is the principal id of who
        registered a plain volunteer."""
        address = to_checksum_address(address)
        check_plain_text(name, field="name")
        member = None if membership is None else self._new_member(address, membership)
        stated: AbstractContextManager[Any] = nullcontext()
        if member is not None and self.authority is not None and not store.get_member(self.database, address):
            stated = self.authority.grant_member(address, level=member.level, organisation_id=member.organisation_id)
        with stated:
            added = store.add_person(
                self.database,
                address=address,
                name=name,
                registered_at=self.clock(),
                registered_by=registered_by,
                member=member,
                readmit=membership is None,
            )
            if added.refusal == "no_organisation":
                raise NotFound(f"no organisation {member.organisation_id if member else None!r}")
            if added.refusal == "member_exists":
                raise AlreadyExists(f"{address} is registered already")
        assert added.volunteer is not None
        return Registered(added.volunteer, member, added.changed)

    def _new_member(self, address: str, membership: Membership) -> MemberRow:
        return MemberRow(
            address=address,
            public_id="v-" + secrets.token_hex(6),
            organisation_id=membership.organisation_id,
            level=membership.level,
            name=membership.name,
            contact=membership.contact,
            custodial=membership.custodial,
            registered_at=self.clock(),
            registered_by=membership.registered_by,
            refused_attempts=0,
            rejected_reports=0,
            flagged_at=None,
        )

    def register_volunteer(
        self, *, address: str, name: str | None = None, registered_by: int | None = None
    ) -> tuple[VolunteerRow, bool]:
        """Register (or re-admit a revoked) plain volunteer; the row and whether it changed."""
        registered = self.register(address=address, name=name, registered_by=registered_by)
        return registered.volunteer, registered.changed

    def register_member(
        self,
        *,
        address: str,
        level: int,
        name: str,
        organisation_id: str | None,
        contact: str | None = None,
        custodial: bool = False,
        registered_by: str | None = None,
        acting_role: str = ADMIN,
    ) -> MemberRow:
        """Register a person at ``level``. Level 1 needs an organisation. The admin
        appoints levels 2 and 3; a coordinator (``acting_role``) registers level 1 only."""
        address = to_checksum_address(address)
        membership = Membership(
            level=level,
            name=name,
            organisation_id=organisation_id,
            contact=contact,
            custodial=custodial,
            registered_by=registered_by,
        )
        check_membership(membership, acting_role=acting_role)
        member = self.register(address=address, membership=membership).member
        assert member is not None
        return member

    # -- looking up ------------------------------------------------------------------

    def member(self, address: str) -> MemberRow:
        row = store.get_member(self.database, to_checksum_address(address))
        if row is None:
            raise NotFound(f"{address} is not a registered member of the coalition")
        return row

    def role_of(self, address: str) -> str | None:
        """The role of a member's level; ``None`` for a plain volunteer (or nobody)."""
        level = store.member_level(self.database, to_checksum_address(address))
        return LEVEL_ROLES[level] if level is not None else None

    def count_rejection(self, record_cid: str) -> None:
        """Count a rejected report on the member who signed it, and flag a member whose
        reports keep being rejected (their pending reports are then held)."""
        counted = store.add_rejection(self.database, record_cid)
        if counted is None:
            return
        member, total = counted
        if (
            member.rejected_reports >= FLAG_AFTER_REJECTIONS
            and member.rejected_reports * 2 >= total
            and member.flagged_at is None
        ):
            store.flag_member(self.database, member.address, flagged_at=self.clock())
