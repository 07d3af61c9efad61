"""What screening needs to know beyond a unit's reports: where and when their photos were
taken, which other units used the same photo or one that looks like it, where the unit is,
and how its constituency voted elsewhere. Read from the photo index in a few queries per
chunk of units."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from ledger.election import Election
from ledger.intake.photos import hamming_distance, hash_bands, taken_at_of
from ledger.results.aggregates import Aggregates
from ledger.review.screening import Lookalike, PhotoEvidence, Report
from ledger.store import Database
from ledger.store import screening as store

__all__ = ["LOOKALIKE_CANDIDATES", "Evidence", "informative_band"]

LOOKALIKE_CANDIDATES = 64
"""Candidates read per band value looked up (the query's limit is this times the values)."""


def informative_band(part: int) -> bool:
    """A 16-bit band of a perceptual hash worth looking up: not (nearly) all one way, as the
    bands of flat regions (sky, a blank wall, the margin of a form) are."""
    return 3 <= part.bit_count() <= 13


class Evidence:
    """The screening context of units, over the database and the unofficial aggregates."""

    def __init__(
        self,
        *,
        database: Database,
        election: Election,
        aggregates: Aggregates,
        count_window: tuple[datetime, datetime],
        photo_similarity_max_bits: int,
    ):
        self.database = database
        self.election = election
        self.aggregates = aggregates
        self.count_window = count_window
        self.photo_similarity_max_bits = photo_similarity_max_bits

    def contexts(self, unit_ids: list[str], reports: dict[str, list[Report]]) -> dict[str, dict[str, Any]]:
        photos = sorted(
            {
                (link["/"] if isinstance(link, Mapping) else str(link))
                for unit_reports in reports.values()
                for r in unit_reports
                for link in r.document.get("photos", {}).values()
            }
        )
        photo_units: dict[str, set[str]] = {}
        photo_locations = {}
        photo_evidence: dict[str, PhotoEvidence] = {}
        hashes: dict[str, str] = {}
        local_zone = self.count_window[0].tzinfo or UTC
        photo_units.update(store.units_of_photos(self.database, photos))
        for row in store.photo_facts(self.database, photos):
            exif = row.exif
            gps = exif.get("gps") or {}
            location = None
            if "lat" in gps and "lon" in gps:
                photo_locations[row.cid] = location = (float(gps["lat"]), float(gps["lon"]))
            taken_at, source = taken_at_of(exif, local_zone=local_zone)
            photo_evidence[row.cid] = PhotoEvidence(taken_at, location, source)
            if row.perceptual_hash:
                hashes[row.cid] = row.perceptual_hash
        lookalikes = self._lookalikes(hashes)
        locations = store.unit_locations(self.database, unit_ids)
        view = self.aggregates.view("unofficial")
        contexts = {}
        for unit_id in unit_ids:
            unit = self.election.polling_unit(unit_id)
            contexts[unit_id] = {
                "photo_units": photo_units,
                "photo_locations": photo_locations,
                "unit_location": locations.get(unit_id),
                "constituency_shares": view.constituency_party_shares(unit.constituency_id, exclude_unit=unit_id),
                "photo_evidence": photo_evidence,
                "count_window": self.count_window,
                "photo_lookalikes": lookalikes,
            }
        return contexts

    def _lookalikes(self, hashes: Mapping[str, str]) -> dict[str, list[Lookalike]]:
        """Per photo (CID to perceptual hash), the other photos at most
        ``photo_similarity_max_bits`` away and the units they were submitted for. Candidates
        share one 16-bit band whole, found through the primary key of ``photo_hash_bands``
        (so every copy up to 3 bits away is found, and most farther ones), then compared
        whole."""
        if not hashes:
            return {}
        wanted: dict[tuple[int, int], set[str]] = {}
        for cid, value in hashes.items():
            for band, part in enumerate(hash_bands(value)):
                if informative_band(part):
                    wanted.setdefault((band, part), set()).add(cid)
        found: dict[str, dict[str, int]] = {}
        for band in range(4):
            parts = sorted(part for b, part in wanted if b == band)
            for start in range(0, len(parts), 500):
                chunk = parts[start : start + 500]
                # Bounded: a band value that thousands of photos share says little, and
                # fetching them all for every photo would grow with the square of the night.
                rows = store.band_candidates(self.database, band, chunk, limit=LOOKALIKE_CANDIDATES * len(chunk))
                for value, photo_cid, perceptual_hash in rows:
                    for cid in wanted[(band, value)]:
                        if photo_cid == cid:
                            continue
                        distance = hamming_distance(hashes[cid], perceptual_hash)
                        if distance <= self.photo_similarity_max_bits:
                            found.setdefault(cid, {})[photo_cid] = distance
        others = sorted({other for near in found.values() for other in near})
        units = store.units_of_photos(self.database, others)
        return {
            cid: [
                Lookalike(other, frozenset(units[other]), distance) for other, distance in sorted(near.items()) if other in units
            ]
            for cid, near in found.items()
        }
