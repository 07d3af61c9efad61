"""Screening a polling unit's reports: do independent organisations agree, and what looks wrong?

Pure: it takes the unit's reports and a little context (which units each photo was used
for, where and when photos were taken, which other units' photos look alike, the count
window, the constituency's other units) and returns an assessment.

- **agreed**: reports from at least ``required_organisations`` different organisations
  carry exactly the same numbers (both ballots and registered voters), none of them has a
  blocking flag, and no other report disagrees. The earliest of them is accepted
  automatically; advisory flags go with it, for the heads to see.
- **needs_review**: anything else that has at least one report with a blocking flag, or
  reports that disagree; the constituency head decides.

Advisory flags (``ADVISORY_FLAGS``) say the photo's own metadata is missing: a photo sent
through a messaging app loses its EXIF, and phones often have location off. Alone they do
not hold a unit whose independent reports agree: on the night that would send most units
to the heads' queue. Every other flag blocks, ``photo_outside_window`` too (a board
photographed at 09:00 was not photographed after the count).
- **waiting**: consistent so far, but not yet enough organisations.

Flags (``Flag.code``):
``numbers_differ``      two reports of the unit disagree (the detail names the first field)
``form_inconsistent``   the form itself does not add up (reported as written)
``photo_reused``        a photo of this report was also submitted for another unit
``photo_far``           the photo's EXIF GPS is more than ``max_photo_distance_km`` from the unit
``photo_similar``       a photo looks like one submitted for another unit (perceptual hashes at most
                        a few bits apart: a re-saved, resized or cropped copy)
``photo_outside_window``  the photo was taken outside the count window (e.g. 09:00 on polling day)
``photo_undated``       the photo says nothing of when it was taken (no EXIF time, no GPS time)
``photo_unplaced``      the photo says nothing of where it was taken (no EXIF GPS)
``turnout_over_registration``  more ballots than registered voters
``share_outlier``       the leading party's share is far from the constituency's other units
``held_submitter``      the submitter is flagged for repeated rejections; held for review
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

__all__ = [
    "ADVISORY_FLAGS",
    "Assessment",
    "Flag",
    "Lookalike",
    "PhotoEvidence",
    "Report",
    "assess_unit",
    "first_difference",
    "numbers_of",
]


ADVISORY_FLAGS = frozenset({"photo_undated", "photo_unplaced"})
"""Flags shown to reviewers that do not, alone, hold back an agreed unit."""


@dataclass(frozen=True)
class Report:
    record_cid: str
    entry_id: int
    signer: str
    organisation: str | None
    document: Mapping[str, Any]
    held: bool = False


@dataclass(frozen=True)
class PhotoEvidence:
    """What a photo says of itself: when (an aware time, from its EXIF) and where (lat, lon).
    ``time_source`` names where the time came from, for the flag's detail."""

    taken_at: datetime | None
    location: tuple[float, float] | None
    time_source: str = "EXIF DateTimeOriginal"


@dataclass(frozen=True)
class Lookalike:
    """Another photo whose perceptual hash is ``distance`` bits from this one's, and the
    units it was submitted for."""

    photo_cid: str
    units: frozenset[str]
    distance: int


@dataclass(frozen=True)
class Flag:
    code: str
    record_cid: str | None
    detail: str

    def as_json(self) -> dict[str, Any]:
        return {"code": self.code, "record_cid": self.record_cid, "detail": self.detail}


@dataclass(frozen=True)
class Assessment:
    unit: str
    outcome: str  # agreed | needs_review | waiting
    accepted_cid: str | None
    agreeing: tuple[str, ...]
    organisations: tuple[str, ...]
    flags: tuple[Flag, ...] = field(default_factory=tuple)

    def as_json(self) -> dict[str, Any]:
        return {
            "unit": self.unit,
            "outcome": self.outcome,
            "accepted_cid": self.accepted_cid,
            "agreeing": list(self.agreeing),
            "organisations": list(self.organisations),
            "flags": [f.as_json() for f in self.flags],
        }


def numbers_of(document: Mapping[str, Any]) -> tuple[Any, ...]:
    """The counted numbers of a report, in a form that compares exactly."""

    def ballot(name: str) -> tuple[Any, ...]:
        b = document[name]
        return (b["ballots_cast"], b["invalid"], b["no_vote"], tuple(sorted((k, v) for k, v in b["votes"].items() if v)))

    return (document["registered_voters"], ballot("constituency"), ballot("party_list"))


