"""Where the polling units are: the checked unit list (``ledger.election.unit_list``) stored
for screening, which measures each report's photos against its unit's place."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select

from ledger.election import Election
from ledger.election.unit_list import UnitListRow
from ledger.review.screener import Screener
from ledger.store import Database, UnitLocation, UnitReview

__all__ = ["UnitLocations"]


class UnitLocations:
    """The units' coordinates and names, over the database."""

    def __init__(self, *, database: Database, election: Election, screener: Screener):
        self.database = database
        self.election = election
        self.screener = screener

    def import_unit_locations(self, rows: Sequence[UnitListRow], *, rescreen: bool = True) -> dict[str, int]:
        """Store a checked unit list (``ledger.election.unit_list``): each unit's coordinates
        and name, replacing what was known; importing the same list again changes nothing.
        Units whose location changed and that have reports are screened again, so that their
        photos are measured against the real place. Counts: added, changed, unchanged, rescreened."""
        counts = {"added": 0, "changed": 0, "unchanged": 0, "rescreened": 0}
        moved: list[str] = []
        with self.database.session() as session:
            for start in range(0, len(rows), 500):
                chunk = rows[start : start + 500]
                known = {
                    row.unit: row
                    for row in session.scalars(select(UnitLocation).where(UnitLocation.unit.in_([r.unit for r in chunk])))
                }
                for row in chunk:
                    existing = known.get(row.unit)
                    if existing is None:
                        session.add(UnitLocation(unit=row.unit, latitude=row.latitude, longitude=row.longitude, name=row.name))
                        counts["added"] += 1
                        moved.append(row.unit)
                    elif (existing.latitude, existing.longitude, existing.name) != (row.latitude, row.longitude, row.name):
                        if (existing.latitude, existing.longitude) != (row.latitude, row.longitude):
                            moved.append(row.unit)
                        existing.latitude, existing.longitude, existing.name = row.latitude, row.longitude, row.name
                        counts["changed"] += 1
                    else:
                        counts["unchanged"] += 1
        if rescreen and moved:
            reported: list[str] = []
            with self.database.session() as session:
                for start in range(0, len(moved), 500):
                    reported += session.scalars(select(UnitReview.unit).where(UnitReview.unit.in_(moved[start : start + 500])))
            self.screener.screen_units(reported)
            counts["rescreened"] = len(reported)
        return counts

    def set_unit_location(self, unit_id: str, latitude: float, longitude: float) -> None:
        self.election.polling_unit(unit_id)
        with self.database.session() as session:
            row = session.get(UnitLocation, unit_id)
            if row is None:
                session.add(UnitLocation(unit=unit_id, latitude=latitude, longitude=longitude))
            else:
                row.latitude, row.longitude = latitude, longitude
