"""Where the polling units are: the checked unit list (``ledger.election.unit_list``) stored
for screening, which measures each report's photos against its unit's place."""

from __future__ import annotations

from collections.abc import Sequence

from ledger.election import Election
from ledger.election.unit_list import UnitListRow
from ledger.review.screener import Screener
from ledger.store import Database
from ledger.store import reviews as store

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
        stored, moved = store.store_unit_locations(
            self.database, [(row.unit, row.latitude, row.longitude, row.name) for row in rows]
        )
        counts = {**stored, "rescreened": 0}
        if rescreen and moved:
            reported = store.reviewed_units(self.database, moved)
            self.screener.screen_units(reported)
            counts["rescreened"] = len(reported)
        return counts

    def set_unit_location(self, unit_id: str, latitude: float, longitude: float) -> None:
        self.election.polling_unit(unit_id)
        store.set_unit_location(self.database, unit_id, latitude, longitude)
