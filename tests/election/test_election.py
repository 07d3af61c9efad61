from __future__ import annotations

import json
from pathlib import Path

import pytest

from ledger.election import load_election
from ledger.errors import InvalidEncoding, NotFound

ELECTION = load_election("th2566")


def test_the_real_2023_structure_is_bundled() -> None:
    assert len(ELECTION.provinces) == 77
    assert len(ELECTION.constituencies) == 400
    assert len(ELECTION.parties) == 70
    assert len(ELECTION.parties_by_number) == 67  # three registered parties had no ballot number
    assert sum(len(c.candidates) for c in ELECTION.constituencies.values()) == 4781
    assert ELECTION.registered_voters == 52_195_920
    assert ELECTION.party_list_seats == 100 and ELECTION.constituency_seats == 400


def test_polling_units_follow_the_even_split_rule() -> None:
    assert ELECTION.unit_count == 95_099
    units = list(ELECTION.polling_units())
    assert len(units) == len({u.id for u in units}) == 95_099
    assert sum(u.registered_voters for u in units) == ELECTION.registered_voters
    assert max(u.registered_voters for u in units) <= 550
    bkk1 = ELECTION.constituency("BKK_1")
    assert bkk1.unit_count == -(-137_554 // 550) == 251
    assert ELECTION.polling_unit("BKK_1-0001").registered_voters == 549
    assert ELECTION.polling_unit("BKK_1-0251").constituency_id == "BKK_1"


@pytest.mark.parametrize(
    ("unit_id", "reason"),
    [
        ("BKK_1-0252", "units 0001 to 0251"),
        ("BKK_1-1", "4 digits"),
        ("nope", "expected"),
        ("ZZZ_9-0001", "no constituency"),
    ],
)
def test_unknown_units_say_why(unit_id: str, reason: str) -> None:
    with pytest.raises(NotFound, match=reason):
        ELECTION.polling_unit(unit_id)


def test_another_election_is_a_data_file(tmp_path: Path) -> None:
    definition = {
        "format": "tally-election-v1",
        "id": "xx2026",
        "name": "Example",
        "polling_day": "2026-03-01",
        "polls_close": "2026-03-01T17:00:00+07:00",
        "source_schema": "normalized",
        "house": {"constituency_seats": 2, "party_list_seats": 1},
        "polling_units": {"rule": "even-split-v1", "max_registered_voters_per_unit": 500},
        "provinces": [{"id": "P1", "name": "หนึ่ง", "name_en": "One", "registered_voters": 1500}],
        "constituencies": [
            {"id": "P1_1", "province_id": "P1", "number": 1, "registered_voters": 1000},
            {"id": "P1_2", "province_id": "P1", "number": 2, "registered_voters": 500},
        ],
        "parties": [{"id": "a", "number": 1, "name": "A", "abbreviation": "A", "color": "#000"}],
        "candidates": [{"constituency_id": "P1_1", "number": 1, "name": "x", "party_id": "a"}],
    }
    (tmp_path / "election.json").write_text(json.dumps(definition), encoding="utf-8")
    election = load_election(str(tmp_path))
    assert election.id == "xx2026" and election.unit_count == 3
    definition["candidates"][0]["party_id"] = "zzz"
    other = tmp_path / "bad"
    other.mkdir()
    (other / "election.json").write_text(json.dumps(definition), encoding="utf-8")
    with pytest.raises(InvalidEncoding, match="unknown party id zzz"):
        load_election(str(other))


def test_unknown_definition_lists_the_bundled_ones() -> None:
    with pytest.raises(NotFound, match="th2566"):
        load_election("no-such-election")
