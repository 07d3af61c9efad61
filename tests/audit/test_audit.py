"""``tally verify``'s auditor: it trusts only the chain and content checked against CIDs."""

from __future__ import annotations

from pathlib import Path

import pytest

from ledger.audit import AuditReport, open_source
from ledger.content.car import export_car
from ledger.core.cid import CID
from ledger.sealing.batches import Batcher
from tests.support.audit import auditor
from tests.support.chain import HAVE_ANVIL
from tests.support.review import CONSTITUENCY

pytestmark = pytest.mark.skipif(not HAVE_ANVIL, reason="anvil not installed (run npm ci)")


def test_an_honest_ledger_checks_out(night) -> None:  # type: ignore[no-untyped-def]
    service, client = night
    report = auditor(service, client).verify_all()
    assert report.ok, report.mismatches
    assert report.batches == 1 and report.records == 6 + 3 + 3  # tallies, automatic accepts, certifications
    assert sum(c["units"] for c in report.certified["constituencies"].values()) == 3
    unit = service.unit_review([u.id for u in service.election.polling_units(CONSTITUENCY)][0])
    assert auditor(service, client).verify_record(unit["reports"][0]["record_cid"]).ok


def test_a_tampered_block_is_caught(night) -> None:  # type: ignore[no-untyped-def]
    service, client = night
    record_cid = service.ledger.changes(after=0, limit=1)[0][0]["record_cid"]
    path = service.ledger.content.path_of(CID.parse(record_cid))
    data = bytearray(path.read_bytes())
    data[-1] ^= 1
    path.write_bytes(bytes(data))
    report = auditor(service, client).verify_all()
    assert not report.ok
    assert any(m.what == "record" and record_cid in m.where for m in report.mismatches)


def test_a_car_file_is_a_content_source(night, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    service, client = night
    roots = [CID.parse(b.manifest_cid) for b in Batcher(service.ledger).batches()]
    items, _ = service.ledger.changes(after=0, limit=1000)
    roots += [CID.parse(i["record_cid"]) for i in items]
    export_car(service.ledger.content, roots, tmp_path / "night.car")
    source = open_source(f"car:{tmp_path / 'night.car'}", scratch=tmp_path)
    assert auditor(service, client, source).verify_all().ok


def test_a_forged_batch_on_chain_is_caught(night, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    service, client = night
    # someone anchors batch 2 with a root that its manifest does not give
    manifest_cid = Batcher(service.ledger).batches()[0].manifest_cid
    client.wait_for_inclusion(client.anchor(2, b"\x22" * 32, 12, manifest_cid).tx_hash)
    report = AuditReport()
    auditor(service, client).verify_batch(2, report)
    assert [m.what for m in report.mismatches] == ["manifest", "batch root"]


def test_worker_processes_reach_the_same_verdict(night, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """``verify all --workers 2``: records are checked in other processes, which open the
    block store again by its spec; the report equals the single-process one, tampering included."""
    service, client = night
    source = open_source(f"blocks:{service.ledger.content.root}", scratch=tmp_path)
    alone = auditor(service, client, source).verify_all(workers=1)
    together = auditor(service, client, source).verify_all(workers=2)
    assert alone.ok and together.ok
    assert (together.batches, together.records, together.decisions, together.certified) == (
        alone.batches,
        alone.records,
        alone.decisions,
        alone.certified,
    )
    record_cid = service.ledger.changes(after=0, limit=1)[0][0]["record_cid"]
    path = service.ledger.content.path_of(CID.parse(record_cid))
    data = bytearray(path.read_bytes())
    data[-1] ^= 1
    path.write_bytes(bytes(data))
    report = auditor(service, client, source).verify_all(workers=2)
    assert any(m.what == "record" and record_cid in m.where for m in report.mismatches)
