"""Servers the benchmarks start: ``tally serve`` and a bare FastAPI app to compare against."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

from bench import ROOT

__all__ = ["BARE_APP", "UVICORN_FLAGS", "start", "start_bare", "stop", "wait_until_up"]

BARE_APP = """
from fastapi import FastAPI, Request, Response
app = FastAPI()
BODY = b'{"ok":true}'
@app.get("/constant")
async def constant_get() -> Response:
    return Response(BODY, media_type="application/json")
@app.post("/constant")
async def constant_post(request: Request) -> Response:
    await request.body()
    return Response(BODY, media_type="application/json")
"""
"""The floor under the API's figures: FastAPI answering a constant, under the same uvicorn settings."""

UVICORN_FLAGS = ["--loop", "uvloop", "--http", "httptools", "--no-access-log", "--log-level", "warning"]


def start(command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """``command`` in the source tree, its output to ``log``."""
    handle = log.open("wb")
    return subprocess.Popen(command, env=env, stdout=handle, stderr=subprocess.STDOUT, cwd=ROOT)


def start_bare(scratch: Path, port: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    """The bare FastAPI app (``BARE_APP``, written into ``scratch``) under uvicorn on ``port``."""
    (scratch / "bare.py").write_text(BARE_APP)
    command = [sys.executable, "-m", "uvicorn", "bare:app", "--app-dir", str(scratch), "--port", str(port), *UVICORN_FLAGS]
    return start(command, env, scratch / "bare.log")


def wait_until_up(port: int, path: str, process: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    """Until ``GET path`` answers below 500; exits if the server dies or stays silent."""
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"server on port {port} exited with {process.returncode}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}{path}", timeout=1.0).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"server on port {port} did not answer within {timeout:.0f} s")


def stop(process: subprocess.Popen[bytes], timeout: float = 30) -> None:
    """SIGINT (the lifespan stops the loops), then SIGKILL after ``timeout`` seconds."""
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
