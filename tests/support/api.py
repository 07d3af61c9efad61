"""Fixtures and helpers for the API tests (``tests/test_api_*.py`` import them from here).

Each test gets a real app: a fresh data directory, the parametrized ``database_url``
(SQLite and PostgreSQL), the local block store, and no background loops.
"""

from __future__ import annotations

import threading
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from eth_account.messages import encode_defunct

from api.main import create_app
from api.state import AppState
from ledger.core.cid import CID, RAW
from ledger.core.signing import address_from_private_key
from ledger.settings import Settings
from tests.support.factories import OTHER_KEY, VOLUNTEER_KEY, signed_tally, stand_in_photos
from wallets.keystore import create_keystore, keystore_path, resolve_password

with warnings.catch_warnings():  # Starlette asks for httpx2; httpx works the same here
    warnings.simplefilter("ignore", UserWarning)
    from fastapi.testclient import TestClient

__all__ = [
    "KEYED_ROLES",
    "ApiWorld",
    "TestClient",
    "api_settings",
    "api_state",
    "client",
    "make_settings",
    "served_as_tally_serve",
    "serving",
    "sign_in",
    "world",
]

KEYED_ROLES = ("constituency_head", "war_room", "coordinator", "newsroom", "auditor", "admin")
VOLUNTEER = address_from_private_key(VOLUNTEER_KEY)
OTHER_VOLUNTEER = address_from_private_key(OTHER_KEY)


def make_settings(data_dir: Path, database_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "data_dir": data_dir,
        "database_url": database_url,
        "api_refresh_aggregates": False,
        "api_seal_batches": False,
        "api_anchor_batches": False,
        "rate_limit_enabled": False,
        "access_cache_seconds": 0.0,
        "open_reporting": True,
        "api_defer_screening": False,
    }
    values.update(overrides)
    settings = Settings(**values)
    settings.ensure_dirs()
    # The ledger's receipt key, made cheaply (scrypt n = 2**10) so each test opens it fast.
    for alias in ("receipts", "verifier"):
        create_keystore(keystore_path(settings, alias), resolve_password(settings, alias), scrypt_n=2**10)
    return settings


@pytest.fixture
def api_settings(tmp_path: Path, database_url: str) -> Settings:
    return make_settings(tmp_path / "data", database_url)


@pytest.fixture
def api_state(api_settings: Settings) -> Iterator[AppState]:
    state = AppState.open(api_settings)
    state.ledger_app.content.put_block(CID.of(RAW, b"board"), b"board")
    state.ledger_app.content.put_block(CID.of(RAW, b"form"), b"form")
    stand_in_photos(state.ledger_app.ledger)
    yield state
    state.close()


@pytest.fixture
def client(api_state: AppState) -> Iterator[TestClient]:
    with TestClient(create_app(app_state=api_state), raise_server_exceptions=False) as test_client:
        yield test_client


def sign_in(client: TestClient, private_key: bytes) -> str:
    """A volunteer session token, through the real challenge and personal_sign."""
    address = address_from_private_key(private_key)
    challenge = client.post("/v1/auth/challenge", json={"address": address})
    assert challenge.status_code == 201, challenge.text
    body = challenge.json()
    signature = Account.sign_message(encode_defunct(text=body["message"]), private_key=private_key).signature
    answer = {"address": address, "nonce": body["nonce"], "signature": "0x" + bytes(signature).hex()}
    session = client.post("/v1/auth/session", json=answer)
    assert session.status_code == 201, session.text
    return str(session.json()["token"])


@dataclass
class ApiWorld:
    """A client with a token for every role (``None`` for anonymous)."""

    client: TestClient
    state: AppState
    tokens: dict[str, str | None] = field(default_factory=dict)

    def headers(self, role: str) -> dict[str, str]:
        token = self.tokens[role]
        return {"Authorization": f"Bearer {token}"} if token else {}

    def submit(self, role: str = "volunteer", **kwargs: Any) -> Any:
        election = self.state.ledger_app.election
        return self.client.post("/v1/tallies", json=signed_tally(election, **kwargs), headers=self.headers(role))


@pytest.fixture
def world(client: TestClient, api_state: AppState) -> ApiWorld:
    tokens: dict[str, str | None] = {"anonymous": None}
    for role in KEYED_ROLES:
        _, tokens[role] = api_state.access.create_principal(role=role, name=f"test {role}")
    api_state.access.register_volunteer(address=VOLUNTEER, name="volunteer 42")
    api_state.access.register_volunteer(address=OTHER_VOLUNTEER, name="volunteer 43")
    tokens["volunteer"] = sign_in(client, VOLUNTEER_KEY)
    tokens["other_volunteer"] = sign_in(client, OTHER_KEY)
    return ApiWorld(client, api_state, tokens)


@contextmanager
def serving(app: Any, **config: Any) -> Iterator[str]:
    """``app`` under a real uvicorn server on a free port (a thread of this process), for
    what the test client cannot show: sockets, chunked bodies, timeouts. Yields its URL."""
    import uvicorn

    from tests.support.net import free_port

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", **config))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20.0
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10.0)


def served_as_tally_serve(settings: Any, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, dict[str, Any]]:
    """The app and the uvicorn options that ``tally serve`` (``ledger.cli.serve.serve_app``) runs;
    only the blocking ``uvicorn.run`` is caught, so the test can run that server itself."""
    import gc
    import sys

    import uvicorn

    from ledger.cli.serve import serve_app

    captured: dict[str, Any] = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **options: captured.update(app=app, **options))
    monkeypatch.setattr(gc, "freeze", lambda: None)
    interval = sys.getswitchinterval()
    try:
        serve_app(settings)
    finally:
        sys.setswitchinterval(interval)
    app = captured.pop("app")
    return app, {name: captured[name] for name in ("proxy_headers", "forwarded_allow_ips", "timeout_keep_alive")}
