"""Shared fixtures. Database tests run against SQLite and, whenever it is reachable,
PostgreSQL (``TALLY_TEST_POSTGRES_URL``, default 127.0.0.1:5432 database ``test``); each
PostgreSQL test gets a schema of its own, dropped afterwards."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from ledger.chain.anvil import AnvilNode
from ledger.content.local import LocalBlockStore
from ledger.election import Election, load_election
from ledger.settings import Settings
from ledger.store import Database
from tests.support.net import free_port
from wallets.keystore import create_keystore, keystore_path, resolve_password

# Tallies are prepared in the API process in tests, which start many apps; test_preparing
# runs the worker processes themselves (``ledger.intake.prepare``), through the API too.
os.environ.setdefault("TALLY_API_PREPARE_WORKERS", "0")

# Fixtures shared across the tree live in tests/support/, one module per room.
# In the order they import one another, so that pytest rewrites the asserts of each.
pytest_plugins = [
    "tests.support.review",
    "tests.support.sealing",
    "tests.support.photo_reports",
    "tests.support.ipfs",
    "tests.support.api",
    "tests.support.audit",
]

POSTGRES_URL = os.environ.get("TALLY_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
_postgres_reachable: bool | None = None


def postgres_reachable() -> bool:
    global _postgres_reachable
    if _postgres_reachable is None:
        try:
            engine = create_engine(POSTGRES_URL, connect_args={"connect_timeout": 3})
            with engine.connect() as connection:
                connection.execute(text("select 1"))
            engine.dispose()
            _postgres_reachable = True
        except Exception:
            _postgres_reachable = False
    return _postgres_reachable


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'tally.db'}"
        return
    if not postgres_reachable():
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL at {POSTGRES_URL} is not reachable, and CI must test against it")
        pytest.skip(f"PostgreSQL at {POSTGRES_URL} is not reachable")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(POSTGRES_URL)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    separator = "&" if "?" in POSTGRES_URL else "?"
    yield f"{POSTGRES_URL}{separator}options=-csearch_path%3D{schema}"
    with admin.begin() as connection:
        connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


@pytest.fixture
def database(database_url: str) -> Iterator[Database]:
    db = Database(database_url)
    db.migrate()
    yield db
    db.dispose()


@pytest.fixture
def content(tmp_path: Path) -> LocalBlockStore:
    return LocalBlockStore(tmp_path / "blocks")


@pytest.fixture(scope="session")
def election() -> Election:
    return load_election("th2566")


# -- the chain: a real anvil per test, in the test's own data directory ------------------


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """A fresh data dir whose anchorer key file is cheap to open (scrypt n = 2**10)."""
    settings = Settings(data_dir=tmp_path / "data", anvil_port=free_port())
    settings.ensure_dirs()
    create_keystore(keystore_path(settings), resolve_password(settings), scrypt_n=2**10)
    return settings


@pytest.fixture
def anvil(settings: Settings) -> Iterator[AnvilNode]:
    node = AnvilNode.from_settings(settings)
    node.start()
    yield node
    node.stop()
