"""The projected House: constituency seats plus the party-list seats. Pure.

``project_house`` adds the constituency seats (the leading candidate of each constituency
wins it; a constituency with no report or a tied lead is *undecided* and given to nobody)
to the party-list seats. Undecided seats are counted, never guessed.

The output is versioned (``tally-house-projection-v1``): changing what it says for the same
input breaks published results; add a new format instead. Errors are ``InvalidSeatInput``
(``ledger.results.seats``), with the ``path`` of the bad item.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ledger.election import Party
from ledger.results.seats import PARTY_LIST_SEATS, Allocation, InvalidSeatInput, Tie

__all__ = ["HOUSE_FORMAT", "House", "HouseParty", "project_house"]

HOUSE_FORMAT = "tally-house-projection-v1"


@dataclass(frozen=True, slots=True)
class HouseParty:
    """One party's projected seats. ``party_list_tied``: it may gain a party-list seat by lot."""

    number: int
    name: str
    constituency_seats: int
    party_list_seats: int
    party_list_tied: bool

    @property
    def seats(self) -> int:
        return self.constituency_seats + self.party_list_seats

    def as_json(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "name": self.name,
            "constituency_seats": self.constituency_seats,
            "party_list_seats": self.party_list_seats,
            "seats": self.seats,
            "party_list_tied": self.party_list_tied,
        }


@dataclass(frozen=True, slots=True)
class House:
    """The projected House. ``parties`` holds every known party, ordered by number;
    ``undecided_constituencies`` are in the order the leaders were given.

    ``seats == sum of party seats + undecided_seats``, where the undecided seats are the
    undecided constituencies plus the party-list seats not yet allocated (tied, or all of
    them while there are no party-list votes).
    """

    constituency_seats: int
    party_list_seats: int
    parties: tuple[HouseParty, ...]
    undecided_constituencies: tuple[str, ...]
    party_list_undecided: int
    party_list_ties: tuple[Tie, ...]

    @property
    def seats(self) -> int:
        return self.constituency_seats + self.party_list_seats

    @property
    def majority(self) -> int:
        """Seats needed for a majority of the whole House (251 of 500)."""
        return self.seats // 2 + 1

    @property
    def undecided_seats(self) -> int:
        return len(self.undecided_constituencies) + self.party_list_undecided

    @property
    def seats_by_party(self) -> dict[int, int]:
        return {p.number: p.seats for p in self.parties}

    def as_json(self) -> dict[str, Any]:
        """JSON-ready, format ``tally-house-projection-v1``; parties sorted by seats,
        constituency seats (both descending), then number."""
        ranked = sorted(self.parties, key=lambda p: (-p.seats, -p.constituency_seats, p.number))
        return {
            "format": HOUSE_FORMAT,
            "seats": self.seats,
            "constituency_seats": self.constituency_seats,
            "party_list_seats": self.party_list_seats,
            "majority": self.majority,
            "parties": [p.as_json() for p in ranked],
            "undecided": {
                "seats": self.undecided_seats,
                "constituency_seats": len(self.undecided_constituencies),
                "party_list_seats": self.party_list_undecided,
                "constituencies": list(self.undecided_constituencies),
            },
            "party_list_ties": [t.as_json() for t in self.party_list_ties],
        }


def _party_list_seat_count(party_list: Allocation | None, parties: Mapping[int, Party], party_list_seats: int | None) -> int:
    """The party-list seats of the House: the allocation's (every party in it known), else
    ``party_list_seats`` (default 100) while there are no party-list votes."""
    if party_list is None:
        list_seats = PARTY_LIST_SEATS if party_list_seats is None else party_list_seats
        if isinstance(list_seats, bool) or not isinstance(list_seats, int) or list_seats < 0:
            raise InvalidSeatInput(
                f"party_list_seats must be a non-negative whole number, got {list_seats!r}", path=("party_list_seats",)
            )
    else:
        if party_list_seats is not None and party_list_seats != party_list.seats:
            raise InvalidSeatInput(
                f"party_list_seats is {party_list_seats!r} but the allocation is for {party_list.seats} seats",
                path=("party_list_seats",),
            )
        list_seats = party_list.seats
        for allocated in party_list.parties:
            if allocated.number not in parties:
                raise InvalidSeatInput(
                    f"the party-list allocation has party {allocated.number}, which is not among the known parties",
                    path=("party_list", allocated.number),
                )
    return list_seats


