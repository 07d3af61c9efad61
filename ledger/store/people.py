"""The queries of the people registry and of members' areas, answering with frozen rows.

``ledger.people.registry`` and ``ledger.people.assignments`` keep the rules (who may
register or assign whom, when a member is flagged); the SQL is here. A row outlives its
session, so nothing above the store holds a database object.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, select, update
from sqlalchemy.exc import IntegrityError

from ledger.store.access_models import Volunteer
from ledger.store.models import Entry
from ledger.store.review_models import Assignment, Member, Organisation
from ledger.store.session import Database

__all__ = [
    "AddedPerson",
    "active_members",
    "MemberRow",
    "OrganisationRow",
    "VolunteerRow",
    "add_assignments",
    "add_organisation",
    "add_person",
    "add_rejection",
    "assigned_areas",
    "count_refusals",
    "covered_units",
    "flag_member",
    "get_member",
    "level_one_assignments",
    "member_level",
    "member_row",
    "organisation_ids",
    "organisations",
    "reporting_rights",
    "volunteer_row",
]


@dataclass(frozen=True, slots=True)
class OrganisationRow:
    id: str
    name: str
    kind: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class VolunteerRow:
    """An address that may sign in (every person the ledger knows)."""

    address: str
    name: str | None
    registered_at: datetime
    registered_by: int | None
    revoked_at: datetime | None
    session_generation: int
    sessions_ended_at: datetime | None


@dataclass(frozen=True, slots=True)
class MemberRow:
    """A volunteer's place in the hierarchy: level, organisation, and their record."""

    address: str
    public_id: str
    organisation_id: str | None
    level: int
    name: str
    contact: str | None
    custodial: bool
    registered_at: datetime
    registered_by: str | None
    refused_attempts: int
    rejected_reports: int
    flagged_at: datetime | None


def _frozen(kind: Any, row: Any) -> Any:
    return kind(**{field.name: getattr(row, field.name) for field in fields(kind)})


def member_row(row: Member) -> MemberRow:
    return _frozen(MemberRow, row)  # type: ignore[no-any-return]


def volunteer_row(row: Volunteer) -> VolunteerRow:
    return VolunteerRow(
        address=row.address,
        name=row.name,
        registered_at=row.registered_at,
        registered_by=row.registered_by,
        revoked_at=row.revoked_at,
        session_generation=row.session_generation or 0,
        sessions_ended_at=row.sessions_ended_at,
    )


# -- organisations -------------------------------------------------------------------


def add_organisation(database: Database, organisation: OrganisationRow) -> bool:
    """Store a new organisation; ``False`` (and nothing stored) when its id is taken."""
    with database.session() as session:
        if session.get(Organisation, organisation.id) is not None:
            return False
        session.add(Organisation(**{field.name: getattr(organisation, field.name) for field in fields(OrganisationRow)}))
    return True


def organisations(database: Database) -> list[OrganisationRow]:
    with database.session() as session:
        return [_frozen(OrganisationRow, row) for row in session.scalars(select(Organisation).order_by(Organisation.id))]


def organisation_ids(database: Database) -> set[str]:
    with database.session() as session:
        return set(session.scalars(select(Organisation.id)))


# -- people --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AddedPerson:
    """What ``add_person`` did: the volunteer row as it now is, whether anything changed,
    and, when the member was not added, why (``"no_organisation"``, ``"member_exists"``)."""

    volunteer: VolunteerRow | None
    changed: bool
    refusal: str | None = None


def add_person(
    database: Database,
    *,
    address: str,
    name: str | None,
    registered_at: datetime,
    registered_by: int | None,
    member: MemberRow | None,
    readmit: bool,
) -> AddedPerson:
    """In one transaction: the member row (when given; refused if its organisation is unknown
    or the address is a member already), and the volunteer row, added when there is none,
    or re-admitted when it was revoked and ``readmit``. A plain volunteer registered
    concurrently by another request is answered as already registered."""
    try:
        with database.session() as session:
            if member is not None:
                if member.organisation_id is not None and session.get(Organisation, member.organisation_id) is None:
                    return AddedPerson(None, False, "no_organisation")
                if session.get(Member, address) is not None:
                    return AddedPerson(None, False, "member_exists")
                session.add(Member(**{field.name: getattr(member, field.name) for field in fields(MemberRow)}))
            volunteer = session.get(Volunteer, address)
            changed = member is not None
            if volunteer is None:
                volunteer = Volunteer(address=address, name=name, registered_at=registered_at, registered_by=registered_by)
                session.add(volunteer)
                session.flush()
                changed = True
            elif volunteer.revoked_at is not None and readmit:
                volunteer.revoked_at = None
                volunteer.name = name or volunteer.name
                changed = True
            answer = AddedPerson(volunteer_row(volunteer), changed)
    except IntegrityError:
        if member is not None:
            raise
        with database.session() as session:
            existing = session.get(Volunteer, address)
            assert existing is not None
            return AddedPerson(volunteer_row(existing), False)
    return answer


