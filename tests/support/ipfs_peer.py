"""Start and stop the js-ipfs test peer (``scripts/ipfs_peer.mjs``) from Python.

The peer runs offline on 127.0.0.1 with its repo in a directory we choose, so it never
touches ``~/.jsipfs``. Used by the ``ipfs_peer`` fixture (tests/conftest_ipfs.py) and by
``scripts/gen_unixfs_vectors.py``.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.paths import REPO

__all__ = ["REPO", "IpfsPeer", "ipfs_peer_unavailable", "start_ipfs_peer"]

PEER_SCRIPT = REPO / "scripts" / "ipfs_peer.mjs"
READY_PREFIX = "TALLY_IPFS_API "


def ipfs_peer_unavailable() -> str | None:
    """Why the peer cannot run here, or ``None``. Only a missing ``node_modules/ipfs`` is a reason to skip."""
    if not (REPO / "node_modules" / "ipfs" / "package.json").exists():
        return "node_modules/ipfs is missing: run `npm ci` to install the js-ipfs test peer"
    return None


@dataclass
class IpfsPeer:
    """A running js-ipfs daemon: ``api_url`` is its RPC root (``http://127.0.0.1:PORT``)."""

    api_url: str
    repo: Path
    process: subprocess.Popen[bytes]
    log_path: Path
    _stopped: bool = field(default=False, repr=False)

    def log_tail(self, limit: int = 4000) -> str:
        try:
            return self.log_path.read_text("utf-8", "replace")[-limit:]
        except OSError:
            return ""

    def stop(self, timeout: float = 15.0) -> None:
        """Close its stdin (the script then stops the daemon), escalating to SIGTERM, then SIGKILL."""
        if self._stopped:
            return
        self._stopped = True
        _stop_process(self.process, timeout)


def _stop_process(process: subprocess.Popen[bytes], timeout: float) -> None:
    if process.poll() is None and process.stdin is not None:
        with contextlib.suppress(OSError):
            process.stdin.close()
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=timeout)
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=timeout)
    for stream in (process.stdin, process.stdout):
        if stream is not None and not stream.closed:
            stream.close()


def start_ipfs_peer(repo: Path, *, startup_timeout: float = 90.0) -> IpfsPeer:
    """Start the peer with its repo in ``repo`` (created if missing); wait at most ``startup_timeout`` s."""
    reason = ipfs_peer_unavailable()
    if reason is not None:
        raise RuntimeError(reason)
    node = shutil.which("node")
    if node is None:
        raise RuntimeError("`node` (Node.js 20+) is not on PATH; it is needed to run the js-ipfs test peer")
    repo = Path(repo).resolve()
    repo.mkdir(parents=True, exist_ok=True)
    log_path = repo.parent / f"{repo.name}.log"
    environment = dict(os.environ)
    environment["IPFS_PATH"] = str(repo)
    environment.pop("DEBUG", None)
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [node, str(PEER_SCRIPT), str(repo)],
            cwd=REPO,
            env=environment,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log,
        )
    assert process.stdout is not None
    deadline = time.monotonic() + startup_timeout
    buffer = b""
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                _stop_process(process, 5.0)
                raise RuntimeError(f"the js-ipfs peer did not start within {startup_timeout} s; its log:\n{_tail(log_path)}")
            if not selector.select(timeout=min(remaining, 0.5)):
                if process.poll() is not None:
                    break
                continue
            piece = os.read(process.stdout.fileno(), 4096)
            if not piece:
                break
            buffer += piece
            for line in buffer.decode("utf-8", "replace").splitlines():
                if line.startswith(READY_PREFIX):
                    return IpfsPeer(line[len(READY_PREFIX) :].strip(), repo, process, log_path)
    code = process.poll()
    _stop_process(process, 5.0)
    raise RuntimeError(f"the js-ipfs peer exited before it was ready (exit code {code}); its log:\n{_tail(log_path)}")


def _tail(path: Path, limit: int = 4000) -> str:
    try:
        return path.read_text("utf-8", "replace")[-limit:]
    except OSError:
        return "(no log)"
