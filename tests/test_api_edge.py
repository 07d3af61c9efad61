"""The HTTP edge under hostile input (issue 11): Unicode digits in headers and tokens, errors
inside the fast paths, bodies without a Content-Length, forwarded headers, SSE floods, slow
clients, file modes and the docs page. Each test names the hole it closes."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from api.main import create_app
from api.state import AppState
from tests.factories import BOARD, FORM, VOLUNTEER_KEY, signed_tally
from tests.test_api_support import VOLUNTEER, ApiWorld, TestClient, make_settings, sign_in

pytest_plugins = ["tests.test_api_support"]  # its fixtures: api_settings, api_state, client, world

# Digits that str.isdigit() and int() take but the strict rule refuses. A header carries
# latin-1, so only the superscripts can arrive there as themselves.
HEADER_DIGITS = ["³", "¹²", "³¹", "²"]


def _latin1(text: str) -> bytes:
    return text.encode("latin-1")


# -- hole 1: Unicode digits at the edge, and the fast paths answer every error ---------------


@pytest.mark.parametrize("last_event_id", HEADER_DIGITS + ["-1", "+3", "03", "1 2", "x", "99999999999"])
def test_a_last_event_id_that_is_not_a_canonical_number_is_refused_naming_the_header(world: ApiWorld,
                                                                                   last_event_id: str) -> None:
    headers = {**world.headers("newsroom"), "Last-Event-ID": _latin1(last_event_id)}  # type: ignore[dict-item]
    answer = world.client.get("/v1/feed/stream?timeout=0.2", headers=headers)
    assert answer.status_code == 422, answer.text
    assert answer.json()["errors"][0]["path"] == ["header", "Last-Event-ID"]
    assert "cursor" in answer.json()["errors"][0]["message"]


def test_a_canonical_last_event_id_still_resumes(world: ApiWorld) -> None:
    world.submit(unit_id="BKK_1-0001", submission_id="edge-0001")
    world.submit(unit_id="BKK_1-0002", submission_id="edge-0002")
    resumed = world.client.get("/v1/feed/stream?timeout=0.2", headers={**world.headers("newsroom"), "Last-Event-ID": "1"})
    assert resumed.status_code == 200 and "BKK_1-0002" in resumed.text and "BKK_1-0001" not in resumed.text


def _session_like(address: str, expires: str) -> bytes:
    return _latin1(f"Bearer tvs1.{address}.{expires}.c-NgFQmVCAapqXFx0KWfnJVhYSBW54OGoTviGSe6Y3A")


@pytest.mark.parametrize("token", [
    _session_like(VOLUNTEER, "³¹"),
    _session_like(VOLUNTEER, "¹²³"),
    _session_like("0xé", "1796251699"),
    _session_like(VOLUNTEER + "\xff", "1796251699"),
    _latin1("Bearer tvs1.\xa0.²."),
])
@pytest.mark.parametrize(("method", "path"), [
    ("POST", "/v1/tallies"),  # the submissions fast path
    ("GET", "/v1/aggregates/unofficial/national"),  # the aggregates fast path
    ("GET", "/v1/election"),  # the routes
])
def test_a_session_token_with_unicode_digits_or_letters_is_a_401_on_every_path(tmp_path: Path, database_url: str,
                                                                             token: bytes, method: str, path: str) -> None:
    state = AppState.open(make_settings(tmp_path / "data", database_url, api_refresh_aggregates=True))
    try:
        # raise_server_exceptions: an exception that escaped the app would fail the test here.
        with TestClient(create_app(app_state=state)) as client:
            answer = client.request(method, path, headers={"Authorization": token}, json={})  # type: ignore[dict-item]
        assert answer.status_code == 401, answer.text
        assert answer.headers["www-authenticate"] == "Bearer"
        assert answer.json()["error"] == "unauthenticated"
    finally:
        state.close()


def test_a_fault_inside_the_aggregates_fast_path_is_a_logged_500_not_an_escaped_exception(
        tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    state = AppState.open(make_settings(tmp_path / "data", database_url, api_refresh_aggregates=True))

    def broken(*_args: Any) -> Any:
        raise KeyError("๓๑")  # what a poisoned entry did to the aggregates

    monkeypatch.setattr(state.renders, "get", broken)
    try:
        with TestClient(create_app(app_state=state)) as client, caplog.at_level(logging.ERROR, logger="tally.api"):
            answer = client.get("/v1/aggregates/unofficial/national")
        assert answer.status_code == 500 and answer.headers["content-type"] == "application/json"
        assert answer.json() == {"error": "internal_error",
                                 "errors": [{"path": [], "message": "the server failed; it has been logged"}]}
        assert any("๓๑" in record.getMessage() or record.exc_info for record in caplog.records)
    finally:
        state.close()


def test_a_fault_inside_the_submissions_fast_path_is_a_logged_500(
        tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    import api.fastpath

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
            monkeypatch.setattr(api.fastpath, "accept_tally", broken)
            with caplog.at_level(logging.ERROR, logger="tally.api"):
                answer = client.post("/v1/tallies", json=signed_tally(state.ledger_app.election),
                                     headers={"Authorization": f"Bearer {token}"})
        assert answer.status_code == 500 and answer.json()["error"] == "internal_error"
        assert any(record.exc_info for record in caplog.records)
    finally:
        state.close()


@pytest.mark.parametrize(("method", "path"), [
    ("POST", "/v1/tallies"), ("GET", "/v1/aggregates/unofficial/national"), ("GET", "/v1/election"),
])
def test_whatever_a_token_parser_raises_the_answer_is_a_401(tmp_path: Path, database_url: str,
                                                            monkeypatch: pytest.MonkeyPatch, method: str, path: str) -> None:
    """The edge does not rely on every parser of a token being strict: a ValueError from one
    (as int('³¹') and 'é'.encode('ascii') raised) is a malformed credential."""
    state = AppState.open(make_settings(tmp_path / "data", database_url, api_refresh_aggregates=True))

    def tripped(_token: str) -> str:
        raise UnicodeEncodeError("ascii", "é", 0, 1, "ordinal not in range(128)")

    monkeypatch.setattr(state.access.sessions, "verify", tripped)
    try:
        with TestClient(create_app(app_state=state)) as client:
            answer = client.request(method, path, headers={"Authorization": "Bearer tvs1.0xe.1.mac"}, json={})
        assert answer.status_code == 401, answer.text
        assert "malformed credentials" in answer.json()["errors"][0]["message"]
    finally:
        state.close()
