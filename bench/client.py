"""The raw HTTP/1.1 keep-alive client of every load generator (asyncio, loopback).

Requests are built once as bytes (``http_request``) and sent on a ``Connection``, which
reads the status and a ``Content-Length`` body; chunked answers are refused, since the API
answers its benchmarked routes with a length. ``Tally`` counts what one process saw.
"""

from __future__ import annotations

import asyncio
import socket
import time
from array import array
from dataclasses import dataclass, field

__all__ = ["Connection", "Tally", "free_port", "http_request", "parse_head", "timed"]


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def http_request(
    method: str, path: str, *, token: str | None = None, body: bytes | None = None, content_type: str = "application/json"
) -> bytes:
    """One HTTP/1.1 request to 127.0.0.1, with a bearer token and a body if given."""
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1"]
    if token:
        lines.append(f"Authorization: Bearer {token}")
    if body is not None:
        lines += [f"Content-Type: {content_type}", f"Content-Length: {len(body)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + (body or b"")


def parse_head(head: bytes) -> tuple[int, int, bool]:
    """(status, content length, the server closes) of a response head ending in CRLF CRLF."""
    status = int(head[9:12])
    length, close = 0, False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"connection" and value.strip().lower() == b"close":
            close = True
        elif name == b"transfer-encoding":
            raise RuntimeError("chunked answers are not read by this client")
    return status, length, close


class Connection:
    """One keep-alive connection; reconnects once when the server closed it."""

    def __init__(self, host: str, port: int):
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def open(self) -> None:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None

    async def exchange(self, request: bytes) -> tuple[int, bytes]:
        """Send ``request``, read the answer: (status, body)."""
        for attempt in (1, 2):
            await self.open()
            assert self.reader is not None and self.writer is not None
            try:
                self.writer.write(request)
                status, length, close = parse_head(await self.reader.readuntil(b"\r\n\r\n"))
                body = await self.reader.readexactly(length) if length else b""
                if close:
                    self.close()
                return status, body
            except (ConnectionError, asyncio.IncompleteReadError):
                self.close()
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")


@dataclass
class Tally:
    """What one client process counts in a stage."""

    statuses: dict[int, int] = field(default_factory=dict)
    latencies: array = field(default_factory=lambda: array("d"))  # type: ignore[type-arg]
    errors: list[str] = field(default_factory=list)
    counters: dict[str, float] = field(default_factory=dict)

    def count(self, status: int, latency: float, body: bytes = b"", what: str = "") -> None:
        self.statuses[status] = self.statuses.get(status, 0) + 1
        self.latencies.append(latency)
        if status >= 400 and len(self.errors) < 5:
            self.errors.append(f"{what}: HTTP {status} {body[:400].decode('utf-8', 'replace')}")

    def add(self, name: str, value: float = 1) -> None:
        self.counters[name] = self.counters.get(name, 0) + value


async def timed(connection: Connection, request: bytes, tally: Tally, what: str) -> tuple[int, bytes]:
    """``connection.exchange``, its status and latency counted in ``tally``."""
    started = time.perf_counter()
    status, body = await connection.exchange(request)
    tally.count(status, time.perf_counter() - started, body, what)
    return status, body
