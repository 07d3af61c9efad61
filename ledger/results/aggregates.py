"""Aggregates: constituency results, provincial and national progress, party-list totals,
the seat projection and the projected House, in two views.

- ``unofficial``: every polling unit that has an accepted report, counted once, with its
  most recent report (a later report of the same unit replaces the earlier one).
- ``certified``: only units whose count the war room has certified, with the certified
  numbers (certification decisions feed ``set_certified``).

The engine keeps, per view, each counted unit's numbers and per-constituency sums, and
updates them incrementally by tailing the ledger (entries are append-only and numbered),
so a refresh costs only what arrived since the last one. Entries become visible in id
order (the service serializes inserts), so a cursor over ids never skips one. Documents, and their
rendered bytes (``AggregateView.rendered``: JSON or CSV with a content-derived ETag), are cached
per version in one cache: the ETag changes exactly when the bytes do.
"""

from __future__ import annotations

import csv
import io
import json
import threading
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from ledger.core.decision import Basis
from ledger.core.timefmt import format_time_micro
from ledger.election import Constituency, Election
from ledger.election.counting import UnitResult, VectorLayout, layout_of
from ledger.errors import NotFound
from ledger.quarantine import Quarantine
from ledger.results.house import project_house
from ledger.results.seats import allocate_party_list
from ledger.store.entries import tallies_after
from ledger.views import RenderedAggregate, strong_etag

__all__ = ["VIEWS", "AggregateView", "Aggregates", "UnitResult"]

VIEWS = ("unofficial", "certified")
_PAGE = 5000


def _now() -> str:
    return format_time_micro(datetime.now(UTC))


