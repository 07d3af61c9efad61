"""What the benchmarks measure of processes and disks: /proc (RSS, VmHWM, CPU), disk use,
percentiles, and a launcher that reports a command's peak memory.

    .venv/bin/python -m bench.metrics COMMAND ...   runs COMMAND, then prints its usage line

The launcher exists because a child's ``ru_maxrss`` also counts the memory of the process
it was forked (or vforked) from until its ``exec``: a command started from the benchmark's
driver, whose own peak (the scrypt of the keystores, about 256 MiB, during people setup)
is large, would be reported with the driver's peak. So the command is started from this
small process instead. ``ru_maxrss`` is one process's peak; a command with worker
processes (``verify all --workers``) is also sampled every 0.2 s as a tree (the sum of
every descendant's RSS). The last line of its output is ``MEASURE_PREFIX`` and a JSON
object: returncode, maxrss_kib, tree_peak_rss_kib, cpu_seconds.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

__all__ = [
    "MEASURE_PREFIX",
    "MIB",
    "disk_usage",
    "latency_summary",
    "measured_command",
    "parse_usage",
    "percentile",
    "proc_cpu_seconds",
    "proc_status",
    "tree_rss_kib",
    "worker_pids",
]

MIB = 1 << 20
MEASURE_PREFIX = "\nbench-national-child-usage: "


def proc_status(pid: int, field_name: str) -> int | None:
    """A ``kB`` field of /proc/<pid>/status in bytes (VmHWM, VmRSS), or None."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field_name + ":"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def _stat_fields(pid: int | str) -> list[str]:
    """The fields of /proc/<pid>/stat after the command name (state, ppid, ...)."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def _processes() -> list[int]:
    return [int(name) for name in os.listdir("/proc") if name.isdigit()]


def worker_pids(pid: int) -> list[int]:
    """The Python worker processes ``pid`` started with ``multiprocessing`` (the server's
    prepare workers; not its anvil)."""
    workers = []
    for child in _processes():
        try:
            if int(_stat_fields(child)[1]) == pid and b"multiprocessing" in Path(f"/proc/{child}/cmdline").read_bytes():
                workers.append(child)
        except (OSError, ValueError, IndexError):
            pass
    return workers


def tree_rss_kib(root: int) -> int:
    """The sum of VmRSS (KiB) of ``root`` and every process descended from it."""
    children: dict[int, list[int]] = {}
    for pid in _processes():
        try:
            children.setdefault(int(_stat_fields(pid)[1]), []).append(pid)
        except (OSError, ValueError, IndexError):
            pass
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        todo += children.get(pid, [])
        total += (proc_status(pid, "VmRSS") or 0) // 1024
    return total


def proc_cpu_seconds(pid: int) -> float:
    """User and system CPU seconds of one process so far (0 once it is gone)."""
    try:
        fields = _stat_fields(pid)
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def disk_usage(path: Path) -> tuple[int, int]:
    """(bytes on disk, files) under ``path``."""
    used = files = 0
    stack = [path]
    while stack:
        try:
            with os.scandir(stack.pop()) as entries:
                for entry in entries:
                    if entry.is_dir(follow_symlinks=False):
                        stack.append(Path(entry.path))
                    else:
                        used += entry.stat(follow_symlinks=False).st_blocks * 512
                        files += 1
        except FileNotFoundError:
            continue
    return used, files


def percentile(values: list[float], share: float) -> float:
    """The ``share`` percentile of sorted ``values`` (nearest rank below; 0 when empty)."""
    return values[min(len(values) - 1, int(len(values) * share))] if values else 0.0


def latency_summary(latencies: list[float]) -> dict[str, float]:
    """p50, p99 and max in milliseconds of latencies in seconds (none when empty)."""
    ordered = sorted(latencies)
    if not ordered:
        return {}
    return {"p50_ms": 1000 * percentile(ordered, 0.5), "p99_ms": 1000 * percentile(ordered, 0.99), "max_ms": 1000 * ordered[-1]}


def measured_command(command: list[str]) -> list[str]:
    """``command`` started from the launcher of this module (see the module docstring)."""
    return [sys.executable, "-m", "bench.metrics", *command]


def parse_usage(output: str) -> dict[str, Any]:
    """The launcher's usage line at the end of ``output``, or {} when there is none."""
    return json.loads(output.rsplit(MEASURE_PREFIX, 1)[1]) if MEASURE_PREFIX in output else {}


def _launch(command: list[str]) -> int:
    process = subprocess.Popen(command)
    peak = [0]

    def sample() -> None:
        while process.poll() is None:
            peak[0] = max(peak[0], tree_rss_kib(process.pid))
            time.sleep(0.2)

    threading.Thread(target=sample, daemon=True).start()
    _, status, usage = os.wait4(process.pid, 0)
    returncode = os.waitstatus_to_exitcode(status)
    figures = {
        "returncode": returncode,
        "maxrss_kib": usage.ru_maxrss,
        "tree_peak_rss_kib": peak[0],
        "cpu_seconds": usage.ru_utime + usage.ru_stime,
    }
    print(MEASURE_PREFIX + json.dumps(figures), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(_launch(sys.argv[1:]))
