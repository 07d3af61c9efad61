"""A seeded, reproducible election night on the real structure, for the demo and benchmarks.

Nothing here is a result: it is a generator of plausible counts. Party strengths are
simulation priors loosely shaped like the 2023 national party-list shares (named by party
so that they follow the bundled data); each constituency gets a regional swing and each
unit its own noise. Turnout centres on 75 %. The same seed always gives the same night.
"""

from __future__ import annotations

import hashlib
import io
import math
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from PIL import Image, ImageDraw

from ledger.election import Constituency, Election, PollingUnit

__all__ = ["PARTY_PRIORS", "NightSimulator", "TrueCount", "make_photo"]

# Simulation priors by party name (share of party-list votes); other parties share the rest.
PARTY_PRIORS: dict[str, float] = {
    "ก้าวไกล": 0.36,
    "เพื่อไทย": 0.27,
    "รวมไทยสร้างชาติ": 0.12,
    "ภูมิใจไทย": 0.034,
    "ประชาธิปัตย์": 0.024,
    "ประชาชาติ": 0.015,
    "พลังประชารัฐ": 0.014,
    "ไทยสร้างไทย": 0.009,
    "ชาติไทยพัฒนา": 0.005,
    "เสรีรวมไทย": 0.005,
}
_OTHER_SHARE = 0.002


@dataclass(frozen=True)
class BallotCount:
    ballots_cast: int
    votes: dict[str, int]
    invalid: int
    no_vote: int

    def as_json(self) -> dict[str, object]:
        return {"ballots_cast": self.ballots_cast, "votes": dict(self.votes), "invalid": self.invalid, "no_vote": self.no_vote}


@dataclass(frozen=True)
class TrueCount:
    unit: PollingUnit
    constituency: BallotCount
    party_list: BallotCount


def _rng(*parts: object) -> random.Random:
    return random.Random(hashlib.sha256(":".join(map(str, parts)).encode()).digest())


def _apportion(total: int, weights: dict[str, float]) -> dict[str, int]:
    """Split ``total`` ballots by weights (largest remainder), deterministically."""
    weight_sum = sum(weights.values())
    exact = {key: total * w / weight_sum for key, w in weights.items()}
    counts = {key: math.floor(value) for key, value in exact.items()}
    left = total - sum(counts.values())
    for key in sorted(exact, key=lambda k: (exact[k] - counts[k], k), reverse=True)[:left]:
        counts[key] += 1
    return counts


