"""A real polling-unit list (the Election Commission's unit numbers, names, coordinates),
read from CSV or JSON for ``tally units import``. Pure: text in, checked rows out.

Columns (CSV header, or keys of each JSON object; a JSON file is an array of objects)::

    unit        the unit's id in this ledger, "BKK_1-0001"          } one of the two
    constituency, number   the constituency id and the ECT unit      } ways to name
                number within it ("BKK_1", 1)                        } the unit
    latitude    decimal degrees, -90 to 90 (WGS 84), ASCII digits: "13.7565"
    longitude   decimal degrees, -180 to 180: "100.5018"
    name        optional: the unit's name or place ("โรงเรียนวัดพระเชตุพน")

Every problem of the file is reported at once, each with its line number (the header is
line 1 of a CSV file; a JSON object's line is where it starts), and a file with any
problem is refused whole: unknown unit ids, numbers that are not ASCII decimals,
coordinates out of range or at 0, 0 (a missing value written as zero), a unit listed
twice, unknown columns, names with control or invisible characters.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from dataclasses import dataclass

from ledger.election import Election
from ledger.errors import LedgerError, NotFound
from ledger.plaintext import plain_text_problem

__all__ = ["InvalidUnitList", "UnitListRow", "parse_unit_list"]

COLUMNS = ("unit", "constituency", "number", "latitude", "longitude", "name")
_DECIMAL = re.compile(r"-?[0-9]{1,3}(\.[0-9]{1,15})?")
_NUMBER = re.compile(r"[0-9]{1,4}")
MAX_NAME = 200


class InvalidUnitList(LedgerError, ValueError):
    """A unit list with problems; ``problems`` holds ``(line, message)``, line 0 for the file."""

    def __init__(self, problems: list[tuple[int, str]], *, source: str = "the unit list"):
        self.problems = problems
        lines = "; ".join(f"line {line}: {message}" if line else message for line, message in problems[:20])
        more = f"; and {len(problems) - 20} more" if len(problems) > 20 else ""
        super().__init__(f"{source} was not imported ({len(problems)} problems): {lines}{more}")


@dataclass(frozen=True)
class UnitListRow:
    line: int
    unit: str
    latitude: float
    longitude: float
    name: str | None


def parse_unit_list(text: str, *, election: Election, source: str = "the unit list") -> list[UnitListRow]:
    """The checked rows of a unit list (CSV, or JSON when it starts with ``[``), or
    :class:`InvalidUnitList` with every problem and its line."""
    stripped = text.lstrip("\ufeff \t\r\n")
    records = _json_records(stripped, text) if stripped.startswith("[") else _csv_records(text.lstrip("\ufeff"))
    problems: list[tuple[int, str]] = []
    rows: list[UnitListRow] = []
    first_line: dict[str, int] = {}
    for line, record in records:
        if isinstance(record, str):  # a problem of the file's shape at that line
            problems.append((line, record))
            continue
        row = _row(line, record, election, problems)
        if row is None:
            continue
        if row.unit in first_line:
            problems.append((line, f"unit {row.unit} is listed again (first on line {first_line[row.unit]})"))
            continue
        first_line[row.unit] = line
        rows.append(row)
    if not rows and not problems:
        problems.append((0, "it lists no units"))
    if problems:
        raise InvalidUnitList(problems, source=source)
    return rows


def _csv_records(text: str) -> list[tuple[int, dict[str, str] | str]]:
    reader = csv.reader(io.StringIO(text))
    try:
        header = next(reader)
    except (StopIteration, csv.Error):
        return [
            (
                1,
                "the file is empty; the first line names the columns: unit (or constituency and number), "
                "latitude, longitude, name",
            )
        ]
    columns = [name.strip().lower() for name in header]
    records: list[tuple[int, dict[str, str] | str]] = []
    unknown = [name for name in columns if name not in COLUMNS]
    if unknown:
        records.append((1, f"unknown columns {', '.join(map(repr, unknown))}; the columns are {', '.join(COLUMNS)}"))
    try:
        for fields in reader:
            line = reader.line_num
            if not any(field.strip() for field in fields):
                continue
            if len(fields) != len(columns):
                records.append((line, f"{len(fields)} fields, but the header names {len(columns)} columns"))
                continue
            records.append((line, dict(zip(columns, (field.strip() for field in fields), strict=True))))
    except csv.Error as exc:
        records.append((reader.line_num, f"not readable as CSV: {exc}"))
    return records


def _json_records(stripped: str, text: str) -> list[tuple[int, dict[str, str] | str]]:
    """The objects of a top-level JSON array, each with the line it starts on."""
    decoder = json.JSONDecoder()
    records: list[tuple[int, dict[str, str] | str]] = []
    position = text.index("[") + 1
    expect_item = True
    while True:
        while position < len(text) and text[position] in " \t\r\n":
            position += 1
        line = text.count("\n", 0, position) + 1
        if position >= len(text):
            records.append((line, "the JSON array is not closed"))
            return records
        if text[position] == "]":
            return records
        if text[position] == "," and not expect_item:
            position += 1
            expect_item = True
            continue
        try:
            item, position = decoder.raw_decode(text, position)
        except json.JSONDecodeError as exc:
            records.append((exc.lineno, f"not readable as JSON: {exc.msg}"))
            return records
        expect_item = False
        if not isinstance(item, dict):
            records.append((line, f"each unit is a JSON object, got {type(item).__name__}"))
            continue
        unknown = [name for name in item if name not in COLUMNS]
        if unknown:
            records.append((line, f"unknown keys {', '.join(map(repr, unknown))}; the keys are {', '.join(COLUMNS)}"))
            continue
        records.append(
            (
                line,
                {
                    name: ("" if value is None else value if isinstance(value, str) else json.dumps(value))
                    for name, value in item.items()
                },
            )
        )


def _row(line: int, record: dict[str, str], election: Election, problems: list[tuple[int, str]]) -> UnitListRow | None:
    before = len(problems)
    unit_id = _unit_id(line, record, election, problems)
    latitude = _coordinate(line, record, "latitude", 90, problems)
    longitude = _coordinate(line, record, "longitude", 180, problems)
    if latitude == 0 and longitude == 0:
        problems.append((line, "latitude and longitude are both 0 (a missing place written as zero?)"))
    name = record.get("name") or None
    if name is not None:
        problem = plain_text_problem(name)
        if problem is not None:
            problems.append((line, f"name {problem}"))
        elif len(name) > MAX_NAME:
            problems.append((line, f"name has {len(name)} characters, more than {MAX_NAME}"))
    if len(problems) > before or unit_id is None or latitude is None or longitude is None:
        return None
    return UnitListRow(line, unit_id, latitude, longitude, name)


def _unit_id(line: int, record: dict[str, str], election: Election, problems: list[tuple[int, str]]) -> str | None:
    unit = record.get("unit", "")
    constituency, number = record.get("constituency", ""), record.get("number", "")
    if unit and (constituency or number):
        problems.append((line, "name the unit by 'unit' or by 'constituency' and 'number', not both"))
        return None
    if not unit:
        if not constituency or not number:
            problems.append((line, "no unit: give 'unit' (like 'BKK_1-0001') or 'constituency' and 'number'"))
            return None
        if not _NUMBER.fullmatch(number):
            problems.append((line, f"number {number!r} is not a unit number of ASCII digits, like 12"))
            return None
        unit = f"{constituency}-{int(number):04d}"
    try:
        return election.polling_unit(unit).id
    except NotFound as exc:
        problems.append((line, f"unknown unit: {exc}"))
        return None


def _coordinate(line: int, record: dict[str, str], name: str, limit: int, problems: list[tuple[int, str]]) -> float | None:
    text = record.get(name, "")
    if not text:
        problems.append((line, f"{name} is missing"))
        return None
    if not _DECIMAL.fullmatch(text):
        problems.append((line, f"{name} {text!r} is not a decimal number of degrees in ASCII digits, like 13.7565"))
        return None
    value = float(text)
    if not math.isfinite(value) or abs(value) > limit:
        problems.append((line, f"{name} {text} is out of range (-{limit} to {limit})"))
        return None
    return value
