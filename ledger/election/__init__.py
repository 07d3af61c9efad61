"""The election definition: provinces, constituencies, parties, candidates and polling units.

An election is data, not code. A definition is a directory with an ``election.json``
(format ``tally-election-v1``) that either names files in the Election Commission of
Thailand's published schema (``"source_schema": "ect-report-2566"``, as bundled for
``th2566``) or carries the normalized lists itself (``provinces``, ``constituencies``,
``parties``, ``candidates``), for any other election.

Polling units are not published one by one, so they are derived by the rule named in
``polling_units.rule``. The only rule so far, ``even-split-v1``:

    units(c)    = ceil(registered_voters(c) / max_registered_voters_per_unit)
    voters(c,i) = floor(R / n) + (1 if i <= R mod n else 0)      for i = 1..n
    unit id     = "<constituency id>-<i as 4 digits>"            e.g. "BKK_1-0001"

With the 2023 data (52,195,920 voters, at most 550 per unit) this gives 95,099 units
averaging 549 voters, matching the roughly 95,000 units of the real election. Unit ids
are stable as long as a constituency's registered voters do not change.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

from ledger.errors import InvalidEncoding, NotFound

__all__ = [
    "Candidate",
    "Constituency",
    "Election",
    "Party",
    "PollingUnit",
    "Province",
    "load_election",
]

BUNDLED = Path(__file__).parent / "data"


@dataclass(frozen=True, slots=True)
class Province:
    id: str
    name: str
    name_en: str
    registered_voters: int


@dataclass(frozen=True, slots=True)
class Party:
    id: str
    number: int | None
    name: str
    abbreviation: str
    color: str


@dataclass(frozen=True, slots=True)
class Candidate:
    constituency_id: str
    number: int
    name: str
    party_id: str


@dataclass(frozen=True, slots=True)
class Constituency:
    id: str
    province_id: str
    number: int
    registered_voters: int
    zones: tuple[str, ...]
    candidates: dict[int, Candidate] = field(hash=False, compare=False)
    unit_count: int


@dataclass(frozen=True, slots=True)
class PollingUnit:
    id: str
    constituency_id: str
    number: int
    registered_voters: int


@dataclass(frozen=True, eq=False)
class Election:
    id: str
    name: str
    polling_day: str
    polls_close: str
    provinces: dict[str, Province]
    constituencies: dict[str, Constituency]
    parties: dict[str, Party]
    constituency_seats: int
    party_list_seats: int
    max_voters_per_unit: int
    reporting_days: int = 60
    """Days after the polls close in which counts may still be reported or corrected: the
    Election Commission has 60 days to announce the results."""

    @property
    def reporting_window(self) -> tuple[datetime, datetime]:
        """When a tally may say it was submitted: from the start of polling day, local time,
        to ``reporting_days`` after the polls close. A phone whose clock says 1970 or 2099
        is wrong, and so is the number it would put on the record."""
        return _reporting_window(self.polls_close, self.reporting_days)

    @property
    def parties_by_number(self) -> dict[int, Party]:
        return _parties_by_number(self)

    @property
    def unit_count(self) -> int:
        return sum(c.unit_count for c in self.constituencies.values())

    @property
    def registered_voters(self) -> int:
        return sum(c.registered_voters for c in self.constituencies.values())

    def constituency(self, constituency_id: str) -> Constituency:
        try:
            return self.constituencies[constituency_id]
        except KeyError:
            raise NotFound(f"no constituency {constituency_id!r} in election {self.id}") from None

    def polling_unit(self, unit_id: str) -> PollingUnit:
        """Look a unit up by id (``BKK_1-0001``); raises ``NotFound`` with the reason."""
        constituency_id, dash, number_text = str(unit_id).rpartition("-")
        if not dash or len(number_text) != 4 or not number_text.isascii() or not number_text.isdigit():
            raise NotFound(f"{unit_id!r} is not a polling unit id; expected '<constituency>-<4 digits>' like 'BKK_1-0001'")
        constituency = self.constituencies.get(constituency_id)
        if constituency is None:
            raise NotFound(f"polling unit {unit_id!r}: no constituency {constituency_id!r} in election {self.id}")
        number = int(number_text)
        if not 1 <= number <= constituency.unit_count:
            raise NotFound(
                f"polling unit {unit_id!r}: constituency {constituency_id} has units 0001 to {constituency.unit_count:04d}"
            )
        return _unit(constituency, number)

    def polling_units(self, constituency_id: str | None = None) -> Iterator[PollingUnit]:
        """Every unit, in a fixed order (constituencies in definition order, then by number)."""
        constituencies = [self.constituency(constituency_id)] if constituency_id else self.constituencies.values()
        for constituency in constituencies:
            for number in range(1, constituency.unit_count + 1):
                yield _unit(constituency, number)


def _unit(constituency: Constituency, number: int) -> PollingUnit:
    base, extra = divmod(constituency.registered_voters, constituency.unit_count)
    return PollingUnit(
        id=f"{constituency.id}-{number:04d}",
        constituency_id=constituency.id,
        number=number,
        registered_voters=base + (1 if number <= extra else 0),
    )


@cache
def _reporting_window(polls_close: str, days: int) -> tuple[datetime, datetime]:
    close = datetime.fromisoformat(polls_close)
    return close.replace(hour=0, minute=0, second=0, microsecond=0), close + timedelta(days=days)


@cache
def _parties_by_number(election: Election) -> dict[int, Party]:
    return {p.number: p for p in election.parties.values() if p.number is not None}


def _read_json(path: Path) -> object:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise NotFound(f"election file {path} does not exist") from None
    except json.JSONDecodeError as exc:
        raise InvalidEncoding(f"election file {path} is not valid JSON: {exc}") from exc


_Rows = list[dict[str, Any]]


def _from_ect_2566(directory: Path, files: dict[str, str]) -> tuple[_Rows, _Rows, _Rows, _Rows]:
    """Normalize the ECT Report 2566 schema into plain dictionaries."""
    provinces_doc = _read_json(directory / files["provinces"])
    provinces = [
        {"id": p["prov_id"], "name": p["province"], "name_en": p["eng"], "registered_voters": p["total_registered_vote"]}
        for p in provinces_doc["province"]  # type: ignore[index]
    ]
    constituencies = [
        {
            "id": c["cons_id"],
            "province_id": c["prov_id"],
            "number": c["cons_no"],
            "registered_voters": c["registered_vote"],
            "zones": c["zone"],
        }
        for c in _read_json(directory / files["constituencies"])  # type: ignore[attr-defined]
    ]
    parties = [
        {
            "id": str(p["id"]),
            "number": int(p["party_no"]) if str(p["party_no"]).strip() else None,
            "name": p["name"],
            "abbreviation": p["abbr"],
            "color": p["color"],
        }
        for p in _read_json(directory / files["parties"])  # type: ignore[attr-defined]
    ]
    candidates = []
    for c in _read_json(directory / files["candidates"]):  # type: ignore[attr-defined]
        constituency_id, _, number = c["mp_app_id"].rpartition("_")
        if int(number) != c["mp_app_no"]:
            raise InvalidEncoding(f"candidate {c['mp_app_id']}: id and number {c['mp_app_no']} disagree")
        candidates.append(
            {
                "constituency_id": constituency_id,
                "number": c["mp_app_no"],
                "name": c["mp_app_name"],
                "party_id": str(c["mp_app_party_id"]),
            }
        )
    return provinces, constituencies, parties, candidates


def _definition_dir(name_or_path: str) -> Path:
    candidate = Path(name_or_path)
    if candidate.is_file():
        return candidate.parent
    if candidate.is_dir():
        return candidate
    bundled = BUNDLED / name_or_path
    if bundled.is_dir():
        return bundled
    known = ", ".join(sorted(p.name for p in BUNDLED.iterdir() if p.is_dir()))
    raise NotFound(f"no election definition {name_or_path!r}: not a path, and the bundled ones are: {known}")


@cache
def load_election(name_or_path: str = "th2566") -> Election:
    """Load and check an election definition (bundled name or directory/election.json path)."""
    directory = _definition_dir(name_or_path)
    meta = _read_json(directory / "election.json")
    if not isinstance(meta, dict) or meta.get("format") != "tally-election-v1":
        raise InvalidEncoding(f"{directory / 'election.json'}: expected format 'tally-election-v1'")
    if meta.get("source_schema", "ect-report-2566") == "ect-report-2566" and "files" in meta:
        provinces, constituencies, parties, candidates = _from_ect_2566(directory, meta["files"])
    else:
        provinces, constituencies, parties, candidates = (
            meta["provinces"],
            meta["constituencies"],
            meta["parties"],
            meta["candidates"],
        )
    unit_rule = meta["polling_units"]
    if unit_rule.get("rule") != "even-split-v1":
        raise InvalidEncoding(f"unknown polling-unit rule {unit_rule.get('rule')!r}; known: 'even-split-v1'")
    per_unit = int(unit_rule["max_registered_voters_per_unit"])

    party_map = {p["id"]: Party(**p) for p in parties}
    numbers = [p.number for p in party_map.values() if p.number is not None]
    if len(numbers) != len(set(numbers)):
        raise InvalidEncoding("two parties share a ballot number")
    by_constituency: dict[str, dict[int, Candidate]] = {}
    for c in candidates:
        if c["party_id"] not in party_map:
            raise InvalidEncoding(f"candidate {c['constituency_id']} #{c['number']}: unknown party id {c['party_id']}")
        slot = by_constituency.setdefault(c["constituency_id"], {})
        if c["number"] in slot:
            raise InvalidEncoding(f"constituency {c['constituency_id']} has two candidates numbered {c['number']}")
        slot[c["number"]] = Candidate(**c)
    province_map = {p["id"]: Province(**p) for p in provinces}
    constituency_map: dict[str, Constituency] = {}
    for c in constituencies:
        if c["province_id"] not in province_map:
            raise InvalidEncoding(f"constituency {c['id']}: unknown province {c['province_id']}")
        constituency_map[c["id"]] = Constituency(
            id=c["id"],
            province_id=c["province_id"],
            number=int(c["number"]),
            registered_voters=int(c["registered_voters"]),
            zones=tuple(c.get("zones", ())),
            candidates=dict(sorted(by_constituency.get(c["id"], {}).items())),
            unit_count=max(1, math.ceil(int(c["registered_voters"]) / per_unit)),
        )
    unknown = set(by_constituency) - set(constituency_map)
    if unknown:
        raise InvalidEncoding(f"candidates for unknown constituencies: {sorted(unknown)[:5]}")
    house = meta["house"]
    return Election(
        id=meta["id"],
        name=meta["name"],
        polling_day=meta["polling_day"],
        polls_close=meta["polls_close"],
        provinces=province_map,
        constituencies=constituency_map,
        parties=party_map,
        constituency_seats=int(house["constituency_seats"]),
        party_list_seats=int(house["party_list_seats"]),
        max_voters_per_unit=per_unit,
        reporting_days=int(meta.get("reporting_days", 60)),
    )