def _constituency_seats(
    constituency_leaders: Mapping[str, int | None], parties: Mapping[int, Party]
) -> tuple[dict[int, int], list[str]]:
    """Constituency seats won per party number, and the undecided constituencies in order."""
    won: dict[int, int] = {}
    undecided: list[str] = []
    for constituency_id, leader in constituency_leaders.items():
        if not isinstance(constituency_id, str) or not constituency_id:
            raise InvalidSeatInput(
                f"constituency id {constituency_id!r} must be a non-empty string like 'BKK_1'", path=("constituency_leaders",)
            )
        if leader is None:
            undecided.append(constituency_id)
            continue
        if isinstance(leader, bool) or not isinstance(leader, int) or leader not in parties:
            raise InvalidSeatInput(
                f"constituency {constituency_id}: leader {leader!r} is not a known party number "
                f"(give the leading candidate's party's ballot number, or None when undecided)",
                path=("constituency_leaders", constituency_id),
            )
        won[leader] = won.get(leader, 0) + 1
    return won, undecided


def project_house(
    constituency_leaders: Mapping[str, int | None],
    party_list: Allocation | None,
    parties: Mapping[int, Party],
    *,
    party_list_seats: int | None = None,
) -> House:
    """Project the House from the constituency leaders and the party-list allocation.

    ``constituency_leaders`` has one entry per constituency (so its length is the number of
    constituency seats): constituency id → the ballot number of the party whose candidate
    leads, or ``None`` when the constituency is undecided (no report yet, or two or more
    candidates tied for the lead). Undecided constituencies are given to nobody.

    ``party_list`` is ``allocate_party_list``'s result, or ``None`` while there are no
    party-list votes; then all ``party_list_seats`` (default 100) are undecided.
    ``parties`` maps ballot number → ``Party`` (``Election.parties_by_number``); every party
    number in the leaders and the allocation must be in it. Raises ``InvalidSeatInput``.
    """
    if not isinstance(parties, Mapping):
        raise InvalidSeatInput(f"parties must be a mapping of party number to party, got {type(parties).__name__}")
    if not isinstance(constituency_leaders, Mapping):
        raise InvalidSeatInput(
            f"constituency_leaders must be a mapping of constituency id to party number or None, "
            f"got {type(constituency_leaders).__name__}",
            path=("constituency_leaders",),
        )
    if party_list is not None and not isinstance(party_list, Allocation):
        raise InvalidSeatInput(
            f"party_list must be an Allocation from allocate_party_list or None, got {type(party_list).__name__}",
            path=("party_list",),
        )
    list_seats = _party_list_seat_count(party_list, parties, party_list_seats)
    won, undecided = _constituency_seats(constituency_leaders, parties)

    allocated_seats = party_list.seats_by_party if party_list else {}
    tied = {n for tie in party_list.ties for n in tie.parties} if party_list else set()
    house_parties = tuple(
        HouseParty(
            number=number,
            name=parties[number].name,
            constituency_seats=won.get(number, 0),
            party_list_seats=allocated_seats.get(number, 0),
            party_list_tied=number in tied,
        )
        for number in sorted(parties)
    )
    return House(
        constituency_seats=len(constituency_leaders),
        party_list_seats=list_seats,
        parties=house_parties,
        undecided_constituencies=tuple(undecided),
        party_list_undecided=party_list.seats_undecided if party_list else list_seats,
        party_list_ties=party_list.ties if party_list else (),
    )
