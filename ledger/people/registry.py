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
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ledger.core.signing import to_checksum_address
from ledger.errors import Forbidden, NotFound
from ledger.people.roles import ADMIN, LEVEL_ROLES
from ledger.plaintext import check_plain_text
from ledger.store import Database, Entry, Member, Organisation, Volunteer

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

    volunteer: Volunteer
    member: Member | None
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
    """Organisations, volunteers and members, over the database. Stateless and thread-safe:
    the services that cache what it answers (``AccessService``) drop their entries after
    they change it."""

    def __init__(self, *, database: Database, clock: Callable[[], datetime]):
        self.database = database
        self.clock = clock

    # -- organisations ---------------------------------------------------------------

    def create_organisation(self, *, organisation_id: str, name: str, kind: str) -> Organisation:
        if not ORGANISATION_ID_PATTERN.match(organisation_id or ""):
            raise Forbidden("an organisation id is 2-40 characters of lowercase letters, digits and '-', like 'civic-watch'")
        if kind not in ORGANISATION_KINDS:
            raise Forbidden(f"organisation kind must be one of {', '.join(ORGANISATION_KINDS)}")
        check_plain_text(name, field="name")
        with self.database.session() as session:
            if session.get(Organisation, organisation_id) is not None:
                raise Forbidden(f"organisation {organisation_id!r} exists already")
            row = Organisation(id=organisation_id, name=name, kind=kind, created_at=self.clock())
            session.add(row)
        return row

    def organisations(self) -> list[Organisation]:
        with self.database.session() as session:
            return list(session.scalars(select(Organisation).order_by(Organisation.id)))

    def organisation_ids(self) -> set[str]:
        with self.database.session() as session:
            return set(session.scalars(select(Organisation.id)))

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
        try:
            with self.database.session() as session:
                member = None
                if membership is not None:
                    member = self._add_member(session, address, membership)
                volunteer = session.get(Volunteer, address)
                changed = member is not None
                if volunteer is None:
                    volunteer = Volunteer(address=address, name=name, registered_at=self.clock(), registered_by=registered_by)
                    session.add(volunteer)
                    changed = True
                elif volunteer.revoked_at is not None and membership is None:
                    volunteer.revoked_at = None
                    volunteer.name = name or volunteer.name
                    changed = True
        except IntegrityError:  # registered concurrently by another request
            if membership is not None:
                raise
            with self.database.session() as session:
                existing = session.get(Volunteer, address)
            assert existing is not None
            return Registered(existing, None, False)
        return Registered(volunteer, member, changed)

    def _add_member(self, session: Session, address: str, membership: Membership) -> Member:
        organisation_id = membership.organisation_id
        if organisation_id is not None and session.get(Organisation, organisation_id) is None:
            raise NotFound(f"no organisation {organisation_id!r}")
        if session.get(Member, address) is not None:
            raise Forbidden(f"{address} is registered already")
        row = Member(
            address=address,
            public_id="v-" + secrets.token_hex(6),
            organisation_id=organisation_id,
            level=membership.level,
            name=membership.name,
            contact=membership.contact,
            custodial=membership.custodial,
            registered_at=self.clock(),
            registered_by=membership.registered_by,
            refused_attempts=0,
            rejected_reports=0,
        )
        session.add(row)
        return row

    def register_volunteer(
        self, *, address: str, name: str | None = None, registered_by: int | None = None
    ) -> tuple[Volunteer, bool]:
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
    ) -> Member:
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

    def member(self, address: str) -> Member:
        with self.database.session() as session:
            row = session.get(Member, to_checksum_address(address))
        if row is None:
            raise NotFound(f"{address} is not a registered member of the coalition")
        return row

    def role_of(self, address: str) -> str | None:
        """The role of a member's level; ``None`` for a plain volunteer (or nobody)."""
        with self.database.session() as session:
            row = session.get(Member, to_checksum_address(address))
        return LEVEL_ROLES[row.level] if row is not None else None

    def count_rejection(self, record_cid: str) -> None:
        """Count a rejected report on the member who signed it, and flag a member whose
        reports keep being rejected (their pending reports are then held)."""
        with self.database.session() as session:
            signer = session.scalar(select(Entry.signer).where(Entry.cid == record_cid))
            if signer is None:
                return
            member = session.get(Member, signer)
            if member is None:
                return
            member.rejected_reports += 1
            total = session.scalar(select(func.count()).select_from(Entry).where(Entry.signer == signer, Entry.kind == "tally"))
            if (
                member.rejected_reports >= FLAG_AFTER_REJECTIONS
                and member.rejected_reports * 2 >= (total or 0)
                and member.flagged_at is None
            ):
                member.flagged_at = self.clock()
