"""JSON columns are read with orjson where it reads exactly what the standard library reads."""

from __future__ import annotations

import json

import pytest

from ledger.store.session import _json_loads

CASES = [
    {"a": 1, "b": [1.5, -2, None, True], "ไทย": "ก"},
    [123456789012345678901234567890, -9223372036854775809, 18446744073709551616],
    [9223372036854775807, -9223372036854775808, 0.1, 1e-7, 12345678901234567.0],
    [float("nan"), float("inf"), float("-inf")],
    "\u0e01" * 3,
    [],
]


@pytest.mark.parametrize("value", CASES)
def test_every_stored_value_reads_back_as_the_standard_library_reads_it(value: object) -> None:
    text = json.dumps(value)
    expected = json.loads(text)
    got = _json_loads(text)
    assert json.dumps(got) == json.dumps(expected)
    assert _json_loads(text.encode()) == got or value == CASES[3]  # NaN is never equal to itself