class AggregateView:
    """One view's state. Read methods return JSON-ready dicts; all are thread-safe."""

    def __init__(self, name: str, layout: VectorLayout):
        self.name = name
        self._layout = layout
        self._election = layout.election
        self._lock = threading.RLock()
        self._units: dict[str, tuple[str, UnitResult]] = {}  # unit id -> (constituency id, result)
        self._constituency_sums = {cid: [0] * (3 + len(numbers)) for cid, numbers in layout.candidate_numbers.items()}
        self._party_sums = {cid: [0] * (3 + len(layout.party_numbers)) for cid in layout.candidate_numbers}
        self._reporting = dict.fromkeys(layout.candidate_numbers, 0)
        self._registered_reporting = dict.fromkeys(layout.candidate_numbers, 0)
        self._basis: dict[str, dict[str, Any]] = {}
        self.version = 0
        self.computed_at = _now()
        self._cache: dict[str, tuple[int, Any]] = {}

    # -- updating -----------------------------------------------------------------

    def set_unit(self, unit_id: str, result: UnitResult | None, *, only_newer: bool = False) -> None:
        """Count ``unit_id`` with ``result`` (replacing what it had), or stop counting it.

        With ``only_newer``, a result from an older entry than the one counted is ignored.
        """
        unit = self._election.polling_unit(unit_id)
        cid = unit.constituency_id
        with self._lock:
            current = self._units.get(unit_id)
            if only_newer and current is not None and result is not None and result.entry_id <= current[1].entry_id:
                return
            old = self._units.pop(unit_id, None)
            if old is not None:
                self._add(cid, old[1], -1)
                self._reporting[cid] -= 1
                self._registered_reporting[cid] -= unit.registered_voters
            if result is not None:
                self._units[unit_id] = (cid, result)
                self._add(cid, result, 1)
                self._reporting[cid] += 1
                self._registered_reporting[cid] += unit.registered_voters
            self.version += 1
            self.computed_at = _now()

    def set_basis(self, constituency_id: str, basis: dict[str, Any]) -> None:
        """What the constituency's numbers in this view rest on (``Aggregates.set_basis``)."""
        with self._lock:
            if self._basis.get(constituency_id) != basis:
                self._basis[constituency_id] = basis
                self.version += 1
                self.computed_at = _now()

    def _add(self, constituency_id: str, result: UnitResult, sign: int) -> None:
        sums = self._constituency_sums[constituency_id]
        for i, value in enumerate(result.constituency):
            sums[i] += sign * value
        party = self._party_sums[constituency_id]
        for i, value in enumerate(result.party_list):
            party[i] += sign * value

    def unit_result(self, unit_id: str) -> UnitResult | None:
        with self._lock:
            entry = self._units.get(unit_id)
            return entry[1] if entry else None

    # -- reading ------------------------------------------------------------------

    @property
    def units_reporting(self) -> int:
        return len(self._units)

    def _cached(self, key: str, build: Any) -> Any:
        with self._lock:
            hit = self._cache.get(key)
            if hit is not None and hit[0] == self.version:
                return hit[1]
            value = build()
            self._cache[key] = (self.version, value)
            return value

    def _meta(self, units_reporting: int, units_total: int) -> dict[str, Any]:
        return {
            "view": self.name,
            "units_reporting": units_reporting,
            "units_total": units_total,
            "computed_at": self.computed_at,
            "version": self.version,
        }

    def _constituency(self, constituency: Constituency) -> dict[str, Any]:
        election = self._election
        sums = self._constituency_sums[constituency.id]
        numbers = self._layout.candidate_numbers[constituency.id]
        candidates = []
        valid = sum(sums[3:])
        for position, number in enumerate(numbers):
            candidate = constituency.candidates[number]
            party = election.parties[candidate.party_id]
            votes = sums[3 + position]
            candidates.append(
                {
                    "number": number,
                    "name": candidate.name,
                    "party_number": party.number,
                    "party": party.name,
                    "votes": votes,
                    "share": round(votes / valid, 6) if valid else 0.0,
                }
            )
        candidates.sort(key=lambda c: (-c["votes"], c["number"]))
        reporting = self._reporting[constituency.id]
        leader = None
        margin = None
        tied: list[int] = []
        if reporting and candidates and candidates[0]["votes"] > 0:
            top = candidates[0]["votes"]
            tied = [c["number"] for c in candidates if c["votes"] == top]
            if len(tied) == 1:
                leader = candidates[0]
                margin = top - (candidates[1]["votes"] if len(candidates) > 1 else 0)
        registered = self._registered_reporting[constituency.id]
        basis = {"basis": self._basis.get(constituency.id)} if self.name == "certified" else {}
        return {
            **basis,
            **self._meta(reporting, constituency.unit_count),
            "constituency_id": constituency.id,
            "province_id": constituency.province_id,
            "number": constituency.number,
            "registered_voters": constituency.registered_voters,
            "registered_voters_reporting": registered,
            "ballots_cast": sums[0],
            "turnout": round(sums[0] / registered, 6) if registered else None,
            "invalid": sums[1],
            "no_vote": sums[2],
            "candidates": candidates,
            "leader": leader,
            "margin": margin,
            "tied": tied if len(tied) > 1 else [],
        }

    def constituency(self, constituency_id: str) -> dict[str, Any]:
        constituency = self._election.constituency(constituency_id)
        return self._cached(f"constituency:{constituency_id}", lambda: self._constituency(constituency))

    def constituencies(self) -> list[dict[str, Any]]:
        return self._cached(
            "constituencies",
            lambda: [self.constituency(cid) for cid in self._election.constituencies],
        )

    def _area(self, constituency_ids: Iterable[str]) -> dict[str, Any]:
        ids = list(constituency_ids)
        constituencies = [self._election.constituencies[c] for c in ids]
        cast = sum(self._party_sums[c][0] for c in ids)
        constituency_cast = sum(self._constituency_sums[c][0] for c in ids)
        registered_reporting = sum(self._registered_reporting[c] for c in ids)
        reporting = sum(self._reporting[c] for c in ids)
        return {
            **self._meta(reporting, sum(c.unit_count for c in constituencies)),
            "registered_voters": sum(c.registered_voters for c in constituencies),
            "registered_voters_reporting": registered_reporting,
            "party_list_ballots_cast": cast,
            "constituency_ballots_cast": constituency_cast,
            "turnout": round(cast / registered_reporting, 6) if registered_reporting else None,
            "progress": round(reporting / sum(c.unit_count for c in constituencies), 6) if constituencies else 0.0,
        }

    def national(self) -> dict[str, Any]:
        return self._cached("national", lambda: {"election": self._election.id, **self._area(self._election.constituencies)})

    def _province_ids(self) -> dict[str, list[str]]:
        grouped: dict[str, list[str]] = {p: [] for p in self._election.provinces}
        for constituency in self._election.constituencies.values():
            grouped[constituency.province_id].append(constituency.id)
        return grouped

    def province(self, province_id: str) -> dict[str, Any]:
        province = self._election.provinces.get(province_id)
        if province is None:
            raise NotFound(f"no province {province_id!r} in election {self._election.id}")
        ids = self._province_ids()[province_id]
        return self._cached(
            f"province:{province_id}",
            lambda: {"province_id": province_id, "name": province.name, "name_en": province.name_en, **self._area(ids)},
        )

    def provinces(self) -> list[dict[str, Any]]:
        return self._cached("provinces", lambda: [self.province(p) for p in self._election.provinces])

    def constituency_party_shares(self, constituency_id: str, *, exclude_unit: str | None = None) -> dict[str, float]:
        """Party-list vote shares in a constituency's counted units, leaving one unit out."""
        with self._lock:
            sums = list(self._party_sums[constituency_id])
            excluded = self._units.get(exclude_unit or "")
            if excluded is not None:
                sums = [a - b for a, b in zip(sums, excluded[1].party_list)]
        valid = sum(sums[3:])
        if valid <= 0:
            return {}
        return {str(number): sums[3 + i] / valid for i, number in enumerate(self._layout.party_numbers)}

    def party_votes(self) -> dict[int, int]:
        totals = [0] * (3 + len(self._layout.party_numbers))
        for sums in self._party_sums.values():
            for i, value in enumerate(sums):
                totals[i] += value
        return {number: totals[3 + i] for i, number in enumerate(self._layout.party_numbers)}

    def _party_list(self) -> dict[str, Any]:
        votes = self.party_votes()
        parties = self._election.parties_by_number
        allocation = allocate_party_list(votes, self._election.party_list_seats).as_json() if sum(votes.values()) else None
        ranked = sorted(votes.items(), key=lambda item: (-item[1], item[0]))
        total = sum(votes.values())
        return {
            **self._meta(self.units_reporting, self._election.unit_count),
            "total_votes": total,
            "parties": [
                {"number": n, "name": parties[n].name, "votes": v, "share": round(v / total, 6) if total else 0.0}
                for n, v in ranked
            ],
            "seats": allocation,
        }

    def party_list(self) -> dict[str, Any]:
        return self._cached("party_list", self._party_list)

    def _house(self) -> dict[str, Any]:
        leaders: dict[str, int | None] = {}
        for constituency_id in self._election.constituencies:
            leader = self.constituency(constituency_id)["leader"]
            leaders[constituency_id] = leader["party_number"] if leader else None
        votes = self.party_votes()
        allocation = allocate_party_list(votes, self._election.party_list_seats) if sum(votes.values()) else None
        house = project_house(
            leaders, allocation, self._election.parties_by_number, party_list_seats=self._election.party_list_seats
        )
        return {**self._meta(self.units_reporting, self._election.unit_count), **house.as_json()}

    def house(self) -> dict[str, Any]:
        return self._cached("house", self._house)

    # -- transport helpers --------------------------------------------------------

    def render(self, resource: str) -> Any:
        """The document of ``resource``: national, provinces, province:<id>, constituencies,
        constituency:<id>, party_list or house."""
        kind, _, key = resource.partition(":")
        if kind == "national":
            return self.national()
        if kind == "provinces":
            return self.provinces()
        if kind == "province":
            return self.province(key)
        if kind == "constituencies":
            return self.constituencies()
        if kind == "constituency":
            return self.constituency(key)
        if kind == "party_list":
            return self.party_list()
        if kind == "house":
            return self.house()
        raise NotFound(f"no aggregate {resource!r}")

    def json_bytes(self, resource: str) -> bytes:
        """``render(resource)`` as UTF-8 JSON (``rendered`` keeps it, until the view changes)."""
        return json.dumps(self.render(resource), ensure_ascii=False, separators=(",", ":")).encode("utf-8")

    def rendered(self, resource: str, fmt: str = "json") -> RenderedAggregate:
        """``resource`` as JSON (``fmt="json"``) or CSV (``"csv"``, lists only), with its ETag;
        rendered once per version of the view (unknown resources raise ``NotFound``)."""
        return self._cached(f"rendered:{fmt}:{resource}", lambda: self._rendered(resource, fmt))  # type: ignore[no-any-return]

    def _rendered(self, resource: str, fmt: str) -> RenderedAggregate:
        filename = None
        if fmt == "csv":
            body = self.csv(resource).encode("utf-8")
            filename = f"{self.name}-{resource.replace('_', '-')}.csv"
            media_type = "text/csv; charset=utf-8"
        else:
            body = self.json_bytes(resource)
            media_type = "application/json"
        return RenderedAggregate(
            body=body,
            etag=strong_etag(body),
            media_type=media_type,
            view=self.name,
            computed_at=self.computed_at,
            units_reporting=self.units_reporting,
            filename=filename,
        )

    def etag(self, resource: str, fmt: str = "json") -> str:
        """The ETag of ``rendered(resource, fmt)``: the hash of its bytes."""
        return self.rendered(resource, fmt).etag

    def csv(self, resource: str) -> str:
        """CSV downloads: constituencies, provinces or party_list."""
        out = io.StringIO()
        writer = csv.writer(out)
        if resource == "constituencies":
            writer.writerow(
                [
                    "constituency_id",
                    "province_id",
                    "units_reporting",
                    "units_total",
                    "ballots_cast",
                    "turnout",
                    "invalid",
                    "no_vote",
                    "leader_number",
                    "leader_name",
                    "leader_party",
                    "leader_votes",
                    "margin",
                ]
            )
            for c in self.constituencies():
                leader = c["leader"] or {}
                writer.writerow(
                    [
                        c["constituency_id"],
                        c["province_id"],
                        c["units_reporting"],
                        c["units_total"],
                        c["ballots_cast"],
                        c["turnout"],
                        c["invalid"],
                        c["no_vote"],
                        leader.get("number"),
                        leader.get("name"),
                        leader.get("party"),
                        leader.get("votes"),
                        c["margin"],
                    ]
                )
        elif resource == "provinces":
            writer.writerow(["province_id", "name", "units_reporting", "units_total", "party_list_ballots_cast", "turnout"])
            for p in self.provinces():
                writer.writerow(
                    [
                        p["province_id"],
                        p["name"],
                        p["units_reporting"],
                        p["units_total"],
                        p["party_list_ballots_cast"],
                        p["turnout"],
                    ]
                )
        elif resource == "party_list":
            document = self.party_list()
            seats = {p["number"]: p for p in (document["seats"] or {}).get("parties", [])}
            writer.writerow(["party_number", "name", "votes", "share", "seats"])
            for p in document["parties"]:
                writer.writerow([p["number"], p["name"], p["votes"], p["share"], seats.get(p["number"], {}).get("seats")])
        else:
            raise NotFound(f"no CSV for {resource!r}; available: constituencies, provinces, party_list")
        return out.getvalue()


