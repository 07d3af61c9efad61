"""The one source of configuration: ``TALLY_*`` environment variables.

Every default runs on a bare machine: a SQLite file, a block store on disk and a
local anvil chain, all under ``TALLY_DATA_DIR``.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TALLY_", extra="ignore")

    data_dir: Path = Field(default=Path(".tally"), description="Where all state lives: database, blocks, chain, keys.")
    database_url: str | None = Field(default=None, description="SQLAlchemy URL; default: SQLite file in the data dir.")
    election: str = Field(default="th2566", description="Election definition: a bundled name or a path to a JSON file.")

    # Content store
    ipfs_api_url: str | None = Field(default=None, description="Kubo RPC API (http://127.0.0.1:5001); default: local block store.")
    ipfs_timeout_seconds: float = 30.0

    # Batching
    batch_max_records: int = Field(default=1000, ge=1, le=1_000_000)
    batch_max_age_seconds: float = Field(default=30.0, gt=0)

    # Chain
    rpc_url: str | None = Field(default=None, description="JSON-RPC endpoint; default: the embedded anvil node.")
    chain_id: int | None = Field(default=None, description="Expected chain id; checked against the endpoint.")
    anvil_port: int = Field(default=8545, ge=1, le=65535)
    confirmations: int = Field(default=1, ge=0, le=1000)
    gas_limit_anchor: int = Field(default=200_000, ge=21_000)
    max_fee_gwei: float | None = None
    priority_fee_gwei: float | None = None
    keystore_password: str | None = Field(default=None, repr=False, description="Anchorer keystore password.")

    # API
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    max_photo_bytes: int = Field(default=15 * 1024 * 1024, ge=1024)

    @field_validator("data_dir")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        return value.expanduser().resolve()

    @cached_property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'tally.db'}"

    @property
    def blocks_dir(self) -> Path:
        return self.data_dir / "blocks"

    @property
    def chain_dir(self) -> Path:
        return self.data_dir / "chain"

    @property
    def keys_dir(self) -> Path:
        return self.data_dir / "keys"

    def ensure_dirs(self) -> None:
        for path in (self.data_dir, self.blocks_dir, self.chain_dir, self.keys_dir):
            path.mkdir(parents=True, exist_ok=True)


def get_settings() -> Settings:
    return Settings()
