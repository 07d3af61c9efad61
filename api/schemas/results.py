"""Aggregates: national, provincial and constituency results, party-list seats, the House."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from api.schemas.common import Timestamp, _Open

__all__ = [
    "AggregateMeta",
    "AreaResultPublic",
    "CandidateResultPublic",
    "ConstituencyResultPublic",
    "HouseResultPublic",
    "NationalResultPublic",
    "PartyListResultPublic",
    "PartyVotesPublic",
    "ProvinceResultPublic",
]

# -- aggregates ------------------------------------------------------------------------


class AggregateMeta(_Open):
    view: Literal["unofficial", "certified"]
    units_reporting: int
    units_total: int
    computed_at: Timestamp
    version: int


class AreaResultPublic(AggregateMeta):
    registered_voters: int
    registered_voters_reporting: int
    party_list_ballots_cast: int
    constituency_ballots_cast: int
    turnout: float | None
    progress: float


class NationalResultPublic(AreaResultPublic):
    election: str


class ProvinceResultPublic(AreaResultPublic):
    province_id: str
    name: str
    name_en: str


class CandidateResultPublic(_Open):
    number: int
    name: str
    party_number: int | None
    party: str
    votes: int
    share: float


class ConstituencyResultPublic(AggregateMeta):
    constituency_id: str
    province_id: str
    number: int
    registered_voters: int
    registered_voters_reporting: int
    ballots_cast: int
    turnout: float | None
    invalid: int
    no_vote: int
    candidates: list[CandidateResultPublic]
    leader: CandidateResultPublic | None
    margin: int | None
    tied: list[int]


class PartyVotesPublic(_Open):
    number: int
    name: str
    votes: int
    share: float


class PartyListResultPublic(AggregateMeta):
    total_votes: int
    parties: list[PartyVotesPublic]
    seats: dict[str, Any] | None = Field(description="tally-party-list-allocation-v1 (ledger/seats.py); null before any vote")


class HouseResultPublic(AggregateMeta):
    """Meta plus a ``tally-house-projection-v1`` document (ledger/seats.py)."""

    format: str
    seats: int
    majority: int
    parties: list[dict[str, Any]]
    undecided: dict[str, Any]
