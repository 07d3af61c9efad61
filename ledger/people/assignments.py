"""Who covers which areas: polling units assigned to level-1 volunteers, constituencies to
level-2 heads (``assignments``), and what that lets each member report.

Who may assign: the admin and the war room assign anyone's areas; a coordinator assigns
only polling units, only to level-1 volunteers of their own organisation.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import nullcontext
from datetime import datetime
from typing import Any

from ledger.core.signing import to_checksum_address
from ledger.election import Election
from ledger.errors import Forbidden, NotFound
from ledger.people.registry import PeopleRegistry
from ledger.people.roles import ADMIN, ASSIGNING_ROLES, COORDINATOR, LEVEL_ROLES
from ledger.store import Database
from ledger.store import people as store

__all__ = ["Assignments"]


class Assignments:
    """The areas of members, over the database (``ledger.store.people``). Stateless and thread-safe."""

    def __init__(self, *, database: Database, election: Election, people: PeopleRegistry, clock: Callable[[], datetime]):
        self.database = database
        self.election = election
        self.people = people
        self.clock = clock

    def assign(
        self,
        *,
        address: str,
        areas: list[str],
        assigned_by: str | None = None,
        organisation_id: str | None = None,
        acting_role: str | None = None,
    ) -> list[str]:
        """Assign units (level 1) or constituencies (level 2); returns the areas added.

        Who may (``acting_role``; without it, ``coordinator`` when ``organisation_id`` is
        given, else ``admin``): the admin and the war room assign anyone's areas; a
        coordinator assigns only polling units, only to level-1 volunteers of their
        organisation (``organisation_id``). A head's constituencies decide whose decisions
        the ledger accepts, so no coordinator may change them."""
        role = acting_role or (COORDINATOR if organisation_id is not None else ADMIN)
        member = self.people.member(address)
        if role not in ASSIGNING_ROLES:
            raise Forbidden(f"assignments are made by the admin, the war room or a coordinator, not by {role}")
        if role == COORDINATOR:
            if member.level != 1:
                raise Forbidden(
                    f"{member.public_id} is a level-{member.level} {LEVEL_ROLES[member.level]}: only the admin or the war room "
                    "may change the areas of level-2 heads and level-3 members; a coordinator assigns polling units "
                    "to level-1 volunteers of their organisation"
                )
            if organisation_id is None or member.organisation_id != organisation_id:
                raise Forbidden(f"{member.public_id} belongs to {member.organisation_id}, not to {organisation_id}")
            not_units = [area for area in areas if not _is_unit_id(area)]
            if not_units:
                raise Forbidden(
                    f"{not_units[0]} is not a polling unit: a coordinator assigns polling units (like "
                    "BKK_1-0001) to level-1 volunteers; constituencies are for heads, appointed by the admin"
                )
        if member.level == 3:
            raise Forbidden("the war room covers the whole country; it has no assignments")
        rows = []
        for area in areas:
            if member.level == 1:
                constituency_id = self.election.polling_unit(area).constituency_id
            else:
                constituency_id = self.election.constituency(area).id
            rows.append((area, constituency_id))
        authority = self.people.authority
        stated = nullcontext() if authority is None else authority.grant_areas(member.address, areas, level=member.level)
        with stated as change:
            added = store.add_assignments(self.database, member.address, rows, assigned_at=self.clock(), assigned_by=assigned_by)
            if change is not None:
                change.skip = not added
                change.node["units" if member.level == 1 else "constituencies"] = sorted(set(added))
        return added

    def assigned_areas(self, address: str) -> set[str]:
        return store.assigned_areas(self.database, to_checksum_address(address))

    def may_report(self, requests: list[tuple[str, str]]) -> list[bool | Forbidden]:
        """Whether each (checksummed address, unit) may be reported, in one query (it runs
        on every submission): a volunteer only their units, a head their constituencies'
        units (corrected tallies), the war room any. Per pair: True if allowed, a
        ``Forbidden`` (counted on the member) if refused, False when the address is not a
        member at all. A member and a unit that does not exist is True: validation reports
        the unit with its path."""
        units: dict[str, Any] = {}
        for _, unit_id in requests:
            try:
                units[unit_id] = self.election.polling_unit(unit_id)
            except NotFound:
                units[unit_id] = None
        areas = sorted({area for unit in units.values() if unit is not None for area in (unit.id, unit.constituency_id)})
        addresses = sorted({address for address, _ in requests})
        levels, assigned = store.reporting_rights(self.database, addresses, areas)
        answers: list[bool | Forbidden] = []
        refused: list[str] = []
        for address, unit_id in requests:
            unit = units[unit_id]
            if address not in levels or unit is None:
                answers.append(address in levels)
                continue
            level, public_id = levels[address]
            if (
                (level == 1 and (address, unit.id) in assigned)
                or (level == 2 and (address, unit.constituency_id) in assigned)
                or level == 3
            ):
                answers.append(True)
                continue
            refused.append(address)
            answers.append(
                Forbidden(f"volunteer {public_id} is not assigned to polling unit {unit.id}; ask your coordinator to assign it")
            )
        if refused:
            store.count_refusals(self.database, refused)
        return answers

    def coverage(self, constituency_id: str | None = None) -> list[dict[str, Any]]:
        """Per constituency: units with at least one volunteer, and from how many organisations."""
        per_unit: dict[str, set[str]] = {}
        for _, area, organisation_id in store.level_one_assignments(self.database, constituency_id):
            per_unit.setdefault(area, set()).add(organisation_id or "")
        result = []
        ids = [constituency_id] if constituency_id else list(self.election.constituencies)
        for cid in ids:
            constituency = self.election.constituency(cid)
            units = [u.id for u in self.election.polling_units(cid)]
            covered = [u for u in units if u in per_unit]
            result.append(
                {
                    "constituency_id": cid,
                    "province_id": constituency.province_id,
                    "units_total": len(units),
                    "units_covered": len(covered),
                    "units_by_organisations": {
                        str(n): sum(1 for u in covered if len(per_unit[u]) == n)
                        for n in sorted({len(per_unit[u]) for u in covered})
                    },
                }
            )
        return result

    def uncovered_units(self, constituency_id: str, *, limit: int = 1000) -> list[str]:
        covered = store.covered_units(self.database, constituency_id)
        return [u.id for u in self.election.polling_units(constituency_id) if u.id not in covered][:limit]


def _is_unit_id(area: str) -> bool:
    """A polling unit id has the form ``<constituency>-<4 digits>``; a constituency id has no dash."""
    constituency, dash, number = area.rpartition("-")
    return bool(dash and constituency) and len(number) == 4 and number.isascii() and number.isdigit()
