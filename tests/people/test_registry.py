"""The one people registry: a member is a volunteer with an organisation and a level."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from ledger.errors import AlreadyExists, NotFound
from ledger.people.registry import Membership, PeopleRegistry
from ledger.store import Database, Member, Volunteer

ADDRESS = "0x" + "b1" * 20


@pytest.fixture
def registry(database: Database) -> PeopleRegistry:
    people = PeopleRegistry(database=database, clock=lambda: datetime(2026, 3, 22, 12, tzinfo=UTC))
    people.create_organisation(organisation_id="civic-watch", name="Civic Watch", kind="civil_society")
    return people


def _rows(database: Database, address: str) -> tuple[Volunteer | None, Member | None]:
    with database.session() as session:
        return session.get(Volunteer, address), session.get(Member, address)


def test_a_member_is_a_volunteer_written_by_the_same_path(registry: PeopleRegistry, database: Database) -> None:
    member = registry.register_member(address=ADDRESS, level=1, name="Somchai", organisation_id="civic-watch")
    volunteer, stored = _rows(database, member.address)
    assert volunteer is not None and volunteer.revoked_at is None and volunteer.name is None
    assert stored is not None and stored.level == 1 and stored.organisation_id == "civic-watch"
    assert registry.role_of(ADDRESS) == "volunteer"


def test_a_plain_volunteer_has_no_level(registry: PeopleRegistry, database: Database) -> None:
    row, changed = registry.register_volunteer(address=ADDRESS, name="walk-in")
    assert changed and row.name == "walk-in"
    assert _rows(database, row.address)[1] is None
    assert registry.role_of(ADDRESS) is None
    assert registry.register_volunteer(address=ADDRESS)[1] is False


def test_registering_a_member_again_or_in_an_unknown_organisation_is_refused(registry: PeopleRegistry) -> None:
    registry.register_member(address=ADDRESS, level=2, name="head", organisation_id=None)
    with pytest.raises(AlreadyExists, match="registered already"):
        registry.register_member(address=ADDRESS, level=2, name="head", organisation_id=None)
    with pytest.raises(NotFound, match="no organisation 'nobody'"):
        registry.register_member(address="0x" + "b2" * 20, level=1, name="x", organisation_id="nobody")


def test_registering_a_member_does_not_readmit_a_revoked_address(registry: PeopleRegistry, database: Database) -> None:
    row, _ = registry.register_volunteer(address=ADDRESS)
    with database.session() as session:
        stored = session.get(Volunteer, row.address)
        assert stored is not None
        stored.revoked_at = datetime(2026, 3, 22, 13, tzinfo=UTC)
    registered = registry.register(address=ADDRESS, membership=Membership(level=1, name="again", organisation_id="civic-watch"))
    assert registered.member is not None and registered.volunteer.revoked_at is not None
    readmitted, changed = registry.register_volunteer(address=ADDRESS)
    assert changed and readmitted.revoked_at is None
