"""``python -m bench``: a name picks the benchmark, options alone run the national replay."""

from __future__ import annotations

import pytest

import bench.__main__ as entry


def test_an_unknown_name_lists_the_benchmarks(capsys: pytest.CaptureFixture[str]) -> None:
    assert entry.main(["nightly"]) == 2
    error = capsys.readouterr().err
    assert "no benchmark named 'nightly'" in error
    for name in entry.BENCHMARKS:
        assert name in error


@pytest.mark.parametrize(
    ("argv", "module", "passed"),
    [(["--units", "9"], "national", ["--units", "9"]), (["cid", "--no-write"], "cid", ["--no-write"]), ([], "national", [])],
)
def test_the_name_picks_the_module(monkeypatch: pytest.MonkeyPatch, argv: list[str], module: str, passed: list[str]) -> None:
    called: list[tuple[str, list[str]]] = []

    class Module:
        def __init__(self, name: str):
            self.name = name

        def main(self, arguments: list[str]) -> int:
            called.append((self.name, arguments))
            return 0

    monkeypatch.setattr(entry.importlib, "import_module", lambda name: Module(name))
    assert entry.main(argv) == 0
    assert called == [(f"bench.{module}", passed)]


def test_every_benchmark_has_a_main() -> None:
    import importlib

    for name in entry.BENCHMARKS:
        assert callable(importlib.import_module(f"bench.{name}").main)
