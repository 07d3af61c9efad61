"""bench/results.json is merged, never clobbered: keys sorted, other figures kept."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.results import RESULTS, merge_results


def test_the_results_file_is_the_checked_in_one() -> None:
    assert Path(__file__).resolve().parents[2] / "bench" / "results.json" == RESULTS
    assert isinstance(json.loads(RESULTS.read_text("utf-8")), dict)


def test_merge_keeps_other_keys_and_sorts(tmp_path: Path) -> None:
    results = tmp_path / "results.json"
    results.write_text(json.dumps({"zeta": 1, "cid_mbps_1mib": 10.0}))
    merge_results({"cid_mbps_1mib": 12.5, "alpha": 2}, results=results)
    text = results.read_text("utf-8")
    assert text == '{\n  "alpha": 2,\n  "cid_mbps_1mib": 12.5,\n  "zeta": 1\n}\n'
    assert not list(tmp_path.glob(".*.tmp"))


def test_merge_replaces_a_prefix_as_a_set(tmp_path: Path) -> None:
    results = tmp_path / "results.json"
    results.write_text(json.dumps({"national_units": 95099, "national_verify_ok": 1, "api_bench_cpus": 2}))
    merge_results({"national_units": 251}, results=results, replace_prefix="national_")
    assert json.loads(results.read_text("utf-8")) == {"api_bench_cpus": 2, "national_units": 251}


def test_merge_creates_a_missing_file(tmp_path: Path) -> None:
    results = tmp_path / "new" / "results.json"
    merge_results({"a": 1}, results=results)
    assert json.loads(results.read_text("utf-8")) == {"a": 1}


def test_merge_refuses_a_file_that_is_not_an_object(tmp_path: Path) -> None:
    results = tmp_path / "results.json"
    results.write_text("[1, 2]")
    with pytest.raises(SystemExit, match="does not hold a JSON object"):
        merge_results({"a": 1}, results=results)
    assert results.read_text() == "[1, 2]"
