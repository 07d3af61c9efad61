"""The projected House (``ledger.results.house``): constituency seats plus the party-list
allocation, undecided seats counted and never guessed, and every input checked."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.election import Party
from ledger.results.house import project_house
from ledger.results.seats import Allocation, InvalidSeatInput, allocate_party_list


def party(number: int, name: str | None = None) -> Party:
    return Party(id=str(700 + number), number=number, name=name or f"Party {number}", abbreviation=f"P{number}", color="#000000")


SMALL_PARTIES = {n: party(n) for n in (1, 2, 3, 4)}


def test_house_adds_constituency_and_party_list_seats() -> None:
    leaders = {"X_1": 1, "X_2": 1, "X_3": 2, "X_4": None}
    allocation = allocate_party_list({1: 400, 2: 300, 3: 300}, seats=5)  # example C: 2, 1, 1 and one to draw
    house = project_house(leaders, allocation, SMALL_PARTIES)
    assert (house.seats, house.majority) == (9, 5)
    assert house.seats_by_party == {1: 4, 2: 2, 3: 1, 4: 0}
    assert house.undecided_constituencies == ("X_4",)
    assert (house.party_list_undecided, house.undecided_seats) == (1, 2)
    assert house.party_list_ties == allocation.ties
    row = ("number", "name", "constituency_seats", "party_list_seats", "seats", "party_list_tied")
    assert house.as_json() == {
        "format": "tally-house-projection-v1",
        "seats": 9,
        "constituency_seats": 4,
        "party_list_seats": 5,
        "majority": 5,
        "parties": [
            dict(zip(row, (1, "Party 1", 2, 2, 4, False))),
            dict(zip(row, (2, "Party 2", 1, 1, 2, True))),
            dict(zip(row, (3, "Party 3", 0, 1, 1, True))),
            dict(zip(row, (4, "Party 4", 0, 0, 0, False))),
        ],
        "undecided": {"seats": 2, "constituency_seats": 1, "party_list_seats": 1, "constituencies": ["X_4"]},
        "party_list_ties": [{"parties": [2, 3], "seats_to_draw": 1, "remainder": {"exact": "1/2", "decimal": "0.500000"}}],
    }


def test_house_before_any_party_list_votes() -> None:
    house = project_house({"X_1": 3, "X_2": None}, None, SMALL_PARTIES)
    assert (house.party_list_seats, house.party_list_undecided, house.undecided_seats) == (100, 100, 101)
    assert house.seats_by_party == {1: 0, 2: 0, 3: 1, 4: 0}
    house = project_house({}, None, SMALL_PARTIES, party_list_seats=5)
    assert (house.seats, house.undecided_seats) == (5, 5)


@pytest.mark.parametrize(
    ("leaders", "allocation", "kwargs", "message"),
    [
        (
            {"X_1": 9},
            None,
            {},
            "constituency X_1: leader 9 is not a known party number (give the leading candidate's "
            "party's ballot number, or None when undecided)",
        ),
        (
            {"X_1": True},
            None,
            {},
            "constituency X_1: leader True is not a known party number (give the leading "
            "candidate's party's ballot number, or None when undecided)",
        ),
        (
            {"X_1": "1"},
            None,
            {},
            "constituency X_1: leader '1' is not a known party number (give the leading "
            "candidate's party's ballot number, or None when undecided)",
        ),
        ({"": 1}, None, {}, "constituency id '' must be a non-empty string like 'BKK_1'"),
        ({1: 1}, None, {}, "constituency id 1 must be a non-empty string like 'BKK_1'"),
        ({}, {9: 5}, {}, "the party-list allocation has party 9, which is not among the known parties"),
        ({}, {1: 5}, {"party_list_seats": 7}, "party_list_seats is 7 but the allocation is for 100 seats"),
        ({}, None, {"party_list_seats": -1}, "party_list_seats must be a non-negative whole number, got -1"),
        ([("X_1", 1)], None, {}, "constituency_leaders must be a mapping of constituency id to party number or None, got list"),
    ],
)
def test_house_input_is_checked(leaders: object, allocation: dict[int, int] | None, kwargs: dict[str, int], message: str) -> None:
    party_list = allocate_party_list(allocation) if allocation else None
    with pytest.raises(InvalidSeatInput) as caught:
        project_house(leaders, party_list, SMALL_PARTIES, **kwargs)  # type: ignore[arg-type]
    assert str(caught.value) == message


def test_house_refuses_what_is_not_an_allocation() -> None:
    message = "party_list must be an Allocation from allocate_party_list or None, got dict"
    with pytest.raises(InvalidSeatInput, match=re.escape(message)):
        project_house({}, {1: 5}, SMALL_PARTIES)  # type: ignore[arg-type]


@given(
    leaders=st.dictionaries(st.text(min_size=1, max_size=6), st.one_of(st.none(), st.sampled_from([1, 2, 3, 4])), max_size=30),
    votes=st.dictionaries(st.sampled_from([1, 2, 3, 4]), st.integers(0, 30), min_size=1).filter(lambda v: sum(v.values()) > 0),
    seats=st.integers(1, 20),
)
def test_house_seats_add_up(leaders: dict[str, int | None], votes: dict[int, int], seats: int) -> None:
    allocation = allocate_party_list(votes, seats)
    house = project_house(leaders, allocation, SMALL_PARTIES)
    assert isinstance(allocation, Allocation)
    assert sum(house.seats_by_party.values()) + house.undecided_seats == house.seats == len(leaders) + seats
    assert sum(p.constituency_seats for p in house.parties) == sum(1 for v in leaders.values() if v is not None)
    party_list = allocation.seats_by_party
    assert {p.number: p.party_list_seats for p in house.parties} == {n: party_list.get(n, 0) for n in SMALL_PARTIES}