class NightSimulator:
    def __init__(self, election: Election, seed: int = 2566):
        self.election = election
        self.seed = seed
        self._party_weight = {
            str(number): PARTY_PRIORS.get(party.name, _OTHER_SHARE) for number, party in election.parties_by_number.items()
        }
        self._swing: dict[str, dict[str, float]] = {}
        self._candidate_weights: dict[str, dict[str, float]] = {}

    def _regional(self, constituency: Constituency) -> dict[str, float]:
        swing = self._swing.get(constituency.id)
        if swing is None:
            rng = _rng(self.seed, "swing", constituency.id)
            swing = {number: w * rng.lognormvariate(0, 0.45) for number, w in self._party_weight.items()}
            self._swing[constituency.id] = swing
        return swing

    def _candidates(self, constituency: Constituency) -> dict[str, float]:
        weights = self._candidate_weights.get(constituency.id)
        if weights is None:
            regional = self._regional(constituency)
            weights = {}
            for number, candidate in constituency.candidates.items():
                party = self.election.parties[candidate.party_id]
                base = regional.get(str(party.number), _OTHER_SHARE) if party.number is not None else _OTHER_SHARE
                weights[str(number)] = base * _rng(self.seed, "candidate", constituency.id, number).lognormvariate(0, 0.5)
            self._candidate_weights[constituency.id] = weights
        return weights

    def true_count(self, unit: PollingUnit) -> TrueCount:
        """The unit's real count in this simulated night."""
        constituency = self.election.constituency(unit.constituency_id)
        rng = _rng(self.seed, "unit", unit.id)
        turnout = min(0.95, max(0.45, rng.gauss(0.75, 0.07)))
        cast = round(unit.registered_voters * turnout)
        regional = self._regional(constituency)
        party_weights = {n: w * rng.lognormvariate(0, 0.25) for n, w in regional.items()}
        party_invalid = round(cast * rng.uniform(0.01, 0.04))
        party_no_vote = round(cast * rng.uniform(0.005, 0.025))
        party_votes = _apportion(cast - party_invalid - party_no_vote, party_weights)
        candidate_weights = {n: w * rng.lognormvariate(0, 0.15) for n, w in self._candidates(constituency).items()}
        cons_invalid = round(cast * rng.uniform(0.015, 0.05))
        cons_no_vote = round(cast * rng.uniform(0.005, 0.03))
        cons_votes = _apportion(cast - cons_invalid - cons_no_vote, candidate_weights) if candidate_weights else {}
        if not candidate_weights:
            cons_no_vote = cast - cons_invalid
        return TrueCount(
            unit=unit,
            constituency=BallotCount(cast, {k: v for k, v in cons_votes.items() if v}, cons_invalid, cons_no_vote),
            party_list=BallotCount(cast, {k: v for k, v in party_votes.items() if v}, party_invalid, party_no_vote),
        )

    def report_time(self, unit: PollingUnit, report: int) -> datetime:
        """When a report arrives: polls close at 17:00 ICT, counts land between 17:20 and 20:30."""
        close = datetime.fromisoformat(self.election.polls_close).astimezone(UTC)
        minutes = _rng(self.seed, "time", unit.id, report).uniform(20, 210)
        return close + timedelta(minutes=minutes)

    def unit_location(self, unit: PollingUnit) -> tuple[float, float]:
        """A plausible location inside Thailand (simulated; units publish none)."""
        rng = _rng(self.seed, "gps", unit.constituency_id)
        lat, lon = rng.uniform(6.0, 20.0), rng.uniform(98.0, 105.0)
        jitter = _rng(self.seed, "gps", unit.id)
        return lat + jitter.uniform(-0.05, 0.05), lon + jitter.uniform(-0.05, 0.05)


def _gps_ifd(lat: float, lon: float) -> dict[int, object]:
    def dms(value: float) -> tuple[float, float, float]:
        hundredths = round(abs(value) * 360_000)  # hundredths of an arc-second
        degrees, rest = divmod(hundredths, 360_000)
        minutes, rest = divmod(rest, 6_000)
        return (float(degrees), float(minutes), rest / 100)

    return {1: "N" if lat >= 0 else "S", 2: dms(lat), 3: "E" if lon >= 0 else "W", 4: dms(lon)}


def make_photo(*, label: str, taken_at: datetime, location: tuple[float, float] | None, seed: str, size: int = 0) -> bytes:
    """A small JPEG with EXIF time (and GPS when given) standing in for a phone photo.

    ``size`` pads the image with noise until the file is at least that many bytes.
    """
    rng = _rng(seed)
    side = 96
    image = Image.new("RGB", (side, side), (rng.randrange(256), rng.randrange(256), rng.randrange(256)))
    draw = ImageDraw.Draw(image)
    draw.text((4, 4), label[:14], fill=(255, 255, 255))
    draw.text((4, 20), label[14:28], fill=(255, 255, 255))
    if size:
        side = max(side, int(math.sqrt(size / 0.48)))
        noise = Image.effect_noise((side, side), 48 + rng.randrange(16)).convert("RGB")
        image = Image.blend(image.resize((side, side)), noise, 0.5)
    exif = Image.Exif()
    local = taken_at.astimezone(UTC) + timedelta(hours=7)
    exif[0x0132] = local.strftime("%Y:%m:%d %H:%M:%S")  # DateTime
    exif_ifd = {0x9003: local.strftime("%Y:%m:%d %H:%M:%S"), 0x9011: "+07:00"}  # DateTimeOriginal, OffsetTimeOriginal
    exif[0x8769] = exif_ifd
    if location is not None:
        exif[0x8825] = _gps_ifd(*location)
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=85, exif=exif.tobytes())
    return buffer.getvalue()
