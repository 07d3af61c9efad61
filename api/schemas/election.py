"""The election definition, health and readiness."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

__all__ = [
    "CandidatePublic",
    "ConstituencyPublic",
    "ConstituencySummaryPublic",
    "ElectionPublic",
    "HealthPublic",
    "PartyPublic",
    "ProvincePublic",
    "QuarantinedPublic",
    "ReadyPublic",
]

# -- election ----------------------------------------------------------------------------


class ProvincePublic(BaseModel):
    id: str
    name: str
    name_en: str
    registered_voters: int


class PartyPublic(BaseModel):
    id: str
    number: int | None
    name: str
    abbreviation: str
    color: str


class ConstituencySummaryPublic(BaseModel):
    id: str
    province_id: str
    number: int
    registered_voters: int
    unit_count: int


class CandidatePublic(BaseModel):
    number: int
    name: str
    party_id: str


class ConstituencyPublic(ConstituencySummaryPublic):
    zones: list[str]
    candidates: list[CandidatePublic]
    first_unit: str
    last_unit: str


class ElectionPublic(BaseModel):
    id: str
    name: str
    polling_day: str
    polls_close: str
    constituency_seats: int
    party_list_seats: int
    max_voters_per_unit: int
    unit_count: int
    registered_voters: int
    provinces: list[ProvincePublic]
    parties: list[PartyPublic]
    constituencies: list[ConstituencySummaryPublic]


class HealthPublic(BaseModel):
    status: Literal["ok"]
    election: str
    entries_counted: int = Field(description="Id of the last ledger entry the aggregates have counted")
    background: dict[str, bool]
    prepare_workers: int = Field(
        0,
        description="Processes preparing tallies beside the API; 0 when they are prepared "
        "in the API process (by setting, on one CPU, or after the pool failed)",
    )


class QuarantinedPublic(BaseModel):
    stage: Literal["aggregates", "certified", "screening", "replay", "sealing"] = Field(
        description="Where the entry could not be used: counted (unofficial or certified view), screened, "
        "replayed as a decision, or sealed into a batch"
    )
    entry: str = Field(description="The entry's record CID (a polling unit when a whole unit could not be screened)")
    subject: str = Field(description="The polling unit or constituency it is about")
    reason: str | None = Field(description="Why (for the war room, the admin and auditors; null for everyone else)")
    since: str = Field(description="When this process first set it aside (UTC)")


class ReadyPublic(BaseModel):
    status: Literal["ready", "degraded"] = Field(
        description="'degraded' when entries are set aside: the service still serves everything else"
    )
    election: str
    entries_counted: int
    quarantined: int = Field(description="How many entries are set aside")
    entries: list[QuarantinedPublic] = Field(description="The first 100 of them")