def first_difference(a: Mapping[str, Any], b: Mapping[str, Any]) -> str:
    """A person-readable name of the first field where two reports differ."""
    if a["registered_voters"] != b["registered_voters"]:
        return f"registered_voters {a['registered_voters']} vs {b['registered_voters']}"
    for name in ("constituency", "party_list"):
        x, y = a[name], b[name]
        for key in ("ballots_cast", "invalid", "no_vote"):
            if x[key] != y[key]:
                return f"{name}.{key} {x[key]} vs {y[key]}"
        for number in sorted(set(x["votes"]) | set(y["votes"]), key=int):
            if x["votes"].get(number, 0) != y["votes"].get(number, 0):
                return f"{name}.votes.{number} {x['votes'].get(number, 0)} vs {y['votes'].get(number, 0)}"
    return "no difference"


def _distance_km(a: tuple[float, float], b: tuple[float, float]) -> float:
    lat1, lon1, lat2, lon2 = map(math.radians, (*a, *b))
    h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    return 2 * 6371.0088 * math.asin(math.sqrt(h))


def _leading_share(document: Mapping[str, Any]) -> tuple[str, float] | None:
    votes = document["party_list"]["votes"]
    valid = sum(votes.values())
    if not valid:
        return None
    leader = max(votes, key=lambda k: (votes[k], -int(k)))
    return leader, votes[leader] / valid


def _report_flags(
    unit: str,
    report: Report,
    *,
    photo_units: Mapping[str, set[str]],
    photo_locations: Mapping[str, tuple[float, float]],
    unit_location: tuple[float, float] | None,
    max_photo_distance_km: float,
    constituency_shares: Mapping[str, float],
    outlier_threshold: float,
    photo_evidence: Mapping[str, PhotoEvidence] | None,
    count_window: tuple[datetime, datetime] | None,
    photo_lookalikes: Mapping[str, Sequence[Lookalike]],
) -> list[Flag]:
    flags: list[Flag] = []
    document = report.document
    cid = report.record_cid
    if document.get("form_inconsistent"):
        flags.append(Flag("form_inconsistent", cid, "the form's numbers do not add up; reported as written"))
    for name in ("constituency", "party_list"):
        if document[name]["ballots_cast"] > document["registered_voters"]:
            flags.append(
                Flag(
                    "turnout_over_registration",
                    cid,
                    f"{name}: {document[name]['ballots_cast']} ballots, {document['registered_voters']} registered",
                )
            )
    for role, link in sorted(document.get("photos", {}).items()):
        photo = link["/"] if isinstance(link, Mapping) else str(link)
        others = sorted(photo_units.get(photo, set()) - {unit})
        if others:
            flags.append(Flag("photo_reused", cid, f"photo {role} ({photo}) was also submitted for {', '.join(others[:3])}"))
        location = photo_locations.get(photo)
        if location is not None and unit_location is not None:
            distance = _distance_km(location, unit_location)
            if distance > max_photo_distance_km:
                flags.append(Flag("photo_far", cid, f"photo {role} was taken {distance:.1f} km from the unit"))
        similar = [alike for alike in photo_lookalikes.get(photo, ()) if alike.photo_cid != photo and alike.units - {unit}]
        if similar:
            closest = min(similar, key=lambda alike: (alike.distance, alike.photo_cid))
            elsewhere = sorted(closest.units - {unit})
            flags.append(
                Flag(
                    "photo_similar",
                    cid,
                    f"photo {role} ({photo}) looks like photo {closest.photo_cid} submitted "
                    f"for {', '.join(elsewhere[:3])} ({closest.distance} of 64 bits differ: "
                    "a re-saved or cropped copy?)",
                )
            )
        if photo_evidence is not None:
            flags += _evidence_flags(cid, role, photo_evidence.get(photo), count_window)
    share = _leading_share(document)
    if share is not None and share[0] in constituency_shares:
        typical = constituency_shares[share[0]]
        if abs(share[1] - typical) > outlier_threshold:
            flags.append(
                Flag(
                    "share_outlier",
                    cid,
                    f"party {share[0]} has {share[1]:.0%} here against {typical:.0%} in the constituency's other units",
                )
            )
    if report.held:
        flags.append(Flag("held_submitter", cid, f"{report.signer} is flagged for repeated rejections"))
    return flags


