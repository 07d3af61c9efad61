"""Wiring: build the ledger's services from settings (used by the CLI, the API and the demo)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from functools import cached_property

from ledger.content import open_content_store
from ledger.content.store import ContentStore
from ledger.election import Election, load_election
from ledger.intake.service import Ledger
from ledger.quarantine import Quarantine
from ledger.results.aggregates import Aggregates
from ledger.review.service import ReviewService
from ledger.sealing.batches import Batcher
from ledger.settings import Settings
from ledger.store import Database
from wallets.keystore import load_or_create_signer

__all__ = ["LedgerApp", "open_app"]


@dataclass
class LedgerApp:
    settings: Settings
    database: Database
    content: ContentStore
    election: Election
    ledger: Ledger
    defer_screening: bool = False
    """The API screens reports in a background loop (``ReviewService.screen_pending``)."""

    quarantine: Quarantine = field(default_factory=Quarantine)
    """Entries that the loops could not use, set aside so that everything else goes on
    (``ledger.quarantine``); readiness reports them."""

    @cached_property
    def batcher(self) -> Batcher:
        return Batcher(self.ledger, quarantine=self.quarantine)

    @cached_property
    def aggregates(self) -> Aggregates:
        aggregates = Aggregates(database=self.database, election=self.election, quarantine=self.quarantine)
        aggregates.refresh()
        return aggregates

    @cached_property
    def review(self) -> ReviewService:
        """The hierarchy and verification service; its decision replay is loaded on first use."""
        review = ReviewService(
            ledger=self.ledger,
            aggregates=self.aggregates,
            verifier_key=bytes(load_or_create_signer(self.settings, "verifier").key),
            required_organisations=self.settings.required_organisations,
            max_photo_distance_km=self.settings.max_photo_distance_km,
            open_reporting=self.settings.open_reporting,
            defer_screening=self.defer_screening,
            photo_window=(
                timedelta(minutes=self.settings.photo_window_before_close_minutes),
                timedelta(hours=self.settings.photo_window_after_close_hours),
            ),
            photo_similarity_max_bits=self.settings.photo_similarity_max_bits,
        )
        review.load()
        return review

    def close(self) -> None:
        self.database.dispose()


def open_app(settings: Settings | None = None) -> LedgerApp:
    """Open (and migrate) the ledger under ``settings.data_dir``."""
    settings = settings or Settings()
    settings.ensure_dirs()
    database = Database(settings.resolved_database_url)
    database.migrate()
    content = open_content_store(settings)
    election = load_election(settings.election)
    receipt_key = bytes(load_or_create_signer(settings, "receipts").key)
    ledger = Ledger(
        database=database,
        content=content,
        election=election,
        receipt_key=receipt_key,
        batch_max_records=settings.batch_max_records,
        batch_max_age_seconds=settings.batch_max_age_seconds,
    )
    return LedgerApp(settings=settings, database=database, content=content, election=election, ledger=ledger)
