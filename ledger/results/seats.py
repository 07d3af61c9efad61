"""Seat arithmetic: the 2023 party-list allocation. Pure.

Every number these functions report is one that anyone can recompute from the published
party-list totals, so the arithmetic is exact (``fractions.Fraction``; no floats anywhere)
and the serialized output is versioned. Changing what an existing format says for the
same input breaks published results: add a new format instead.

Party-list allocation, rule ``largest-remainder-2566``
======================================================
The rule of the 14 May 2023 election (see ``data/th2566/README.md``), for ``seats`` seats
(100 in 2023):

1. ``total`` = the party-list votes of all parties added up (valid votes only: invalid
   ballots and "vote for no one" ballots are not votes for a party and are not counted).
2. ``quota`` = ``total / seats``, kept as an exact fraction.
3. Each party gets ``whole_seats = floor(votes / quota)``.
4. ``remainder = votes / quota - whole_seats`` (a fraction in [0, 1)). The seats the whole
   numbers leave over go, one each, to the parties with the largest remainders.
5. Equal remainders straddling the cut-off are decided by drawing lots. This module never
   draws: it reports the seats that are certain and a ``Tie`` naming the parties whose
   remainders are equal at the cut-off and how many seats remain to be drawn among them.

Facts the code relies on (and the tests check):

- The remainders add up to exactly the number of leftover seats ``R``. So when ``R > 0``
  more than ``R`` parties have a positive remainder, no party gets two remainder seats,
  and a party with no votes (remainder 0) never gets one or enters a tie.
- There is at most one tie: only the remainder at the cut-off can be shared across it.
  Equal remainders wholly inside the cut-off (all get a seat) or wholly outside it (none
  does) are not a tie, because no lot would be drawn.
- Multiplying every party's votes by the same number changes nothing but the quota, and
  the order in which parties are given does not matter.

Not modelled: any cap by the length of a party's list (the input carries no list lengths).

Worked example (``seats=5``; the tests check it)::

    votes      47,000   16,000   15,800   12,000    6,100    3,100    total 100,000
    ÷ quota      2.35     0.80     0.79     0.60    0.305    0.155    quota 20,000
    whole           2        0        0        0        0        0    2 seats, 3 left over
    remainder    0.35     0.80     0.79     0.60    0.305    0.155
    seats           2        1        1        1        0        0    (the three largest remainders)

With ``votes = {1: 400, 2: 300, 3: 300}`` and ``seats=5`` the quota is 200, the whole seats
are 2, 1 and 1, one seat is left, and parties 2 and 3 both have remainder 1/2: the
allocation gives 2, 1, 1 certain seats and ``Tie(parties=(2, 3), seats_to_draw=1)``.

The projected House (the constituency seats plus these) is ``ledger.results.house``.

Errors: ``InvalidSeatInput`` (a ``LedgerError`` and a ``ValueError``) says what was wrong,
where (``path``) and what would be right.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from ledger.errors import LedgerError

__all__ = [
    "ALLOCATION_FORMAT",
    "PARTY_LIST_RULE",
    "PARTY_LIST_SEATS",
    "Allocation",
    "InvalidSeatInput",
    "PartySeats",
    "Tie",
    "allocate_party_list",
    "parse_votes_json",
]

ALLOCATION_FORMAT = "tally-party-list-allocation-v1"
PARTY_LIST_RULE = "largest-remainder-2566"
PARTY_LIST_SEATS = 100
"""Party-list seats in the 2023 House (the other 400 are constituency seats)."""

_DECIMAL_PLACES = 6
_PARTY_NUMBER_TEXT = re.compile(r"^[1-9][0-9]*$")


class InvalidSeatInput(LedgerError, ValueError):
    """Seat-allocation input is malformed. ``path`` locates the bad item, e.g. ``("votes", "31")``."""

    def __init__(self, message: str, *, path: tuple[str | int, ...] = ()):
        self.path = path
        super().__init__(message)


# -- results ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Tie:
    """Parties with equal remainders at the cut-off: ``seats_to_draw`` of them get a seat by lot.

    ``len(parties) > seats_to_draw >= 1`` always; ``remainder`` is the remainder they share.
    """

    parties: tuple[int, ...]
    seats_to_draw: int
    remainder: Fraction

    def as_json(self) -> dict[str, Any]:
        return {
            "parties": list(self.parties),
            "seats_to_draw": self.seats_to_draw,
            "remainder": _exact_and_decimal(self.remainder),
        }


@dataclass(frozen=True, slots=True)
class PartySeats:
    """One party's allocation.

    ``seats`` counts only certain seats: ``whole_seats + (1 if remainder_seat else 0)``.
    A party in the tie has ``tied=True`` and ``remainder_seat=False``; it may gain one more
    seat by lot.
    """

    number: int
    votes: int
    whole_seats: int
    remainder: Fraction
    remainder_seat: bool
    seats: int
    tied: bool

    def as_json(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "votes": self.votes,
            "whole_seats": self.whole_seats,
            "remainder": _exact_and_decimal(self.remainder),
            "remainder_seat": self.remainder_seat,
            "seats": self.seats,
            "tied": self.tied,
        }


@dataclass(frozen=True, slots=True)
class Allocation:
    """The result of ``allocate_party_list``. ``parties`` is ordered by party number.

    ``seats_allocated + seats_undecided == seats`` always; ``seats_undecided`` is the sum
    of ``seats_to_draw`` over ``ties`` (there is at most one tie).
    """

    seats: int
    total_votes: int
    quota: Fraction
    parties: tuple[PartySeats, ...]
    ties: tuple[Tie, ...]

    @property
    def seats_allocated(self) -> int:
        return sum(p.seats for p in self.parties)

    @property
    def seats_undecided(self) -> int:
        return sum(t.seats_to_draw for t in self.ties)

    @property
    def seats_by_party(self) -> dict[int, int]:
        """Certain seats per party number (every party given, including those with none)."""
        return {p.number: p.seats for p in self.parties}

    def party(self, number: int) -> PartySeats:
        for party in self.parties:
            if party.number == number:
                return party
        raise KeyError(number)

    def as_json(self) -> dict[str, Any]:
        """JSON-ready, format ``tally-party-list-allocation-v1``.

        Fractions appear as ``{"exact": "n/d", "decimal": "d.dddddd"}``: ``exact`` is in
        lowest terms and always has a denominator (``"5/1"``); ``decimal`` is rounded half
        to even to 6 places. Parties are sorted by seats, then votes (both descending),
        then number.
        """
        ranked = sorted(self.parties, key=lambda p: (-p.seats, -p.votes, p.number))
        return {
            "format": ALLOCATION_FORMAT,
            "rule": PARTY_LIST_RULE,
            "seats": self.seats,
            "total_votes": self.total_votes,
            "quota": _exact_and_decimal(self.quota),
            "seats_allocated": self.seats_allocated,
            "seats_undecided": self.seats_undecided,
            "parties": [p.as_json() for p in ranked],
            "ties": [t.as_json() for t in self.ties],
        }


# -- party-list allocation ----------------------------------------------------------


def allocate_party_list(votes: Mapping[int, int], seats: int = PARTY_LIST_SEATS) -> Allocation:
    """Allocate ``seats`` party-list seats by the 2023 largest-remainder rule.

    ``votes`` maps each party's ballot number (a positive int) to its party-list votes (a
    non-negative int); parties with no votes may be included and get nothing. At least one
    vote in all is required (the quota would be zero). Ties at the cut-off are reported in
    ``Allocation.ties``, never decided. Raises ``InvalidSeatInput``.
    """
    _check_votes(votes, seats)
    total = sum(votes.values())
    if total == 0:
        raise InvalidSeatInput("no party-list votes: the quota (total votes ÷ seats) needs at least one vote", path=("votes",))
    quota = Fraction(total, seats)

    numbers = sorted(votes)
    # votes / quota == votes * seats / total, exactly.
    whole = {n: votes[n] * seats // total for n in numbers}
    remainder = {n: Fraction(votes[n] * seats, total) - whole[n] for n in numbers}
    left_over = seats - sum(whole.values())

    winners: set[int] = set()
    ties: tuple[Tie, ...] = ()
    if left_over:
        cut = sorted(remainder.values(), reverse=True)[left_over - 1]
        assert cut > 0, "remainders add up to the seats left over, so the cut-off remainder is positive"
        above = [n for n in numbers if remainder[n] > cut]
        at_cut = [n for n in numbers if remainder[n] == cut]
        open_seats = left_over - len(above)
        winners.update(above)
        if len(at_cut) == open_seats:
            winners.update(at_cut)
        else:
            ties = (Tie(parties=tuple(at_cut), seats_to_draw=open_seats, remainder=cut),)
    tied = {n for tie in ties for n in tie.parties}

    parties = tuple(
        PartySeats(
            number=n,
            votes=votes[n],
            whole_seats=whole[n],
            remainder=remainder[n],
            remainder_seat=n in winners,
            seats=whole[n] + (1 if n in winners else 0),
            tied=n in tied,
        )
        for n in numbers
    )
    return Allocation(seats=seats, total_votes=total, quota=quota, parties=parties, ties=ties)


def _check_votes(votes: object, seats: object) -> None:
    if isinstance(seats, bool) or not isinstance(seats, int) or seats < 1:
        raise InvalidSeatInput(f"seats must be a positive whole number, got {seats!r}", path=("seats",))
    if not isinstance(votes, Mapping):
        raise InvalidSeatInput(f"votes must be a mapping of party number to votes, got {type(votes).__name__}", path=("votes",))
    for number, count in votes.items():
        if isinstance(number, bool) or not isinstance(number, int) or number < 1:
            raise InvalidSeatInput(
                f"party number {number!r} must be a positive whole number (the number on the party-list ballot)",
                path=("votes", str(number)),
            )
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise InvalidSeatInput(
                f"party {number}: votes must be a non-negative whole number, got {count!r}", path=("votes", str(number))
            )


def parse_votes_json(obj: object) -> dict[int, int]:
    """Turn a decoded JSON object like ``{"31": 14438851, "29": 10962522}`` into ``{31: ..., 29: ...}``.

    Keys must be party numbers written plainly (``"31"``; not ``"031"``, ``"+31"``, ``" 31"``
    or ``"0"``), so no two keys can name the same party. Values must be non-negative JSON
    integers (``1.0`` and ``true`` are refused). Raises ``InvalidSeatInput`` naming the
    first bad key or value.
    """
    if not isinstance(obj, Mapping):
        raise InvalidSeatInput(
            f'party-list votes must be a JSON object of party number to votes, like {{"31": 14438851}}; got {_json_type(obj)}',
            path=("votes",),
        )
    parsed: dict[int, int] = {}
    for key, value in obj.items():
        if not isinstance(key, str) or not _PARTY_NUMBER_TEXT.match(key):
            raise InvalidSeatInput(
                f"key {key!r} is not a party number: write it as a positive whole number without signs, spaces "
                f'or leading zeros, like "31"',
                path=("votes", str(key)),
            )
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            shown = repr(value) if not isinstance(value, (Mapping, list)) else _json_type(value)
            raise InvalidSeatInput(f"party {key}: votes must be a non-negative whole number, got {shown}", path=("votes", key))
        parsed[int(key)] = value
    return parsed


def _json_type(value: object) -> str:
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, list):
        return "an array"
    return type(value).__name__


# -- formatting ---------------------------------------------------------------------


def _exact_and_decimal(value: Fraction) -> dict[str, str]:
    """``{"exact": "n/d", "decimal": "…"}``: lowest terms, and rounded half to even to 6 places."""
    scaled = round(value * 10**_DECIMAL_PLACES)  # Fraction.__round__ is exact, half to even
    sign = "-" if scaled < 0 else ""
    integer, fraction = divmod(abs(scaled), 10**_DECIMAL_PLACES)
    return {"exact": f"{value.numerator}/{value.denominator}", "decimal": f"{sign}{integer}.{fraction:0{_DECIMAL_PLACES}d}"}
