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
    ipfs_api_url: str | None = Field(
        default=None, description="Kubo RPC API (http://127.0.0.1:5001); default: local block store."
    )
    ipfs_timeout_seconds: float = 30.0

    # Batching
    batch_max_records: int = Field(default=1000, ge=1, le=1_000_000)
    batch_max_age_seconds: float = Field(default=30.0, gt=0)

    # Verification (ledger/review.py)
    required_organisations: int = Field(default=2, ge=1, le=50, description="Agreeing organisations for automatic acceptance.")
    max_photo_distance_km: float = Field(default=5.0, gt=0, description="A photo farther from its unit is flagged.")
    photo_window_before_close_minutes: float = Field(
        default=30.0,
        ge=0,
        le=24 * 60,
        description="A photo of the count taken earlier than this before the polls close (the election's polls_close) "
        "is flagged photo_outside_window (30: from 16:30 for polls closing at 17:00).",
    )
    photo_window_after_close_hours: float = Field(
        default=7.0,
        gt=0,
        le=72,
        description="A photo taken later than this after the polls close is flagged photo_outside_window (7: until 24:00).",
    )
    photo_similarity_max_bits: int = Field(
        default=6,
        ge=0,
        le=16,
        description="Photos whose perceptual hashes differ in at most this many of 64 bits look alike: one submitted "
        "for another unit is flagged photo_similar.",
    )
    open_reporting: bool = Field(
        default=False,
        description="Let registered volunteers who are not (yet) members of the hierarchy report any unit; "
        "members are always held to their assignments.",
    )

    certify_max_excluded_share: float = Field(
        default=0.05,
        ge=0,
        le=1,
        description="The largest share of a constituency's units that may be excluded when the war room certifies it "
        "without a reason (a certify_constituency beyond it needs one).",
    )
    invitation_lifetime_hours: float = Field(
        default=48.0,
        gt=0,
        le=24 * 30,
        description="How long a custodial volunteer's sign-in code (POST /v1/custodial/invitations) stays valid; used once.",
    )
    authority_admins: list[str] = Field(
        default_factory=list,
        description="Addresses of further admins of the authority log's genesis, besides the ledger's authority key "
        "(keys/authority.json), which signs its entries. Read when a ledger writes its genesis, on its first start.",
    )
    authority_threshold: int = Field(
        default=1, ge=1, le=50, description="How many admins of the genesis must sign a change of admins."
    )

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
    max_json_bytes: int = Field(
        default=256 * 1024,
        ge=1024,
        le=1024 * 1024,
        description="Largest body of any route but photos; larger ones get 413, counted while they stream (chunked too).",
    )
    body_idle_timeout_seconds: float = Field(
        default=15.0, gt=0, le=600, description="A request body that pauses longer than this between pieces gets 408."
    )
    body_read_timeout_seconds: float = Field(
        default=120.0, gt=0, le=3600, description="A request body (a 15 MiB photo on a slow phone too) must arrive within this."
    )
    keep_alive_timeout_seconds: float = Field(
        default=5.0, gt=0, le=300, description="An idle keep-alive connection is closed after this (uvicorn timeout_keep_alive)."
    )
    trusted_proxies: list[str] = Field(
        default_factory=list,
        description="Addresses of reverse proxies whose X-Forwarded-For / X-Forwarded-Proto are believed (JSON list of "
        'IPs or networks, e.g. ["127.0.0.1"]); default none: the client is the socket\'s peer, so rate '
        "limits per IP cannot be dodged with a forged header.",
    )
    max_photo_pixels: int = Field(
        default=60_000_000,
        ge=1_000_000,
        description="Photos whose header declares more pixels are refused (422) without being decoded.",
    )
    max_photo_side: int = Field(default=20_000, ge=1_000, description="Photos with a longer side (pixels) are refused (422).")
    cors_origins: list[str] = Field(default_factory=list, description="Browser origins allowed to call the API (JSON list).")

    # API access (ledger/access.py)
    session_lifetime_seconds: int = Field(default=4 * 3600, ge=60, le=7 * 24 * 3600, description="Volunteer session lifetime.")
    challenge_lifetime_seconds: int = Field(
        default=300, ge=10, le=3600, description="How long a sign-in challenge may be answered."
    )
    access_cache_seconds: float = Field(
        default=30.0,
        ge=0,
        le=300,
        description="API keys and volunteers are cached about this long; a revocation through the API takes effect "
        "at once in that process, in other processes within this time.",
    )
    rate_limit_enabled: bool = True
    rate_limit_burst_seconds: float = Field(
        default=5.0, gt=0, le=3600, description="A caller's bucket holds this many seconds of its rate."
    )
    rate_limit_anonymous: float = Field(
        default=20.0, ge=0, description="Requests per second per client IP without credentials (0: unlimited)."
    )
    rate_limit_volunteer: float = Field(default=5.0, ge=0, description="Requests per second per volunteer (0: unlimited).")
    rate_limit_constituency_head: float = Field(default=20.0, ge=0)
    rate_limit_war_room: float = Field(default=100.0, ge=0)
    rate_limit_newsroom: float = Field(default=200.0, ge=0)
    rate_limit_auditor: float = Field(default=50.0, ge=0)
    rate_limit_admin: float = Field(default=50.0, ge=0)
    rate_limit_coordinator: float = Field(default=50.0, ge=0)

    # API background work (api/runtime.py); each loop can be turned off, e.g. for tests
    api_refresh_aggregates: bool = Field(default=True, description="Tail new entries into the aggregates in the API process.")
    aggregates_refresh_seconds: float = Field(default=0.5, gt=0, le=60)
    api_seal_batches: bool = Field(default=True, description="Seal due batches in the API process.")
    api_defer_screening: bool = Field(
        default=True, description="Screen new reports in a background loop, off the submission path (within a second)."
    )
    seal_interval_seconds: float = Field(default=1.0, gt=0, le=3600)
    api_prepare_workers: int | None = Field(
        default=None,
        ge=0,
        le=64,
        description="Processes that prepare tallies (validation, signatures, CIDs) beside the API process; "
        "default one per CPU beyond the first, 0 to prepare them in the API process.",
    )
    api_anchor_batches: bool = Field(
        default=True, description="Anchor sealed batches in the API process (starts the embedded anvil)."
    )
    feed_heartbeat_seconds: float = Field(default=15.0, gt=0, le=300, description="SSE comment sent when the feed is quiet.")
    feed_poll_seconds: float = Field(
        default=1.0, gt=0, le=60, description="How often an idle SSE stream looks for entries from other processes."
    )
    feed_max_streams_per_key: int = Field(
        default=10, ge=1, le=10_000, description="Open SSE streams one key (or volunteer) may hold; more get 429."
    )
    feed_max_streams_per_ip: int = Field(
        default=20, ge=1, le=10_000, description="Open SSE streams from one client IP, whatever the keys; more get 429."
    )

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
        # The data dir holds volunteers' names and contacts (the database) and the keys:
        # only the service's own user may enter it.
        self.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.data_dir.chmod(0o700)
        for path in (self.blocks_dir, self.chain_dir):
            path.mkdir(parents=True, exist_ok=True)
        self.keys_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.keys_dir.chmod(0o700)  # key files are encrypted, but nobody else needs to list them


def get_settings() -> Settings:
    return Settings()