def _evidence_flags(
    cid: str, role: str, evidence: PhotoEvidence | None, count_window: tuple[datetime, datetime] | None
) -> list[Flag]:
    """A photo without a time or a place, or taken outside the count window."""
    flags = []
    if evidence is None or evidence.taken_at is None:
        flags.append(Flag("photo_undated", cid, f"photo {role} says nothing of when it was taken (no EXIF time)"))
    elif count_window is not None:
        start, end = count_window
        if not start <= evidence.taken_at <= end:
            local = evidence.taken_at.astimezone(start.tzinfo)
            flags.append(
                Flag(
                    "photo_outside_window",
                    cid,
                    (
                        f"photo {role} was taken at {local:%Y-%m-%d %H:%M} ({evidence.time_source}), outside the count window "
                        f"{start:%Y-%m-%d %H:%M} to {end.astimezone(start.tzinfo):%Y-%m-%d %H:%M} {start:%z}"
                    ),
                )
            )
    if evidence is None or evidence.location is None:
        flags.append(Flag("photo_unplaced", cid, f"photo {role} says nothing of where it was taken (no EXIF GPS)"))
    return flags


def assess_unit(
    unit: str,
    reports: Sequence[Report],
    *,
    required_organisations: int = 2,
    photo_units: Mapping[str, set[str]] | None = None,
    photo_locations: Mapping[str, tuple[float, float]] | None = None,
    unit_location: tuple[float, float] | None = None,
    max_photo_distance_km: float = 5.0,
    constituency_shares: Mapping[str, float] | None = None,
    outlier_threshold: float = 0.35,
    photo_evidence: Mapping[str, PhotoEvidence] | None = None,
    count_window: tuple[datetime, datetime] | None = None,
    photo_lookalikes: Mapping[str, Sequence[Lookalike]] | None = None,
) -> Assessment:
    """Assess one unit's reports (see the module docstring for the rules).

    ``photo_evidence`` (per photo CID; None: not known, no time or place flags) gives each
    photo's time and place: a photo missing from it, or without a time or a place, is
    flagged, and one taken outside ``count_window`` (aware datetimes, inclusive) too.
    ``photo_lookalikes`` lists, per photo CID, the other photos that look like it.
    """
    if required_organisations < 1:
        raise ValueError("required_organisations must be at least 1")
    ordered = sorted(reports, key=lambda r: r.entry_id)
    flags: list[Flag] = []
    for report in ordered:
        flags += _report_flags(
            unit,
            report,
            photo_units=photo_units or {},
            photo_locations=photo_locations or {},
            unit_location=unit_location,
            max_photo_distance_km=max_photo_distance_km,
            constituency_shares=constituency_shares or {},
            outlier_threshold=outlier_threshold,
            photo_evidence=photo_evidence,
            count_window=count_window,
            photo_lookalikes=photo_lookalikes or {},
        )
    groups: dict[tuple[Any, ...], list[Report]] = {}
    for report in ordered:
        groups.setdefault(numbers_of(report.document), []).append(report)
    if len(groups) > 1:
        first, *others = list(groups.values())
        for group in others:
            flags.append(
                Flag(
                    "numbers_differ",
                    group[0].record_cid,
                    f"differs from {first[0].record_cid}: {first_difference(first[0].document, group[0].document)}",
                )
            )
    organisations = tuple(sorted({r.organisation or r.signer for r in ordered}))
    if not ordered:
        return Assessment(unit, "waiting", None, (), (), ())
    if any(flag.code not in ADVISORY_FLAGS for flag in flags):
        return Assessment(unit, "needs_review", None, (), organisations, tuple(flags))
    (group,) = groups.values()
    independent = {r.organisation or r.signer for r in group}
    if len(independent) >= required_organisations:
        return Assessment(unit, "agreed", group[0].record_cid, tuple(r.record_cid for r in group), organisations, tuple(flags))
    return Assessment(unit, "waiting", None, tuple(r.record_cid for r in group), organisations, tuple(flags))
