"""The role words are defined once, in ``ledger.people.roles``; the pure core, which may
import nothing of the project, spells the same words in its signed formats. These tests
hold the two spellings equal."""

from __future__ import annotations

from ledger.core.authority import MEMBER_ROLES
from ledger.core.decision import ROLE_ACTIONS
from ledger.people import roles


def test_members_of_the_authority_log_hold_the_roles_and_levels_of_people() -> None:
    assert {role: level for level, role in roles.LEVEL_ROLES.items()} == MEMBER_ROLES


def test_the_roles_that_decide_are_the_deciders_and_the_ledger() -> None:
    assert set(ROLE_ACTIONS) == {*roles.DECIDERS, roles.LEDGER}
