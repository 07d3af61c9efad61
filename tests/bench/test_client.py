"""The benchmarks' raw HTTP/1.1 client, against a tiny asyncio server on loopback."""

from __future__ import annotations

import asyncio

import pytest

from bench.client import Connection, Tally, http_request, parse_head, timed


def test_http_request_carries_token_type_and_length() -> None:
    request = http_request("POST", "/v1/photos", token="abc", body=b"\xff\xd8", content_type="image/jpeg")
    assert request == (
        b"POST /v1/photos HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer abc\r\n"
        b"Content-Type: image/jpeg\r\nContent-Length: 2\r\n\r\n\xff\xd8"
    )
    assert http_request("GET", "/constant") == b"GET /constant HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"


def test_parse_head_reads_status_length_and_close() -> None:
    assert parse_head(b"HTTP/1.1 201 Created\r\ncontent-length: 12\r\nConnection: close\r\n\r\n") == (201, 12, True)
    assert parse_head(b"HTTP/1.1 204 No Content\r\nserver: x\r\n\r\n") == (204, 0, False)


def test_parse_head_refuses_chunked_answers() -> None:
    with pytest.raises(RuntimeError, match="chunked"):
        parse_head(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")


async def _serve(answers: list[bytes]) -> tuple[asyncio.Server, int, list[int]]:
    """A server that answers each request on a connection with the next of ``answers``
    (closing after an answer that says so); counts connections."""
    connections: list[int] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(1)
        while answers:
            head = await reader.readuntil(b"\r\n\r\n")
            _, length, _ = parse_head(b"HTTP/1.1 000 x\r\n" + head.split(b"\r\n", 1)[1])
            await reader.readexactly(length)
            answer = answers.pop(0)
            writer.write(answer)
            await writer.drain()
            if b"Connection: close" in answer:
                break
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1], connections


def test_connection_keeps_alive_and_reconnects_after_close() -> None:
    async def scenario() -> tuple[list[tuple[int, bytes]], int, Tally]:
        answers = [
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
            b"HTTP/1.1 201 Created\r\nContent-Length: 3\r\nConnection: close\r\n\r\nnew",
            b"HTTP/1.1 404 Not Found\r\nContent-Length: 4\r\n\r\nlost",
        ]
        server, port, connections = await _serve(answers)
        async with server:
            connection = Connection("127.0.0.1", port)
            tally = Tally()
            seen = [
                await timed(connection, http_request("GET", "/a"), tally, "a"),
                await timed(connection, http_request("POST", "/b", body=b"{}"), tally, "b"),
                await timed(connection, http_request("GET", "/c"), tally, "c"),
            ]
            connection.close()
        return seen, len(connections), tally

    seen, connections, tally = asyncio.run(scenario())
    assert seen == [(200, b"ok"), (201, b"new"), (404, b"lost")]
    assert connections == 2  # the second answer closed the first connection
    assert tally.statuses == {200: 1, 201: 1, 404: 1}
    assert len(tally.latencies) == 3
    assert tally.errors == ["c: HTTP 404 lost"]


def test_tally_keeps_at_most_five_errors_and_adds_counters() -> None:
    tally = Tally()
    for number in range(7):
        tally.count(500, 0.001, b"boom", f"request {number}")
    tally.add("bytes", 10)
    tally.add("bytes", 5)
    assert tally.statuses == {500: 7}
    assert len(tally.errors) == 5
    assert tally.counters == {"bytes": 15}
