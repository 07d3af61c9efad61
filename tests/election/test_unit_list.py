"""Issue 11, hole 11: `tally units import FILE` loads the real unit list (CSV or JSON).

Before, only the demo had unit coordinates (simulated), so ``photo_far`` never fired on
real data. A list with any bad line is refused whole, every problem with its line number;
importing the same list twice changes nothing; units that have reports are screened again.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ledger.content.local import LocalBlockStore
from ledger.election import Election
from ledger.election.unit_list import InvalidUnitList, UnitListRow, parse_unit_list
from ledger.intake.service import Ledger
from ledger.results.aggregates import Aggregates
from ledger.review.service import ReviewService
from ledger.store import Database, UnitLocation
from tests.support.intake import RECEIPT_KEY, Clock
from tests.support.photo_reports import jpeg, report

GOOD_CSV = """unit,name,latitude,longitude
BKK_1-0001,โรงเรียนวัดพระเชตุพน,13.7465,100.4927
BKK_1-0002,,13.7500,100.5000
"""
BY_NUMBER_CSV = """constituency,number,latitude,longitude
BKK_1,3,13.75,100.50
CMI_1,12,18.79,98.985
"""


def test_a_csv_list_is_read(election: Election) -> None:
    rows = parse_unit_list(GOOD_CSV, election=election)
    assert rows == [
        UnitListRow(2, "BKK_1-0001", 13.7465, 100.4927, "โรงเรียนวัดพระเชตุพน"),
        UnitListRow(3, "BKK_1-0002", 13.75, 100.5, None),
    ]
    assert [(r.unit, r.latitude) for r in parse_unit_list(BY_NUMBER_CSV, election=election)] == [
        ("BKK_1-0003", 13.75),
        ("CMI_1-0012", 18.79),
    ]


def test_a_json_list_is_read(election: Election) -> None:
    text = json.dumps(
        [
            {"unit": "BKK_1-0001", "latitude": 13.7465, "longitude": 100.4927, "name": "วัดโพธิ์"},
            {"constituency": "BKK_1", "number": 2, "latitude": "13.75", "longitude": "100.5"},
        ],
        indent=2,
    )
    rows = parse_unit_list(text, election=election)
    assert [(r.line, r.unit, r.latitude, r.name) for r in rows] == [
        (2, "BKK_1-0001", 13.7465, "วัดโพธิ์"),
        (8, "BKK_1-0002", 13.75, None),
    ]


BAD_CSV = """unit,name,latitude,longitude
BKK_1-0001,ok,13.7465,100.4927
BKK_1-9999,no such unit,13.7,100.5
XYZ_9-0001,no such constituency,13.7,100.5
BKK_1-0003,swapped,100.5,13.7
BKK_1-0004,thai digits,๑๓.๗,100.5
BKK_1-0005,missing,,100.5
BKK_1-0006,zero,0,0
BKK_1-0001,again,13.7,100.5
BKK_1-0007,bidi\u202e,13.7,100.5
BKK_1-0008,nan,nan,100.5
"""


def test_every_bad_line_is_named_and_nothing_is_taken(election: Election) -> None:
    with pytest.raises(InvalidUnitList) as caught:
        parse_unit_list(BAD_CSV, election=election, source="units.csv")
    problems = dict(caught.value.problems)
    assert sorted(problems) == list(range(3, 12))
    assert "unknown unit" in problems[3] and "units 0001 to" in problems[3]
    assert "no constituency 'XYZ_9'" in problems[4]
    assert "latitude 100.5 is out of range (-90 to 90)" in problems[5]
    assert "latitude '๑๓.๗' is not a decimal number of degrees in ASCII digits" in problems[6]
    assert problems[7] == "latitude is missing"
    assert "both 0" in problems[8]
    assert problems[9] == "unit BKK_1-0001 is listed again (first on line 2)"
    assert "U+202E" in problems[10]
    assert "'nan' is not a decimal number" in problems[11]
    assert str(caught.value).startswith("units.csv was not imported (9 problems): line 3: unknown unit")


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("unit,lat,lon\nBKK_1-0001,13.7,100.5\n", 1, "unknown columns 'lat', 'lon'"),
        ("unit,latitude,longitude\nBKK_1-0001,13.7\n", 2, "2 fields, but the header names 3 columns"),
        ("", 1, "the file is empty"),
        ("unit,latitude,longitude\n", 0, "it lists no units"),
        (
            '[\n  {"unit": "BKK_1-0001", "latitude": 13.7, "longitude": 100.5},\n  {"unit": "BKK_1-0002", "lat": 1}\n]',
            3,
            "unknown keys 'lat'",
        ),
        ('[\n  {"unit": "BKK_1-0001", "latitude": 13.7, "longitude": 100.5},\n  {"unit": \n]', 4, "not readable as JSON"),
        ('[\n  {"unit": "BKK_1-0001", "latitude": 1e3, "longitude": 100.5}\n]', 2, "is not a decimal number"),
    ],
)
def test_the_shape_of_the_file_is_checked(election: Election, text: str, line: int, message: str) -> None:
    with pytest.raises(InvalidUnitList) as caught:
        parse_unit_list(text, election=election)
    assert any(found_line == line and message in found for found_line, found in caught.value.problems), caught.value.problems


@pytest.fixture
def review(database: Database, tmp_path: Path, election: Election) -> ReviewService:
    ledger = Ledger(
        database=database,
        content=LocalBlockStore(tmp_path / "blocks"),
        election=election,
        receipt_key=RECEIPT_KEY,
        batch_max_records=50,
        batch_max_age_seconds=60,
        clock=Clock(),
    )
    return ReviewService(
        ledger=ledger,
        aggregates=Aggregates(database=database, election=election),
        verifier_key=bytes.fromhex("07" * 32),
        open_reporting=True,
    )


def test_importing_is_idempotent_and_screens_reported_units_again(review: ReviewService, election: Election) -> None:
    report(review, "org-a", "BKK_1-0001", jpeg(1), jpeg(2))  # photos taken in Bangkok (13.7565, 100.5018)
    assert review.unit_review("BKK_1-0001")["flags"] == []  # no unit location known: nothing to compare
    chiang_mai = "unit,name,latitude,longitude\nBKK_1-0001,far away,18.79,98.985\nBKK_1-0002,,13.75,100.50\n"
    first = review.import_unit_locations(parse_unit_list(chiang_mai, election=election))
    assert first == {"added": 2, "changed": 0, "unchanged": 0, "rescreened": 1}
    codes = {flag["code"] for flag in review.unit_review("BKK_1-0001")["flags"]}
    assert codes == {"photo_far"}
    assert review.import_unit_locations(parse_unit_list(chiang_mai, election=election)) == {
        "added": 0,
        "changed": 0,
        "unchanged": 2,
        "rescreened": 0,
    }
    fixed = chiang_mai.replace("18.79,98.985", "13.7565,100.5018")
    assert review.import_unit_locations(parse_unit_list(fixed, election=election))["changed"] == 1
    assert review.unit_review("BKK_1-0001")["flags"] == []
    with review.database.session() as session:
        row = session.get(UnitLocation, "BKK_1-0001")
        assert row is not None and (row.latitude, row.longitude, row.name) == (13.7565, 100.5018, "far away")


def test_the_command_imports_or_refuses_the_whole_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from ledger.cli.main import app

    monkeypatch.setenv("TALLY_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("TALLY_KEYSTORE_PASSWORD", "test password")
    good = tmp_path / "units.csv"
    good.write_text(GOOD_CSV, encoding="utf-8")
    bad = tmp_path / "bad.csv"
    bad.write_text(BAD_CSV, encoding="utf-8")
    runner = CliRunner()
    refused = runner.invoke(app, ["units", "import", str(bad)])
    assert refused.exit_code == 2
    assert f"{bad}:5: latitude 100.5 is out of range" in refused.output
    once = runner.invoke(app, ["units", "import", str(good)])
    assert once.exit_code == 0, once.output
    assert "2 units in" in once.output and "2 added, 0 changed, 0 unchanged" in once.output
    again = runner.invoke(app, ["units", "import", str(good)])
    assert "0 added, 0 changed, 2 unchanged" in again.output
    database = Database(f"sqlite:///{tmp_path / 'data' / 'tally.db'}")
    with database.session() as session:
        assert session.query(UnitLocation).count() == 2  # the refused file added nothing
