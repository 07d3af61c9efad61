"""What the national night's driver reads of the ledger while it waits: read-only SQL for
what the API does not count (pending entries, screened reports), and the public API."""

from __future__ import annotations

from typing import Any

__all__ = ["Observer"]


class Observer:
    """A read-only look at the night's database and API (``base``: the API's root URL)."""

    def __init__(self, database_url: str, base: str, unit_count: int):
        self.database_url, self.base, self.unit_count = database_url, base, unit_count
        self._database: Any = None

    @property
    def database(self) -> Any:
        from ledger.store import Database

        if self._database is None:
            self._database = Database(self.database_url)
        return self._database

    def dispose(self) -> None:
        if self._database is not None:
            self._database.dispose()

    def counts(self) -> tuple[int, int]:
        """(photos, entries) in the database."""
        from sqlalchemy import text

        with self.database.engine.connect() as connection:
            photos = connection.execute(text("SELECT count(*) FROM photos")).scalar_one()
            entries = connection.execute(text("SELECT count(*) FROM entries")).scalar_one()
        return int(photos), int(entries)

    def entry_counts(self) -> tuple[int, int]:
        """(entries, pending entries), read-only from the database (the API has no pending count)."""
        from sqlalchemy import text

        with self.database.engine.connect() as connection:
            total = connection.execute(text("SELECT count(*) FROM entries")).scalar_one()
            pending = connection.execute(text("SELECT count(*) FROM entries WHERE batch_id IS NULL")).scalar_one()
        return int(total), int(pending)

    def batches(self) -> list[dict[str, Any]]:
        """Every batch of ``GET /v1/batches``, page by page."""
        import httpx

        rows: list[dict[str, Any]] = []
        offset: int | None = 0
        while offset is not None:
            page = httpx.get(f"{self.base}/v1/batches", params={"offset": offset, "limit": 1000}, timeout=60).json()
            rows += page["batches"]
            offset = page.get("next_offset")
        return rows

    # -- the waits: (done, how many so far) --

    def screened(self) -> tuple[bool, int]:
        """Every accepted tally screened (the server may screen off the submission path): the
        unit reviews have seen as many reports as there are tallies (read-only, in the database)."""
        from sqlalchemy import text

        with self.database.engine.connect() as connection:
            tallies = connection.execute(text("SELECT count(*) FROM entries WHERE kind = 'tally'")).scalar_one()
            seen = connection.execute(text("SELECT coalesce(sum(report_count), 0) FROM unit_reviews")).scalar_one()
        return int(seen) >= int(tallies), int(seen)

    def sealed(self) -> tuple[bool, int]:
        total, pending = self.entry_counts()
        return pending == 0, total

    def anchored(self) -> tuple[bool, int]:
        total, pending = self.entry_counts()
        batches = self.batches()
        in_batches = sum(b["record_count"] for b in batches)
        done = pending == 0 and in_batches == total and all(b["status"] == "anchored" for b in batches)
        return done, len(batches)

    def certified_everywhere(self) -> tuple[bool, int]:
        import httpx

        national = httpx.get(f"{self.base}/v1/aggregates/certified/national", timeout=60).json()
        return national["units_reporting"] >= self.unit_count, int(national["units_reporting"])

    # -- what the API offers --

    def api_has(self, method: str, path: str) -> bool:
        import httpx

        paths = httpx.get(f"{self.base}/openapi.json", timeout=60).json().get("paths", {})
        return method.lower() in paths.get(path, {})

    def review_path(self) -> str | None:
        """The API's unit review route, with ``{unit}`` for the unit (None if it has none)."""
        import httpx

        paths = httpx.get(f"{self.base}/openapi.json", timeout=60).json().get("paths", {})
        for candidate in ("/v1/units/{unit_id}/review", "/v1/review/units/{unit_id}", "/v1/units/{unit}/review"):
            if "get" in paths.get(candidate, {}):
                return candidate.replace("{unit_id}", "{unit}")
        return None