def get_member(database: Database, address: str) -> MemberRow | None:
    with database.session() as session:
        row = session.get(Member, address)
        return None if row is None else _frozen(MemberRow, row)


def active_members(database: Database) -> list[tuple[MemberRow, list[str]]]:
    """Every member whose volunteer is not revoked, with their areas, in registration order."""
    with database.session() as session:
        members = session.scalars(
            select(Member).join(Volunteer, Volunteer.address == Member.address).where(Volunteer.revoked_at.is_(None))
        ).all()
        areas: dict[str, list[str]] = {}
        for address, area in session.execute(select(Assignment.address, Assignment.area).order_by(Assignment.area)):
            areas.setdefault(address, []).append(area)
        rows = [(_frozen(MemberRow, row), areas.get(row.address, [])) for row in members]
    return sorted(rows, key=lambda pair: (pair[0].registered_at, pair[0].address))


def member_level(database: Database, address: str) -> int | None:
    with database.session() as session:
        return session.scalar(select(Member.level).where(Member.address == address))


def add_rejection(database: Database, record_cid: str) -> tuple[MemberRow, int] | None:
    """Count a rejected report on the member who signed it: the member as it now is and
    how many tallies they signed; ``None`` when no member signed the record."""
    with database.session() as session:
        signer = session.scalar(select(Entry.signer).where(Entry.cid == record_cid))
        if signer is None:
            return None
        member = session.get(Member, signer)
        if member is None:
            return None
        member.rejected_reports += 1
        total = session.scalar(select(func.count()).select_from(Entry).where(Entry.signer == signer, Entry.kind == "tally"))
        return _frozen(MemberRow, member), int(total or 0)


def flag_member(database: Database, address: str, *, flagged_at: datetime) -> None:
    """Flag a member (once: a flagged member keeps the time they were first flagged)."""
    with database.session() as session:
        session.execute(
            update(Member).where(Member.address == address, Member.flagged_at.is_(None)).values(flagged_at=flagged_at)
        )


# -- areas ---------------------------------------------------------------------------


def assigned_areas(database: Database, address: str) -> set[str]:
    with database.session() as session:
        return set(session.scalars(select(Assignment.area).where(Assignment.address == address)))


def add_assignments(
    database: Database, address: str, areas: Sequence[tuple[str, str]], *, assigned_at: datetime, assigned_by: str | None
) -> list[str]:
    """Assign ``(area, constituency)`` pairs the address does not hold yet; the areas added."""
    added = []
    with database.session() as session:
        existing = set(session.scalars(select(Assignment.area).where(Assignment.address == address)))
        for area, constituency_id in areas:
            if area not in existing:
                session.add(
                    Assignment(
                        address=address,
                        area=area,
                        constituency_id=constituency_id,
                        assigned_at=assigned_at,
                        assigned_by=assigned_by,
                    )
                )
                existing.add(area)
                added.append(area)
    return added


def reporting_rights(
    database: Database, addresses: Sequence[str], areas: Sequence[str]
) -> tuple[dict[str, tuple[int, str]], set[tuple[str, str]]]:
    """For these addresses, in one query: each member's ``(level, public id)``, and which of
    ``areas`` each is assigned (``(address, area)`` pairs)."""
    levels: dict[str, tuple[int, str]] = {}
    assigned: set[tuple[str, str]] = set()
    with database.session() as session:
        rows = session.execute(
            select(Member.address, Member.level, Member.public_id, Assignment.area)
            .outerjoin(Assignment, and_(Assignment.address == Member.address, Assignment.area.in_(areas)))
            .where(Member.address.in_(addresses))
        )
        for row in rows:
            levels[row.address] = (row.level, row.public_id)
            if row.area is not None:
                assigned.add((row.address, row.area))
    return levels, assigned


def count_refusals(database: Database, addresses: Iterable[str]) -> None:
    """Count one refused report on each of ``addresses`` (once per appearance)."""
    with database.session() as session:
        for address in addresses:
            session.execute(update(Member).where(Member.address == address).values(refused_attempts=Member.refused_attempts + 1))


def level_one_assignments(database: Database, constituency_id: str | None = None) -> list[tuple[str, str, str | None]]:
    """``(constituency, polling unit, organisation)`` of every level-1 volunteer's units
    (in one constituency, when given)."""
    with database.session() as session:
        query = (
            select(Assignment.constituency_id, Assignment.area, Member.organisation_id)
            .join(Member, Member.address == Assignment.address)
            .where(Member.level == 1)
        )
        if constituency_id:
            query = query.where(Assignment.constituency_id == constituency_id)
        return [(row.constituency_id, row.area, row.organisation_id) for row in session.execute(query)]


def covered_units(database: Database, constituency_id: str) -> set[str]:
    """The polling units of a constituency that some level-1 volunteer covers."""
    with database.session() as session:
        return set(
            session.scalars(
                select(Assignment.area)
                .join(Member, Member.address == Assignment.address)
                .where(Member.level == 1, Assignment.constituency_id == constituency_id)
            )
        )