class Aggregates:
    """Both views, fed by tailing the ledger's entries."""

    def __init__(self, *, database: Any, election: Election, quarantine: Quarantine | None = None):
        self.database = database
        self.election = election
        self.quarantine = quarantine if quarantine is not None else Quarantine()
        """Entries that could not be counted: set aside, never a reason to stop counting."""
        layout = layout_of(election)
        self._layout = layout
        self._views = {name: AggregateView(name, layout) for name in VIEWS}
        self._cursor = 0
        self._refresh_lock = threading.Lock()

    @property
    def cursor(self) -> int:
        """The id of the last entry counted."""
        return self._cursor

    def view(self, name: str) -> AggregateView:
        try:
            return self._views[name]
        except KeyError:
            raise NotFound(f"no view {name!r}; views are {', '.join(VIEWS)}") from None

    def refresh(self) -> int:
        """Count every entry accepted since the last refresh; returns how many were read."""
        with self._refresh_lock:
            read = 0
            while True:
                with self.database.session() as session:
                    rows = tallies_after(session, self._cursor, limit=_PAGE)
                if not rows:
                    return read
                unofficial = self._views["unofficial"]
                for row in rows:
                    try:
                        result = self._layout.result(row.constituency_id, row.document, row.cid, row.id)
                    except Exception as exc:  # noqa: BLE001 - one entry never stops the count
                        self.quarantine.add("aggregates", row.cid, row.polling_unit or "", exc)
                        continue
                    unofficial.set_unit(row.polling_unit, result, only_newer=True)
                self._cursor = rows[-1].id
                read += len(rows)

    def set_basis(self, constituency_id: str, basis: Basis) -> None:
        """What a constituency's certified numbers rest on, shown beside them: of its units,
        how many are certified (counted), excluded (left out by the war room, with a reason)
        and pending (neither, yet), and whether the constituency is certified."""
        self._views["certified"].set_basis(constituency_id, basis.as_json())

    def set_certified(self, unit_id: str, document: Mapping[str, Any] | None, record_cid: str = "") -> None:
        """Count a unit in the certified view with ``document``'s numbers, or remove it.

        A certified record whose numbers cannot be counted is set aside (the unit is then
        not counted as certified), not raised: it would stop the replay."""
        unit = self.election.polling_unit(unit_id)
        result = None
        if document is not None:
            try:
                result = self._layout.result(unit.constituency_id, document, record_cid)
            except Exception as exc:  # noqa: BLE001
                self.quarantine.add("certified", record_cid, unit_id, exc)
        self._views["certified"].set_unit(unit_id, result)
