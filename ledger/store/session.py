"""Engines, sessions and schema migrations (Alembic, run programmatically)."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

__all__ = ["Database", "migrate"]

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


_LONG_NUMBER = re.compile(r"\d{19}")


def _json_loads(text: str | bytes) -> Any:
    """JSON columns read with orjson (several times faster; screening reads every report's
    document). orjson reads an integer beyond 64 bits as a float, so text with a run of 19
    digits or more is read by the standard library, as is what orjson refuses (NaN), and
    every value reads back as it was stored."""
    if isinstance(text, bytes):
        text = text.decode("utf-8")
    if _LONG_NUMBER.search(text):
        return json.loads(text)
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:  # NaN, Infinity: what json.dumps writes for them
        return json.loads(text)


def _sqlite_pragmas(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def _private_file(path: Path) -> None:
    """Create the SQLite file readable by its owner only (0600) before SQLite opens it,
    and tighten one made earlier: it holds volunteers' names and contacts. SQLite gives
    its -wal and -shm files the same mode."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.close(os.open(path, os.O_CREAT | os.O_RDONLY, 0o600))
    for file in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        if file.exists() and file.stat().st_uid == os.getuid():  # someone else's copy is theirs to guard
            file.chmod(0o600)


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        database = url.split("///", 1)[1].split("?", 1)[0] if "///" in url else ""
        if database and database != ":memory:" and not database.startswith("file:"):
            _private_file(Path(database))
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30}, json_deserializer=_json_loads)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    return create_engine(url, pool_size=10, max_overflow=20, pool_pre_ping=True, json_deserializer=_json_loads)


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest revision (idempotent)."""
    config = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


class Database:
    """An engine and its session factory. ``with db.session() as s:`` commits or rolls back."""

    def __init__(self, url: str):
        self.url = url
        self.engine = make_engine(url)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)

    def migrate(self) -> None:
        migrate(self.engine)

    @contextmanager
    def session(self) -> Iterator[Session]:
        with self.sessions.begin() as session:
            yield session

    def dispose(self) -> None:
        self.engine.dispose()
