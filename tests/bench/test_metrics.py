"""What the benchmarks read of /proc and of disks, and the peak-RSS launcher."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench.metrics import (
    MEASURE_PREFIX,
    disk_usage,
    latency_summary,
    measured_command,
    parse_usage,
    percentile,
    proc_cpu_seconds,
    proc_status,
    tree_rss_kib,
)

linux_only = pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads /proc")


def test_percentile_is_the_nearest_rank_below() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 0.5) == 51.0
    assert percentile(values, 0.99) == 100.0
    assert percentile([3.0], 0.99) == 3.0
    assert percentile([], 0.5) == 0.0


def test_latency_summary_in_milliseconds() -> None:
    assert latency_summary([0.003, 0.001, 0.002]) == {"p50_ms": 2.0, "p99_ms": 3.0, "max_ms": 3.0}
    assert latency_summary([]) == {}


@linux_only
def test_proc_fields_of_this_process() -> None:
    rss = proc_status(os.getpid(), "VmRSS")
    peak = proc_status(os.getpid(), "VmHWM")
    assert rss is not None and peak is not None and 0 < rss <= peak
    assert proc_status(os.getpid(), "NoSuchField") is None
    assert proc_cpu_seconds(os.getpid()) > 0
    assert tree_rss_kib(os.getpid()) >= rss // 1024


def test_gone_processes_read_as_nothing() -> None:
    gone = 2**22 + 1  # above the kernel's largest pid
    assert proc_status(gone, "VmRSS") is None
    assert proc_cpu_seconds(gone) == 0.0


def test_disk_usage_counts_files_in_subdirectories(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "one").write_bytes(b"x" * 5000)
    (tmp_path / "two").write_bytes(b"y")
    used, files = disk_usage(tmp_path)
    assert files == 2
    assert used >= 5001
    assert disk_usage(tmp_path / "missing") == (0, 0)


def test_parse_usage_takes_the_last_usage_line() -> None:
    output = "verifying\n" + MEASURE_PREFIX + json.dumps({"returncode": 3}) + "\n"
    assert parse_usage(output) == {"returncode": 3}
    assert parse_usage("no usage here") == {}


@linux_only
def test_the_launcher_reports_exit_code_and_peak_memory() -> None:
    command = measured_command([sys.executable, "-c", "import sys; data = bytearray(64 << 20); sys.exit(3)"])
    completed = subprocess.run(command, capture_output=True, text=True, check=False, timeout=60)
    assert completed.returncode == 0
    usage = parse_usage(completed.stdout)
    assert usage["returncode"] == 3
    assert usage["maxrss_kib"] >= 64 << 10
    assert usage["cpu_seconds"] >= 0
