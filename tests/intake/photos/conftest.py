"""The content store the photo tests ingest into: a local block store of the test's own."""

from __future__ import annotations

from pathlib import Path

import pytest

from ledger.content.local import LocalBlockStore


@pytest.fixture()
def store(tmp_path: Path) -> LocalBlockStore:
    return LocalBlockStore(tmp_path / "blocks")
