"""``tally verify all`` checks photos: every photo a record links, re-hashed block by block."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from ledger.audit import open_source
from ledger.content.car import export_car
from ledger.core.cid import CID
from ledger.core.errors import InvalidEncoding
from ledger.core.unixfs import CHUNK_SIZE
from ledger.sealing.batches import Batcher
from ledger.settings import Settings
from tests.support.audit import LARGE_PHOTO, auditor, flip_a_byte
from tests.support.chain import HAVE_ANVIL
from tests.support.review import CONSTITUENCY, photo, tally

anvil_only = pytest.mark.skipif(not HAVE_ANVIL, reason="anvil not installed (run npm ci)")


def photo_mismatches(report: Any) -> list[Any]:
    return [m for m in report.mismatches if m.what == "photo"]


@anvil_only
def test_an_honest_night_checks_every_photo_once(night: Any) -> None:
    service, client = night
    report = auditor(service, client).verify_all()
    assert report.ok, report.mismatches
    assert report.photos == 12 and not report.photos_skipped  # six tallies, two photos each
    # org-b reports unit 4 with org-a's photos of unit 1: two more links, no new photo
    units = [u.id for u in service.election.polling_units(CONSTITUENCY)]
    reused = (photo(service, f"org-a{units[0]}b"), photo(service, f"org-a{units[0]}f"))
    service.submit_report(tally(service, "org-b", units[3], photos=reused))
    Batcher(service.ledger).seal_due(force=True)
    from ledger.sealing.anchoring import AnchorWorker

    AnchorWorker(database=service.database, content=service.ledger.content, client=client).drain()
    again = auditor(service, client).verify_all(workers=2)
    assert again.ok, again.mismatches
    assert again.records > report.records and again.photos == 12


@anvil_only
def test_a_large_photo_is_checked_through_its_whole_dag(photo_night: Any) -> None:
    service, client, _record, _board, _blocks = photo_night
    report = auditor(service, client).verify_all()
    assert report.ok, report.mismatches
    assert report.photos == 14


@anvil_only
@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize("which", ["raw leaf", "dag-pb node"])
def test_a_tampered_photo_block_is_named_with_its_record(photo_night: Any, tmp_path: Path, workers: int, which: str) -> None:
    service, client, record_cid, board, blocks = photo_night
    tampered = blocks[1] if which == "raw leaf" else board
    flip_a_byte(service, tampered)
    source = open_source(f"blocks:{service.ledger.content.root}", scratch=tmp_path)
    report = auditor(service, client, source).verify_all(workers=workers)
    assert not report.ok
    (mismatch,) = photo_mismatches(report)
    assert f"record {record_cid}, photo tally_board {board}" in mismatch.where
    assert str(tampered) in mismatch.found
    assert [m for m in report.mismatches if m.what != "photo"] == []  # the records themselves are intact


@anvil_only
def test_skip_photos_passes_a_tampered_store_and_says_so(photo_night: Any) -> None:
    service, client, _record, _board, blocks = photo_night
    flip_a_byte(service, blocks[0])
    report = auditor(service, client).verify_all(photos=False)
    assert report.ok, report.mismatches
    assert report.photos_skipped and report.photos == 0


@anvil_only
def test_a_missing_photo_block_is_named(photo_night: Any) -> None:
    service, client, record_cid, board, blocks = photo_night
    service.ledger.content.path_of(blocks[2]).unlink()
    (mismatch,) = photo_mismatches(auditor(service, client).verify_all())
    assert record_cid in mismatch.where and str(board) in mismatch.where
    assert str(blocks[2]) in mismatch.found and "not in" in mismatch.found


@anvil_only
def test_a_car_file_carries_the_photos_and_a_tampered_one_is_refused(photo_night: Any, tmp_path: Path) -> None:
    """Exported with its records, a CAR file holds their photos, and verify all checks them
    from it. A photo block altered inside the CAR file is refused when the file is opened,
    naming the block (a CAR with a hole is refused too: see tests/content)."""
    service, client, _record, _board, blocks = photo_night
    roots = [CID.parse(b.manifest_cid) for b in Batcher(service.ledger).batches()]
    for view in ("unofficial", "authority"):  # reports and decisions, and the authority log
        items, _ = service.ledger.changes(after=0, limit=1000, view=view)
        roots += [CID.parse(i["record_cid"]) for i in items]
    car = tmp_path / "night.car"
    export_car(service.ledger.content, roots, car)
    report = auditor(service, client, open_source(f"car:{car}", scratch=tmp_path / "honest")).verify_all()
    assert report.ok and report.photos == 14, report.mismatches
    data = bytearray(car.read_bytes())
    data[data.index(LARGE_PHOTO[CHUNK_SIZE : 2 * CHUNK_SIZE]) + 100] ^= 1
    car.write_bytes(bytes(data))
    with pytest.raises(InvalidEncoding, match=str(blocks[1])):
        open_source(f"car:{car}", scratch=tmp_path / "tampered")


@anvil_only
def test_tally_verify_all_names_the_photo_and_skip_photos_passes(
    photo_night: Any, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from ledger.cli.main import app

    service, _client, record_cid, board, blocks = photo_night
    monkeypatch.setenv("TALLY_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("TALLY_ANVIL_PORT", str(settings.anvil_port))
    blocks_spec = f"blocks:{service.ledger.content.root}"
    honest = CliRunner().invoke(app, ["verify", "all", "--workers", "1", "--content", blocks_spec])
    assert honest.exit_code == 0, honest.output
    assert "14 photos checked" in honest.output
    flip_a_byte(service, blocks[0])
    failed = CliRunner().invoke(app, ["verify", "all", "--workers", "2", "--content", blocks_spec])
    assert failed.exit_code == 1, failed.output
    assert f"MISMATCH photo at batch 2, record {record_cid}, photo tally_board {board}" in failed.output
    quick = CliRunner().invoke(app, ["verify", "all", "--workers", "1", "--skip-photos", "--content", blocks_spec])
    assert quick.exit_code == 0, quick.output
    assert "photos skipped (--skip-photos)" in quick.output


def test_importing_the_auditor_loads_no_server_code() -> None:
    """A fresh interpreter: the whole auditor, every module of it, loads no database layer,
    HTTP framework or server room (and no chain client: the CLI hands it one)."""
    program = (
        "import importlib, pkgutil, sys, ledger.audit\n"
        "from ledger.audit import *\n"
        "for module in pkgutil.iter_modules(ledger.audit.__path__):\n"
        "    importlib.import_module('ledger.audit.' + module.name)\n"
        "print('\\n'.join(sorted(sys.modules)))\n"
    )
    loaded = set(subprocess.run([sys.executable, "-c", program], check=True, capture_output=True, text=True).stdout.split())
    assert {"ledger.audit.auditor", "ledger.audit.photos", "ledger.audit.worker"} <= loaded
    forbidden = ("sqlalchemy", "alembic", "fastapi", "starlette", "web3", "api")
    rooms = ("ledger.store", "ledger.intake", "ledger.review", "ledger.people", "ledger.sealing", "ledger.app", "ledger.cli")
    offending = sorted(m for m in loaded if m.split(".")[0] in forbidden or m.startswith(rooms))
    assert offending == []
