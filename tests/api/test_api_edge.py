"""The HTTP edge under hostile input (issue 11): Unicode digits in headers and tokens, errors
inside the fast paths, bodies without a Content-Length, forwarded headers, SSE floods, slow
clients, file modes and the docs page. Each test names the hole it closes."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from api.main import create_app
from api.state import AppState
from tests.support.api import VOLUNTEER, ApiWorld, TestClient, make_settings, served_as_tally_serve, serving, sign_in
from tests.support.factories import BOARD, FORM, VOLUNTEER_KEY, signed_tally, stand_in_photos

# Digits that str.isdigit() and int() take but the strict rule refuses. A header carries
# latin-1, so only the superscripts can arrive there as themselves.
HEADER_DIGITS = ["³", "¹²", "³¹", "²"]


def _latin1(text: str) -> bytes:
    return text.encode("latin-1")


# -- hole 1: Unicode digits at the edge, and the fast paths answer every error ---------------


@pytest.fixture
def live(tmp_path: Path, database_url: str) -> Iterator[tuple[Any, AppState, dict[str, str]]]:
    """A real uvicorn server (header bytes arrive as sent: the test client re-encodes them
    as UTF-8), an httpx client to it, and a newsroom key."""
    import httpx

    state = AppState.open(make_settings(tmp_path / "data", database_url, api_refresh_aggregates=True))
    stand_in_photos(state.ledger_app.ledger)
    state.access.register_volunteer(address=VOLUNTEER)
    _, newsroom = state.access.create_principal(role="newsroom", name="newsroom")
    try:
        with serving(create_app(app_state=state)) as url, httpx.Client(base_url=url, timeout=10) as http:
            yield http, state, {"Authorization": f"Bearer {newsroom}"}
    finally:
        state.close()


@pytest.mark.parametrize("last_event_id", HEADER_DIGITS + ["-1", "+3", "03", "1 2", "x", "99999999999", "2147483648"])
def test_a_last_event_id_that_is_not_a_canonical_number_is_refused_naming_the_header(
    live: tuple[Any, AppState, dict[str, str]], last_event_id: str
) -> None:
    """'³'.isdigit() is true and int('³') raises: such a Last-Event-ID answered 500."""
    http, _, newsroom = live
    answer = http.get("/v1/feed/stream?timeout=0.2", headers={**newsroom, "Last-Event-ID": _latin1(last_event_id)})
    assert answer.status_code == 422, answer.text
    assert answer.json()["errors"][0]["path"] == ["header", "Last-Event-ID"]
    assert "cursor" in answer.json()["errors"][0]["message"]


def test_a_canonical_last_event_id_still_resumes(world: ApiWorld) -> None:
    world.submit(unit_id="BKK_1-0001", submission_id="edge-0001")
    world.submit(unit_id="BKK_1-0002", submission_id="edge-0002")
    page = world.client.get("/v1/feed?limit=1000", headers=world.headers("newsroom")).json()
    first = next(item["cursor"] for item in page["items"] if item["polling_unit"] == "BKK_1-0001")  # after the authority log's
    resumed = world.client.get("/v1/feed/stream?timeout=0.2", headers={**world.headers("newsroom"), "Last-Event-ID": str(first)})
    assert resumed.status_code == 200 and "BKK_1-0002" in resumed.text and "BKK_1-0001" not in resumed.text


def _session_like(address: str, expires: str) -> bytes:
    return _latin1(f"Bearer tvs1.{address}.{expires}.c-NgFQmVCAapqXFx0KWfnJVhYSBW54OGoTviGSe6Y3A")


@pytest.mark.parametrize(
    "token",
    [
        _session_like(VOLUNTEER, "³¹"),
        _session_like(VOLUNTEER, "¹²³"),
        _session_like("0xé", "1796251699"),
        _session_like(VOLUNTEER + "\xff", "1796251699"),
        _latin1("Bearer tvs1.\xa0.²."),
    ],
)
@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/v1/tallies"),  # the submissions fast path
        ("GET", "/v1/aggregates/unofficial/national"),  # the aggregates fast path
        ("GET", "/v1/election"),  # the routes
    ],
)
def test_a_session_token_with_unicode_digits_or_letters_is_a_401_on_every_path(
    live: tuple[Any, AppState, dict[str, str]], token: bytes, method: str, path: str
) -> None:
    """Such tokens answered 500, or the connection was dropped with no answer at all."""
    http = live[0]
    answer = http.request(method, path, headers={"Authorization": token}, json={})  # a dropped connection raises here
    assert answer.status_code == 401, answer.text
    assert answer.headers["www-authenticate"] == "Bearer"
    assert answer.json()["error"] == "unauthenticated"


def test_a_fault_inside_the_aggregates_fast_path_is_a_logged_500_not_an_escaped_exception(
    tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    state = AppState.open(make_settings(tmp_path / "data", database_url, api_refresh_aggregates=True))

    def broken(*_args: Any) -> Any:
        raise KeyError("๓๑")  # what a poisoned entry did to the aggregates

    monkeypatch.setattr(state.aggregates.view("unofficial"), "rendered", broken)
    try:
        with TestClient(create_app(app_state=state)) as client, caplog.at_level(logging.ERROR, logger="tally.api"):
            answer = client.get("/v1/aggregates/unofficial/national")
        assert answer.status_code == 500 and answer.headers["content-type"] == "application/json"
        assert answer.json() == {
            "error": "internal_error",
            "errors": [{"path": [], "message": "the server failed; it has been logged"}],
        }
        assert any("๓๑" in record.getMessage() or record.exc_info for record in caplog.records)
    finally:
        state.close()


def test_a_fault_inside_the_submissions_fast_path_is_a_logged_500(
    tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    state = AppState.open(make_settings(tmp_path / "data", database_url, access_cache_seconds=30.0))
    state.access.register_volunteer(address=VOLUNTEER)
    state.ledger_app.content.put_block(BOARD, b"board")
    state.ledger_app.content.put_block(FORM, b"form")

    async def broken(*_args: Any, **_kwargs: Any) -> Any:
        raise RuntimeError("the writer is gone")

    try:
        with TestClient(create_app(app_state=state)) as client:
            token = sign_in(client, VOLUNTEER_KEY)
            client.get("/v1/auth/whoami", headers={"Authorization": f"Bearer {token}"})  # cached: the fast path answers
            monkeypatch.setattr(state.ledger_app, "submit_tally", broken)
            with caplog.at_level(logging.ERROR, logger="tally.api"):
                answer = client.post(
                    "/v1/tallies", json=signed_tally(state.ledger_app.election), headers={"Authorization": f"Bearer {token}"}
                )
        assert answer.status_code == 500 and answer.json()["error"] == "internal_error"
        assert any(record.exc_info for record in caplog.records)
    finally:
        state.close()


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/v1/tallies"),
        ("GET", "/v1/aggregates/unofficial/national"),
        ("GET", "/v1/election"),
    ],
)
def test_whatever_a_token_parser_raises_the_answer_is_a_401(
    tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch, method: str, path: str
) -> None:
    """The edge does not rely on every parser of a token being strict: a ValueError from one
    (as int('³¹') and 'é'.encode('ascii') raised) is a malformed credential."""
    state = AppState.open(make_settings(tmp_path / "data", database_url, api_refresh_aggregates=True))

    def tripped(_token: str | None, *, client_ip: str | None) -> Any:
        raise UnicodeEncodeError("ascii", "é", 0, 1, "ordinal not in range(128)")

    monkeypatch.setattr(state.access, "peek", tripped)  # the fast paths' check, and the routes' first
    monkeypatch.setattr(state.access, "authenticate", tripped)  # the routes' check when peek cannot tell
    try:
        with TestClient(create_app(app_state=state)) as client:
            answer = client.request(method, path, headers={"Authorization": "Bearer tvs1.0xe.1.mac"}, json={})
        assert answer.status_code == 401, answer.text
        assert "malformed credentials" in answer.json()["errors"][0]["message"]
    finally:
        state.close()


# -- hole 6: body limits while the body streams ------------------------------------------


def _post_chunked(
    url: str, path: str, *, total: int, headers: dict[str, str] | None = None, piece_size: int = 64 * 1024, within: float = 60.0
) -> tuple[int, int, bytes]:
    """POST ``total`` bytes as a chunked body (no Content-Length) over a raw socket, as fast
    as the server takes them, until it answers. Returns (status, bytes of body sent, answer)."""
    import select
    import socket
    import time
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    head = [
        f"POST {path} HTTP/1.1",
        f"Host: {parts.hostname}",
        "Transfer-Encoding: chunked",
        "Content-Type: application/json",
        *(f"{name}: {value}" for name, value in (headers or {}).items()),
    ]
    connection = socket.create_connection((parts.hostname, parts.port))
    connection.sendall(("\r\n".join(head) + "\r\n\r\n").encode("latin-1"))
    connection.setblocking(False)
    chunk = b"%x\r\n" % piece_size + b"7" * piece_size + b"\r\n"
    pending, sent, answer, closed = bytearray(), 0, b"", False
    deadline = time.monotonic() + within
    try:
        while time.monotonic() < deadline and b"\r\n\r\n" not in answer:
            sending = sent < total and not closed
            readable, writable, _ = select.select([connection], [connection] if sending else [], [], 0.5)
            if readable:
                try:
                    data = connection.recv(65536)
                except ConnectionResetError:
                    break
                if not data:
                    break
                answer += data
            elif writable:
                if not pending:
                    pending += chunk
                try:
                    count = connection.send(pending)
                except (BrokenPipeError, ConnectionResetError):
                    closed = True
                    continue
                del pending[:count]
                sent += count
            elif not sending and sent >= total and not closed:
                connection.sendall(b"0\r\n\r\n")
                closed = True
        time.sleep(0.05)
        try:
            answer += connection.recv(65536)
        except (BlockingIOError, ConnectionResetError):
            pass
    finally:
        connection.close()
    status = int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/1.1 ") else 0
    return status, sent, answer


def test_a_huge_chunked_body_to_an_anonymous_route_is_refused_while_it_streams(tmp_path: Path, database_url: str) -> None:
    """200 MiB chunked to POST /v1/auth/challenge was read whole before the 422 (173 → 707 MiB)."""
    state = AppState.open(make_settings(tmp_path / "data", database_url))
    try:
        with serving(create_app(app_state=state)) as url:
            status, sent, answer = _post_chunked(url, "/v1/auth/challenge", total=200 * 1024 * 1024)
        assert status == 413, answer[:300]
        assert b'"error":"body_too_large"' in answer and b"262144" in answer
        # The server stopped reading: what it took is the limit plus the sockets' buffers.
        assert sent < 24 * 1024 * 1024, f"{sent} bytes were taken before the answer"
    finally:
        state.close()


@pytest.mark.parametrize(
    "path",
    [
        "/v1/tallies",
        "/v1/auth/challenge",
        "/v1/auth/session",
        "/v1/decisions",
        "/v1/admin/principals",
        "/v1/members",
        "/v1/custodial/tallies",
    ],
)
def test_every_json_route_refuses_a_chunked_body_over_the_json_limit(world: ApiWorld, path: str) -> None:
    role = {"/v1/tallies": "volunteer", "/v1/decisions": "war_room", "/v1/custodial/tallies": "coordinator"}.get(path, "admin")
    world.client.get("/v1/auth/whoami", headers=world.headers(role))

    def pieces() -> Any:
        for _ in range(5):
            yield b" " * (64 * 1024)  # whitespace: valid JSON so far, and nothing but its size is wrong

    answer = world.client.post(path, content=pieces(), headers={**world.headers(role), "Content-Type": "application/json"})
    assert answer.status_code == 413, answer.text
    assert answer.json()["error"] == "body_too_large" and answer.headers["connection"] == "close"


def test_a_chunked_photo_over_its_own_limit_is_refused(tmp_path: Path, database_url: str) -> None:
    state = AppState.open(make_settings(tmp_path / "data", database_url, max_photo_bytes=2 * 1024 * 1024))
    state.access.register_volunteer(address=VOLUNTEER)
    try:
        with TestClient(create_app(app_state=state)) as client:
            token = sign_in(client, VOLUNTEER_KEY)

            def pieces() -> Any:
                yield b"\xff\xd8\xff\xe0" + b"\0" * (256 * 1024)
                for _ in range(12):
                    yield b"\0" * (256 * 1024)

            answer = client.post(
                "/v1/photos", content=pieces(), headers={"Authorization": f"Bearer {token}", "Content-Type": "image/jpeg"}
            )
        assert answer.status_code == 413 and answer.json()["error"] == "photo_too_large"
        # A JSON-sized limit does not apply to photos: 1 MiB chunked is read (and refused as no image).
        assert state.settings.max_json_bytes < 1024 * 1024
    finally:
        state.close()


# -- hole 8: slow bodies -----------------------------------------------------------------


def _slow_body(url: str, path: str, *, declared: int, sent: bytes, wait: float) -> tuple[bytes, float]:
    """Send headers and the start of a body, then nothing: (what the server answered, after how long)."""
    import socket
    import time
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    connection = socket.create_connection((parts.hostname, parts.port))
    connection.sendall(
        f"POST {path} HTTP/1.1\r\nHost: {parts.hostname}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {declared}\r\n\r\n".encode()
        + sent
    )
    connection.settimeout(wait)
    began = time.monotonic()
    answer = b""
    try:
        while True:
            data = connection.recv(65536)
            if not data:
                break  # the server closed the connection
            answer += data
    except TimeoutError:
        pass
    finally:
        connection.close()
    return answer, time.monotonic() - began


def test_a_body_that_stalls_is_answered_408_and_its_connection_closed(tmp_path: Path, database_url: str) -> None:
    state = AppState.open(make_settings(tmp_path / "data", database_url, body_idle_timeout_seconds=0.3))
    try:
        with serving(create_app(app_state=state)) as url:
            answer, took = _slow_body(url, "/v1/auth/challenge", declared=100, sent=b'{"address": ', wait=5.0)
        assert answer.startswith(b"HTTP/1.1 408 "), answer
        assert b'"error":"body_timeout"' in answer and b"connection: close" in answer.lower()
        assert took < 3.0  # answered and closed, not held until the client gives up
    finally:
        state.close()


def test_a_body_that_trickles_is_cut_off_by_the_whole_body_deadline(tmp_path: Path, database_url: str) -> None:
    import socket
    import time
    from urllib.parse import urlsplit

    state = AppState.open(
        make_settings(tmp_path / "data", database_url, body_idle_timeout_seconds=1.0, body_read_timeout_seconds=0.8)
    )
    try:
        with serving(create_app(app_state=state)) as url:
            parts = urlsplit(url)
            connection = socket.create_connection((parts.hostname, parts.port))
            connection.sendall(b"POST /v1/auth/challenge HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n")
            answer = b""
            began = time.monotonic()
            connection.settimeout(0.2)
            while time.monotonic() - began < 5.0 and b"\r\n\r\n" not in answer:
                try:
                    connection.send(b" ")  # a byte every 0.2 s: never idle for long, never done
                    answer += connection.recv(65536)
                except TimeoutError:
                    continue
                except OSError:
                    break
            connection.close()
        assert answer.startswith(b"HTTP/1.1 408 "), answer
        assert time.monotonic() - began < 3.0
    finally:
        state.close()


def test_the_body_timeouts_leave_an_open_event_stream_alone(tmp_path: Path, database_url: str) -> None:
    import httpx

    state = AppState.open(
        make_settings(
            tmp_path / "data",
            database_url,
            body_idle_timeout_seconds=0.2,
            body_read_timeout_seconds=0.3,
            feed_heartbeat_seconds=0.2,
            feed_poll_seconds=0.05,
        )
    )
    _, newsroom = state.access.create_principal(role="newsroom", name="newsroom")
    try:
        with serving(create_app(app_state=state)) as url:
            answer = httpx.get(f"{url}/v1/feed/stream?timeout=1.0", headers={"Authorization": f"Bearer {newsroom}"}, timeout=10)
        assert answer.status_code == 200 and answer.text.count(": heartbeat") >= 3  # it ran its whole second
    finally:
        state.close()


# -- hole 8: forwarded headers and keep-alive, as `tally serve` configures uvicorn -----------


def _anonymous_answers(url: str, count: int) -> list[int]:
    import httpx

    with httpx.Client(base_url=url, timeout=10) as http:
        return [
            http.get("/v1/auth/whoami", headers={"X-Forwarded-For": f"203.0.113.{n % 250}"}).status_code for n in range(count)
        ]


def test_a_forged_x_forwarded_for_does_not_dodge_the_anonymous_rate_limit(
    tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = make_settings(
        tmp_path / "data", database_url, rate_limit_enabled=True, rate_limit_anonymous=5.0, rate_limit_burst_seconds=2.0
    )
    app, options = served_as_tally_serve(settings, monkeypatch)
    assert options["proxy_headers"] is False
    with serving(app, **options) as url:
        answers = _anonymous_answers(url, 60)
    assert answers.count(429) >= 40, answers  # one client, one bucket of 10, whatever the header says


def test_a_configured_proxy_is_believed(tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import httpx

    settings = make_settings(
        tmp_path / "data",
        database_url,
        rate_limit_enabled=True,
        rate_limit_anonymous=5.0,
        rate_limit_burst_seconds=2.0,
        trusted_proxies=["127.0.0.1"],
    )
    app, options = served_as_tally_serve(settings, monkeypatch)
    with serving(app, **options) as url:
        answers = _anonymous_answers(url, 60)  # 60 clients behind the proxy, one request each
        with httpx.Client(base_url=url, timeout=10) as http:
            proto = http.get("/v1/auth/whoami", headers={"X-Forwarded-For": "198.51.100.7"}).status_code
    assert answers.count(429) == 0 and proto == 200


def test_an_idle_keep_alive_connection_is_closed_after_its_timeout(
    tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import socket
    import time
    from urllib.parse import urlsplit

    settings = make_settings(tmp_path / "data", database_url, keep_alive_timeout_seconds=0.3)
    app, options = served_as_tally_serve(settings, monkeypatch)
    with serving(app, **options) as url:
        parts = urlsplit(url)
        connection = socket.create_connection((parts.hostname, parts.port))
        connection.sendall(b"GET /v1/auth/whoami HTTP/1.1\r\nHost: x\r\n\r\n")
        connection.settimeout(5.0)
        began = time.monotonic()
        answer = b""
        while data := connection.recv(65536):  # b"" once the server closes the idle connection
            answer += data
        connection.close()
    assert answer.startswith(b"HTTP/1.1 200 ") and time.monotonic() - began < 2.0


# -- hole 8: open event streams per key and per address ------------------------------------


def test_open_streams_are_capped_per_key_and_per_address(tmp_path: Path, database_url: str) -> None:
    """300 streams were accepted from one newsroom key."""
    import time
    from contextlib import ExitStack

    import httpx

    state = AppState.open(
        make_settings(
            tmp_path / "data", database_url, feed_max_streams_per_key=2, feed_max_streams_per_ip=3, feed_poll_seconds=0.05
        )
    )
    _, newsroom = state.access.create_principal(role="newsroom", name="newsroom")
    _, other = state.access.create_principal(role="newsroom", name="another newsroom")
    try:
        with serving(create_app(app_state=state)) as url, httpx.Client(base_url=url, timeout=10) as http, ExitStack() as held:

            def open_stream(token: str) -> httpx.Response:
                return held.enter_context(http.stream("GET", "/v1/feed/stream", headers={"Authorization": f"Bearer {token}"}))

            first, second = open_stream(newsroom), open_stream(newsroom)
            assert first.status_code == second.status_code == 200
            refused = open_stream(newsroom)
            refused.read()
            assert refused.status_code == 429 and int(refused.headers["retry-after"]) >= 1
            assert "2 open streams" in refused.json()["errors"][0]["message"]
            assert open_stream(other).status_code == 200  # another key: its own count, but the same address
            by_address = open_stream(other)
            by_address.read()
            assert by_address.status_code == 429 and "address" in by_address.json()["errors"][0]["message"]
            first.close()  # a stream ends: its slot comes back
            deadline = time.monotonic() + 5
            while state.feed.streams > 2 and time.monotonic() < deadline:
                time.sleep(0.05)
            assert open_stream(newsroom).status_code == 200
    finally:
        state.close()


# -- hole 12: the docs page from this host, private files, corrects in the schema -----------


def test_the_docs_page_loads_nothing_from_another_host(client: TestClient) -> None:
    import re

    page = client.get("/docs")
    assert page.status_code == 200 and "SwaggerUIBundle" in page.text
    assert not re.findall(r"(?:https?:)?//[^\s'\"]+", page.text), "the page names another host"
    assets = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert sorted(assets) == [
        "/docs/static/favicon-32x32.png",
        "/docs/static/swagger-ui-bundle.js",
        "/docs/static/swagger-ui.css",
    ]
    for asset in assets:
        answer = client.get(asset)
        assert answer.status_code == 200 and len(answer.content) > 500, asset
    assert client.get("/docs/static/swagger-ui-bundle.js").headers["content-type"].startswith("text/javascript")
    assert '"validatorUrl": null' in page.text  # Swagger UI would otherwise send the document to its online validator
    assert client.get("/redoc").status_code == 404  # ReDoc loads from a CDN: not offered
    assert client.get("/docs/static/package.json").status_code == 404  # only the three assets


def test_the_swagger_ui_served_is_the_version_pinned_in_package_json() -> None:
    import json

    from api.main import SWAGGER_UI_DIST

    root = SWAGGER_UI_DIST.parent.parent
    pinned = json.loads((root / "package.json").read_text())["dependencies"]["swagger-ui-dist"]
    locked = json.loads((root / "package-lock.json").read_text())["packages"]["node_modules/swagger-ui-dist"]["version"]
    installed = json.loads((SWAGGER_UI_DIST / "package.json").read_text())["version"]
    assert pinned == locked == installed


def test_the_data_dir_and_the_sqlite_file_are_private(tmp_path: Path) -> None:
    import stat

    data = tmp_path / "fresh"
    settings = make_settings(data, f"sqlite:///{data / 'tally.db'}")
    state = AppState.open(settings)
    try:
        state.access.register_volunteer(address=VOLUNTEER, name="a volunteer's name")  # a write: the WAL exists
        modes = {
            path.name: stat.S_IMODE(path.stat().st_mode)
            for path in (data, data / "tally.db", data / "tally.db-wal", data / "tally.db-shm")
            if path.exists()
        }
    finally:
        state.close()
    assert modes["fresh"] == 0o700 and modes["tally.db"] == 0o600
    assert all(mode == 0o600 for name, mode in modes.items() if name.startswith("tally.db-"))


def test_an_existing_world_readable_database_is_tightened(tmp_path: Path) -> None:
    import stat

    from ledger.store import Database

    path = tmp_path / "old" / "tally.db"
    path.parent.mkdir()
    path.touch(mode=0o644)
    path.chmod(0o644)
    Database(f"sqlite:///{path}").dispose()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_the_published_tally_schema_takes_a_corrected_tally(world: ApiWorld) -> None:
    import jsonschema_rs  # schemathesis's validator

    from api.schemas import TallyCreate
    from tests.support.factories import tally_json
    from wallets.tally_client import sign_tally

    client, election = world.client, world.state.ledger_app.election
    reports = [world.state.ledger.submit_tally(signed_tally(election, submission_id=f"edge-report-{n}")) for n in range(2)]
    corrected = sign_tally(
        {
            **tally_json(election, submission_id="edge-corrected"),
            "corrects": [report.receipt["record_cid"] for report in reports],
        },
        VOLUNTEER_KEY,
        election,
    )
    document = client.get("/openapi.json").json()
    schema = document["components"]["schemas"]["TallyCreate"]
    assert "corrects" in schema["properties"] and "reports of this unit" in schema["properties"]["corrects"]["description"]
    validator = jsonschema_rs.Draft202012Validator({**schema, "components": document["components"]})
    validator.validate(corrected)
    TallyCreate.model_validate(corrected)
    assert not validator.is_valid({**corrected, "corrects": None})  # never null: the ledger refuses it
    assert not validator.is_valid({**corrected, "corrects": []})
    accepted = client.post("/v1/tallies", json=corrected, headers=world.headers("volunteer"))
    assert accepted.status_code == 201, accepted.text  # and the ledger takes what the schema describes
