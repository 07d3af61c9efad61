"""Seat allocation (``ledger.results.seats``): hand-worked examples, ties, input checks, and
Hypothesis properties checked against two deliberately simple reference implementations.

Hand-worked examples (quota = total ÷ seats; share = votes ÷ quota = votes × seats ÷ total):

A. seats 5, votes 47,000 / 16,000 / 15,800 / 12,000 / 6,100 / 3,100 (total 100,000, quota 20,000).
   Shares 2.35, 0.80, 0.79, 0.60, 0.305, 0.155 → whole seats 2,0,0,0,0,0 (2 of 5); the three
   seats left go to remainders 0.80, 0.79, 0.60 → seats 2,1,1,1,0,0. The biggest party gets
   no remainder seat: its remainder 0.35 is only fourth.
B. seats 100, votes 250,000 / 150,000 / 99,500 / 500 (total 500,000, quota 5,000).
   Shares 50, 30, 19.9, 0.1 → whole 50+30+19+0 = 99; the one seat left goes to remainder
   0.9 → seats 50, 30, 20, 0.
C. (a tie that matters) seats 5, votes 400 / 300 / 300 (quota 200). Shares 2, 1.5, 1.5 →
   whole 2+1+1 = 4; one seat left, parties 2 and 3 share the largest remainder 1/2 → certain
   seats 2, 1, 1 and one seat to draw between parties 2 and 3.
D. (ties that do not matter) seats 7, votes 150 / 150 / 130 / 130 / 140 (quota 100). Shares
   1.5, 1.5, 1.3, 1.3, 1.4 → whole 5; two seats left go to the two remainders of 0.5 (equal,
   both inside the cut); the two remainders of 0.3 are equal but both outside. No lot is
   drawn → seats 2, 2, 1, 1, 1 and no tie.
E. (three parties, two seats) seats 2, votes 1 / 1 / 1 (quota 3/2). Shares 2/3 each → no
   whole seats; two seats to draw among all three.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Mapping
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.election import load_election
from ledger.errors import LedgerError
from ledger.results.house import project_house
from ledger.results.seats import (
    InvalidSeatInput,
    Tie,
    allocate_party_list,
    parse_votes_json,
)

ELECTION = load_election("th2566")
REAL_PARTIES = ELECTION.parties_by_number


# -- reference implementations ------------------------------------------------------


def reference_by_lots(votes: Mapping[int, int], seats: int) -> tuple[dict[int, int], set[int], int]:
    """Draw every possible lot: for each order of the parties used as the tie-break, hand the
    left-over seats to the largest remainders (integer arithmetic, remainders as
    ``votes * seats mod total``). A seat is certain if every order gives it.

    Returns (certain seats per party, parties whose seats differ between orders, seats
    that differ). Exponential: only for a handful of parties.
    """
    total = sum(votes.values())
    outcomes = []
    for order in itertools.permutations(votes):
        priority = {party: i for i, party in enumerate(order)}
        whole = {p: v * seats // total for p, v in votes.items()}
        left = seats - sum(whole.values())
        ranked = sorted(votes, key=lambda p: (-(votes[p] * seats % total), priority[p]))
        outcome = dict(whole)
        for p in ranked[:left]:
            outcome[p] += 1
        outcomes.append(outcome)
    certain = {p: min(o[p] for o in outcomes) for p in votes}
    varying = {p for p in votes if max(o[p] for o in outcomes) != certain[p]}
    return certain, varying, seats - sum(certain.values())


def reference_seat_by_seat(votes: Mapping[int, int], seats: int) -> tuple[dict[int, int], tuple[tuple[int, ...], int] | None]:
    """Hand out the left-over seats one at a time to the largest remaining remainder; stop
    when the largest remainder is shared by more parties than there are seats left."""
    total = sum(votes.values())
    result = {p: v * seats // total for p, v in votes.items()}
    waiting = {p: v * seats % total for p, v in votes.items()}  # remainder × total, an integer
    left = seats - sum(result.values())
    while left:
        best = max(waiting.values())
        holders = sorted(p for p, r in waiting.items() if r == best)
        if len(holders) > left:
            return result, (tuple(holders), left)
        for p in holders:
            result[p] += 1
            del waiting[p]
        left -= len(holders)
    return result, None


# -- strategies ---------------------------------------------------------------------

party_numbers = st.integers(min_value=1, max_value=99)
# Small counts make equal remainders (and so ties) common.
small_votes = st.dictionaries(party_numbers, st.integers(0, 30), min_size=1, max_size=6).filter(lambda v: sum(v.values()) > 0)
large_votes = st.dictionaries(party_numbers, st.integers(0, 20_000_000), min_size=1, max_size=70).filter(
    lambda v: sum(v.values()) > 0
)
any_votes = st.one_of(small_votes, large_votes)
seat_counts = st.integers(1, 150)


# -- worked examples ----------------------------------------------------------------


def test_example_a_largest_remainders_take_the_seats_left() -> None:
    allocation = allocate_party_list({1: 47_000, 2: 16_000, 3: 15_800, 4: 12_000, 5: 6_100, 6: 3_100}, seats=5)
    assert allocation.quota == Fraction(20_000)
    assert [p.whole_seats for p in allocation.parties] == [2, 0, 0, 0, 0, 0]
    assert [p.remainder for p in allocation.parties] == [
        Fraction(35, 100),
        Fraction(80, 100),
        Fraction(79, 100),
        Fraction(60, 100),
        Fraction(305, 1000),
        Fraction(155, 1000),
    ]
    assert [p.remainder_seat for p in allocation.parties] == [False, True, True, True, False, False]
    assert allocation.seats_by_party == {1: 2, 2: 1, 3: 1, 4: 1, 5: 0, 6: 0}
    assert allocation.ties == ()
    assert (allocation.seats_allocated, allocation.seats_undecided) == (5, 0)


def test_example_b_a_hundred_seats() -> None:
    allocation = allocate_party_list({1: 250_000, 2: 150_000, 3: 99_500, 4: 500})
    assert allocation.seats == 100 and allocation.quota == 5_000
    assert allocation.seats_by_party == {1: 50, 2: 30, 3: 20, 4: 0}
    assert allocation.party(3).whole_seats == 19 and allocation.party(3).remainder == Fraction(9, 10)
    assert allocation.party(4).remainder == Fraction(1, 10) and not allocation.party(4).remainder_seat


def test_example_c_a_tie_at_the_cut_off_is_reported_not_decided() -> None:
    allocation = allocate_party_list({1: 400, 2: 300, 3: 300}, seats=5)
    assert allocation.seats_by_party == {1: 2, 2: 1, 3: 1}
    assert allocation.ties == (Tie(parties=(2, 3), seats_to_draw=1, remainder=Fraction(1, 2)),)
    assert (allocation.seats_allocated, allocation.seats_undecided) == (4, 1)
    assert [p.tied for p in allocation.parties] == [False, True, True]
    assert not any(p.remainder_seat for p in allocation.parties)


def test_two_parties_with_identical_votes_for_the_last_seat() -> None:
    # seats 100, quota 4: shares 37.5, 37.5, 25 → whole 99; parties 7 and 9 tie for the last seat.
    allocation = allocate_party_list({7: 150, 9: 150, 11: 100})
    assert allocation.ties == (Tie(parties=(7, 9), seats_to_draw=1, remainder=Fraction(1, 2)),)
    assert allocation.seats_by_party == {7: 37, 9: 37, 11: 25}
    assert (allocation.seats_allocated, allocation.seats_undecided) == (99, 1)


def test_example_d_equal_remainders_inside_or_outside_the_cut_are_not_a_tie() -> None:
    allocation = allocate_party_list({1: 150, 2: 150, 3: 130, 4: 130, 5: 140}, seats=7)
    assert allocation.seats_by_party == {1: 2, 2: 2, 3: 1, 4: 1, 5: 1}
    assert allocation.ties == ()
    assert not any(p.tied for p in allocation.parties)
    assert allocation.seats_undecided == 0


def test_example_e_three_parties_tied_for_two_seats() -> None:
    allocation = allocate_party_list({1: 1, 2: 1, 3: 1}, seats=2)
    assert allocation.quota == Fraction(3, 2)
    assert allocation.seats_by_party == {1: 0, 2: 0, 3: 0}
    assert allocation.ties == (Tie(parties=(1, 2, 3), seats_to_draw=2, remainder=Fraction(2, 3)),)
    assert (allocation.seats_allocated, allocation.seats_undecided) == (0, 2)


def test_a_tie_below_a_certain_remainder_seat() -> None:
    # seats 5, quota 20: shares 2.75, 1.25, 0.5, 0.5 → whole 3, two left: remainder 0.75 is
    # certain (party 1), then parties 3 and 4 tie at 0.5 for the last seat.
    allocation = allocate_party_list({1: 55, 2: 25, 3: 10, 4: 10}, seats=5)
    assert allocation.seats_by_party == {1: 3, 2: 1, 3: 0, 4: 0}
    assert allocation.party(1).remainder_seat
    assert allocation.ties == (Tie(parties=(3, 4), seats_to_draw=1, remainder=Fraction(1, 2)),)
    # seats 3, quota 100/3: shares 1.65, 0.75, 0.3, 0.3 → whole 1; the two left go to 0.75
    # and 0.65; the equal 0.3s are both outside the cut, so there is no tie.
    allocation = allocate_party_list({1: 55, 2: 25, 3: 10, 4: 10}, seats=3)
    assert allocation.seats_by_party == {1: 2, 2: 1, 3: 0, 4: 0}
    assert allocation.ties == ()


def test_exact_shares_leave_nothing_over() -> None:
    allocation = allocate_party_list({1: 600, 2: 400, 3: 0}, seats=10)
    assert allocation.seats_by_party == {1: 6, 2: 4, 3: 0}
    assert all(p.remainder == 0 and not p.remainder_seat for p in allocation.parties)
    assert allocation.ties == ()


def test_one_party_takes_everything_and_zero_vote_parties_get_nothing() -> None:
    allocation = allocate_party_list({5: 1, 6: 0, 8: 0})
    assert allocation.quota == Fraction(1, 100)
    assert allocation.seats_by_party == {5: 100, 6: 0, 8: 0}


# -- JSON ---------------------------------------------------------------------------


def test_as_json_is_exact_sorted_and_versioned() -> None:
    document = allocate_party_list({3: 300, 2: 300, 1: 400, 4: 0}, seats=5).as_json()
    assert json.loads(json.dumps(document)) == document
    assert document["format"] == "tally-party-list-allocation-v1"
    assert document["rule"] == "largest-remainder-2566"
    assert (document["seats"], document["total_votes"]) == (5, 1000)
    assert document["quota"] == {"exact": "200/1", "decimal": "200.000000"}
    assert (document["seats_allocated"], document["seats_undecided"]) == (4, 1)
    assert [p["number"] for p in document["parties"]] == [1, 2, 3, 4]
    assert document["parties"][1] == {
        "number": 2,
        "votes": 300,
        "whole_seats": 1,
        "remainder": {"exact": "1/2", "decimal": "0.500000"},
        "remainder_seat": False,
        "seats": 1,
        "tied": True,
    }
    assert document["ties"] == [{"parties": [2, 3], "seats_to_draw": 1, "remainder": {"exact": "1/2", "decimal": "0.500000"}}]


def test_as_json_orders_by_seats_then_votes_then_number() -> None:
    # seats 3, quota 100: shares 0.9, 0.9, 1.2 → whole 1; two left to 0.9 and 0.9.
    document = allocate_party_list({5: 90, 4: 90, 1: 120}, seats=3).as_json()
    assert [(p["number"], p["seats"]) for p in document["parties"]] == [(1, 1), (4, 1), (5, 1)]
    document = allocate_party_list({5: 91, 4: 89, 1: 120}, seats=3).as_json()
    assert [p["number"] for p in document["parties"]] == [1, 5, 4]


def test_decimals_are_rounded_half_to_even_to_six_places() -> None:
    assert allocate_party_list({1: 100_000}, seats=3).as_json()["quota"] == {"exact": "100000/3", "decimal": "33333.333333"}
    assert allocate_party_list({1: 2}, seats=3).as_json()["quota"]["decimal"] == "0.666667"
    assert allocate_party_list({1: 1}, seats=2_000_000).as_json()["quota"]["decimal"] == "0.000000"  # 0.0000005
    assert allocate_party_list({1: 3}, seats=2_000_000).as_json()["quota"]["decimal"] == "0.000002"  # 0.0000015


# -- input validation ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("votes", "seats", "message"),
    [
        ({1: 10}, 0, "seats must be a positive whole number, got 0"),
        ({1: 10}, -3, "seats must be a positive whole number, got -3"),
        ({1: 10}, True, "seats must be a positive whole number, got True"),
        ({1: 10}, 100.0, "seats must be a positive whole number, got 100.0"),
        ([(1, 10)], 100, "votes must be a mapping of party number to votes, got list"),
        ({0: 10}, 100, "party number 0 must be a positive whole number (the number on the party-list ballot)"),
        ({-2: 10}, 100, "party number -2 must be a positive whole number (the number on the party-list ballot)"),
        ({"31": 10}, 100, "party number '31' must be a positive whole number (the number on the party-list ballot)"),
        ({True: 10}, 100, "party number True must be a positive whole number (the number on the party-list ballot)"),
        ({31: -1}, 100, "party 31: votes must be a non-negative whole number, got -1"),
        ({31: 1.5}, 100, "party 31: votes must be a non-negative whole number, got 1.5"),
        ({31: "10"}, 100, "party 31: votes must be a non-negative whole number, got '10'"),
        ({31: False}, 100, "party 31: votes must be a non-negative whole number, got False"),
        ({}, 100, "no party-list votes: the quota (total votes ÷ seats) needs at least one vote"),
        ({31: 0, 29: 0}, 100, "no party-list votes: the quota (total votes ÷ seats) needs at least one vote"),
    ],
)
def test_bad_input_is_refused_with_an_exact_message(votes: object, seats: object, message: str) -> None:
    with pytest.raises(InvalidSeatInput) as caught:
        allocate_party_list(votes, seats)  # type: ignore[arg-type]
    assert str(caught.value) == message
    assert isinstance(caught.value, LedgerError) and isinstance(caught.value, ValueError)


def test_errors_carry_the_path_of_the_bad_item() -> None:
    with pytest.raises(InvalidSeatInput) as caught:
        allocate_party_list({31: -1})
    assert caught.value.path == ("votes", "31")


def test_parse_votes_json_converts_keys() -> None:
    assert parse_votes_json(json.loads('{"31": 14438851, "29": 10962522, "7": 0}')) == {31: 14_438_851, 29: 10_962_522, 7: 0}
    assert parse_votes_json({}) == {}


@pytest.mark.parametrize(
    ("document", "message", "path"),
    [
        (
            "[1, 2]",
            'party-list votes must be a JSON object of party number to votes, like {"31": 14438851}; got an array',
            ("votes",),
        ),
        ('"x"', 'party-list votes must be a JSON object of party number to votes, like {"31": 14438851}; got str', ("votes",)),
        (
            '{"031": 5}',
            "key '031' is not a party number: write it as a positive whole number without signs, spaces or "
            'leading zeros, like "31"',
            ("votes", "031"),
        ),
        (
            '{"0": 5}',
            "key '0' is not a party number: write it as a positive whole number without signs, spaces or "
            'leading zeros, like "31"',
            ("votes", "0"),
        ),
        (
            '{"+31": 5}',
            "key '+31' is not a party number: write it as a positive whole number without signs, spaces or "
            'leading zeros, like "31"',
            ("votes", "+31"),
        ),
        (
            '{" 31": 5}',
            "key ' 31' is not a party number: write it as a positive whole number without signs, spaces or "
            'leading zeros, like "31"',
            ("votes", " 31"),
        ),
        (
            '{"๓๑": 5}',
            "key '๓๑' is not a party number: write it as a positive whole number without signs, spaces or "
            'leading zeros, like "31"',
            ("votes", "๓๑"),
        ),
        (
            '{"Move Forward": 5}',
            "key 'Move Forward' is not a party number: write it as a positive whole number without "
            'signs, spaces or leading zeros, like "31"',
            ("votes", "Move Forward"),
        ),
        ('{"31": -4}', "party 31: votes must be a non-negative whole number, got -4", ("votes", "31")),
        ('{"31": 4.0}', "party 31: votes must be a non-negative whole number, got 4.0", ("votes", "31")),
        ('{"31": "4"}', "party 31: votes must be a non-negative whole number, got '4'", ("votes", "31")),
        ('{"31": true}', "party 31: votes must be a non-negative whole number, got True", ("votes", "31")),
        ('{"31": null}', "party 31: votes must be a non-negative whole number, got None", ("votes", "31")),
        ('{"31": [4]}', "party 31: votes must be a non-negative whole number, got an array", ("votes", "31")),
    ],
)
def test_parse_votes_json_names_the_bad_key_or_value(document: str, message: str, path: tuple[str, ...]) -> None:
    with pytest.raises(InvalidSeatInput) as caught:
        parse_votes_json(json.loads(document))
    assert str(caught.value) == message
    assert caught.value.path == path


# -- properties ---------------------------------------------------------------------


@given(votes=any_votes, seats=seat_counts)
def test_certain_plus_undecided_seats_are_all_the_seats(votes: dict[int, int], seats: int) -> None:
    allocation = allocate_party_list(votes, seats)
    assert allocation.seats_allocated + allocation.seats_undecided == seats
    assert len(allocation.ties) <= 1
    for tie in allocation.ties:
        assert len(tie.parties) > tie.seats_to_draw >= 1
        assert all(allocation.party(n).remainder == tie.remainder > 0 for n in tie.parties)
    for p in allocation.parties:
        assert p.seats == p.whole_seats + (1 if p.remainder_seat else 0)
        assert not (p.tied and p.remainder_seat)
        if p.votes == 0:
            assert p.seats == 0 and not p.tied


@given(votes=any_votes, seats=seat_counts)
def test_whole_seats_never_exceed_votes_over_quota(votes: dict[int, int], seats: int) -> None:
    allocation = allocate_party_list(votes, seats)
    assert allocation.quota == Fraction(sum(votes.values()), seats)
    for p in allocation.parties:
        assert p.whole_seats * allocation.quota <= p.votes < (p.whole_seats + 1) * allocation.quota
        assert p.remainder == p.votes / allocation.quota - p.whole_seats
        assert 0 <= p.remainder < 1
    assert sum(p.remainder for p in allocation.parties) == seats - sum(p.whole_seats for p in allocation.parties)


@given(votes=any_votes, seats=seat_counts)
def test_more_votes_never_means_fewer_seats(votes: dict[int, int], seats: int) -> None:
    allocation = allocate_party_list(votes, seats)
    for a, b in itertools.permutations(allocation.parties, 2):
        if a.votes > b.votes:
            assert a.seats >= b.seats
            assert a.seats + a.tied >= b.seats + b.tied  # also for the best each could get by lot
        elif a.votes == b.votes:
            assert (a.seats, a.tied, a.remainder) == (b.seats, b.tied, b.remainder)


@given(votes=any_votes, seats=seat_counts, factor=st.integers(2, 1_000))
def test_scaling_all_votes_changes_only_the_quota(votes: dict[int, int], seats: int, factor: int) -> None:
    allocation = allocate_party_list(votes, seats)
    scaled = allocate_party_list({n: v * factor for n, v in votes.items()}, seats)
    assert scaled.quota == allocation.quota * factor
    assert scaled.ties == allocation.ties
    assert [(p.number, p.whole_seats, p.remainder, p.remainder_seat, p.seats, p.tied) for p in scaled.parties] == [
        (p.number, p.whole_seats, p.remainder, p.remainder_seat, p.seats, p.tied) for p in allocation.parties
    ]


@given(votes=any_votes, seats=seat_counts, data=st.data())
def test_the_order_of_the_input_does_not_matter(votes: dict[int, int], seats: int, data: st.DataObject) -> None:
    shuffled = dict(data.draw(st.permutations(list(votes.items()))))
    assert allocate_party_list(shuffled, seats) == allocate_party_list(votes, seats)
    assert allocate_party_list(shuffled, seats).as_json() == allocate_party_list(votes, seats).as_json()


@settings(max_examples=200)
@given(votes=small_votes, seats=st.integers(1, 12))
def test_certain_seats_are_those_every_drawing_of_lots_gives(votes: dict[int, int], seats: int) -> None:
    allocation = allocate_party_list(votes, seats)
    certain, varying, undecided = reference_by_lots(votes, seats)
    assert allocation.seats_by_party == certain
    assert {n for t in allocation.ties for n in t.parties} == varying
    assert allocation.seats_undecided == undecided


@given(votes=any_votes, seats=seat_counts)
def test_agrees_with_the_seat_by_seat_reference(votes: dict[int, int], seats: int) -> None:
    allocation = allocate_party_list(votes, seats)
    expected, tie = reference_seat_by_seat(votes, seats)
    assert allocation.seats_by_party == expected
    assert [(t.parties, t.seats_to_draw) for t in allocation.ties] == ([tie] if tie else [])


@given(votes=any_votes, seats=seat_counts)
def test_as_json_agrees_with_the_allocation(votes: dict[int, int], seats: int) -> None:
    allocation = allocate_party_list(votes, seats)
    document = allocation.as_json()
    assert json.loads(json.dumps(document)) == document
    assert sum(p["seats"] for p in document["parties"]) == document["seats_allocated"]
    assert document["seats_allocated"] + document["seats_undecided"] == seats
    keys = [(-p["seats"], -p["votes"], p["number"]) for p in document["parties"]]
    assert keys == sorted(keys)
    for p in document["parties"]:
        assert Fraction(p["remainder"]["exact"]) == allocation.party(p["number"]).remainder
        assert abs(Fraction(p["remainder"]["decimal"]) - Fraction(p["remainder"]["exact"])) <= Fraction(1, 2_000_000)


# -- with the real 2023 party numbers -----------------------------------------------


def synthetic_2566_votes() -> dict[int, int]:
    """About 37.7 million votes over the 67 real party-list numbers, falling off with rank
    (a deterministic stand-in, not the real result)."""
    numbers = sorted(REAL_PARTIES)
    order = sorted(numbers, key=lambda n: (n * 37) % 101)  # a fixed shuffle
    return {n: 15_000_000 // (rank + 1) ** 2 + (n * 7_919) % 1_000 for rank, n in enumerate(order)}


def test_real_party_numbers_with_synthetic_votes() -> None:
    votes = synthetic_2566_votes()
    assert len(votes) == 67 and all(isinstance(n, int) and n >= 1 for n in votes)
    allocation = allocate_party_list(votes, ELECTION.party_list_seats)
    assert allocation.seats == 100
    assert allocation.seats_allocated + allocation.seats_undecided == 100
    assert {p.number for p in allocation.parties} == set(REAL_PARTIES)
    expected, tie = reference_seat_by_seat(votes, 100)
    assert allocation.seats_by_party == expected and tie is None
    document = allocation.as_json()
    assert document["parties"][0]["seats"] == max(expected.values())
    # round trip through the JSON the CLI reads
    assert parse_votes_json(json.loads(json.dumps({str(n): v for n, v in votes.items()}))) == votes


def test_a_projected_house_over_the_real_constituencies() -> None:
    numbers = sorted(REAL_PARTIES)
    constituencies = list(ELECTION.constituencies)
    leaders: dict[str, int | None] = {cid: (None if i % 50 == 0 else numbers[i % 5]) for i, cid in enumerate(constituencies)}
    allocation = allocate_party_list(synthetic_2566_votes(), ELECTION.party_list_seats)
    house = project_house(leaders, allocation, REAL_PARTIES)
    assert (house.seats, house.constituency_seats, house.party_list_seats, house.majority) == (500, 400, 100, 251)
    assert len(house.undecided_constituencies) == 8
    assert sum(house.seats_by_party.values()) + house.undecided_seats == 500
    document = house.as_json()
    assert json.loads(json.dumps(document, ensure_ascii=False)) == document
    assert {p["number"] for p in document["parties"]} == set(REAL_PARTIES)
    assert all(p["name"] == REAL_PARTIES[p["number"]].name for p in document["parties"])
