"""``tally verify``'s auditor: it trusts only the chain and content checked against CIDs."""

from __future__ import annotations

from pathlib import Path

import pytest

from ledger.audit import AuditReport, open_source
from ledger.content.car import export_car
from ledger.core.cid import CID
from ledger.core.record import node_to_json, sign_entry
from ledger.core.signing import address_from_private_key
from ledger.election.validation import validate_decision
from ledger.errors import Forbidden
from ledger.sealing.anchoring import AnchorWorker
from ledger.sealing.batches import Batcher
from tests.support.audit import auditor
from tests.support.chain import HAVE_ANVIL
from tests.support.review import CONSTITUENCY, address, decide, key, tally
from wallets.tally_client import sign_decision

pytestmark = pytest.mark.skipif(not HAVE_ANVIL, reason="anvil not installed (run npm ci)")


def test_an_honest_ledger_checks_out(night) -> None:  # type: ignore[no-untyped-def]
    service, client = night
    report = auditor(service, client).verify_all()
    assert report.ok, report.mismatches
    # tallies, automatic accepts, certifications, and the authority log: genesis, 2 service keys, 3 organisations,
    # 3 volunteers and their units, 2 heads and their constituencies, the war room
    assert report.authority_entries == 1 + 2 + 3 + 3 * 2 + 2 * 2 + 1
    assert report.batches == 1 and report.records == 6 + 3 + 3 + report.authority_entries
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
    for view in ("unofficial", "authority"):  # reports and decisions, and the authority log
        items, _ = service.ledger.changes(after=0, limit=1000, view=view)
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


def forge_certify(service, signer: str, unit: str, *, role: str = "war_room") -> str:  # type: ignore[no-untyped-def]
    """A ``certify`` signed by ``signer``'s key, put straight into the database and the content
    store (as an operator with database access could), past every check of the server."""
    decision = {
        "decision_id": f"forged-{signer}-{unit}",
        "decided_at": "2023-05-14T13:00:00Z",
        "role": role,
        "action": "certify",
        "subject": unit,
        "record": service.replay.unit(unit).accepted,
    }
    node = validate_decision(sign_decision(decision, key(signer), service.election), election=service.election)
    unit_row = service.election.polling_unit(unit)
    (accepted,) = service.ledger.commit(
        [
            service.ledger.prepare(
                node,
                kind="decision",
                subject=unit,
                constituency_id=unit_row.constituency_id,
                signer=str(node["decider"]),
                entry_id=str(node["decision_id"]),
            )
        ]
    )
    return str(accepted.receipt["record_cid"])


@pytest.mark.parametrize(
    ("signer", "role", "why"),
    [("impostor", "war_room", "not a member"), ("other-head", "constituency_head", "not the head of constituency MSN_1")],
)
def test_a_certify_by_a_key_without_the_authority_is_named_and_not_counted(night, signer: str, role: str, why: str) -> None:  # type: ignore[no-untyped-def]
    service, client = night
    unit = [u.id for u in service.election.polling_units(CONSTITUENCY)][3]
    service.submit_report(tally(service, "org-a", unit))
    service.submit_report(tally(service, "org-b", unit))  # the two agree: accepted by the ledger's key
    forged = forge_certify(service, signer, unit, role=role)
    Batcher(service.ledger).seal_due(force=True)
    AnchorWorker(database=service.database, content=service.ledger.content, client=client).drain()
    report = auditor(service, client).verify_all()
    named = [m for m in report.mismatches if m.what == "decider's authority"]
    assert [m.where for m in named] == [f"decision {forged}"] and why in named[0].found, report.mismatches
    assert len(report.mismatches) == 1
    assert sum(c["units"] for c in report.certified["constituencies"].values()) == 3  # the forged certify counts for nothing


def test_the_server_refuses_a_decision_the_authority_log_does_not_allow(night) -> None:  # type: ignore[no-untyped-def]
    service, _ = night
    unit = [u.id for u in service.election.polling_units(CONSTITUENCY)][3]
    service.submit_report(tally(service, "org-a", unit))
    service.submit_report(tally(service, "org-b", unit))
    with service.people.authority.revoke_member(address("war-room")):
        pass  # the log alone says the war room's key is no longer a member; the database still does
    with pytest.raises(Forbidden, match="the authority log does not let this decision through"):
        decide(service, "war-room", "certify", unit, record=service.replay.unit(unit).accepted)


def test_a_receipt_ties_to_the_anchored_receipt_key_and_its_record(night) -> None:  # type: ignore[no-untyped-def]
    service, client = night
    unit = [u.id for u in service.election.polling_units(CONSTITUENCY)][4]
    receipt = service.submit_report(tally(service, "org-c", unit)).receipt
    Batcher(service.ledger).seal_due(force=True)
    AnchorWorker(database=service.database, content=service.ledger.content, client=client).drain()
    report = auditor(service, client).verify_receipt(receipt)
    assert report.ok and report.records == 1, report.mismatches

    forger = bytes.fromhex("66" * 32)
    forged = node_to_json(sign_entry({**receipt, "ledger": address_from_private_key(forger), "signature": b""}, forger))
    named = auditor(service, client).verify_receipt(forged).mismatches
    assert [m.what for m in named] == ["receipt key"], named

    altered = {**receipt, "leaf_hash": "0x" + "00" * 32}
    assert [m.what for m in auditor(service, client).verify_receipt(altered).mismatches] == ["receipt"]
    assert [m.what for m in auditor(service, client).verify_receipt({"format": "nope"}).mismatches] == ["receipt"]


def test_a_receipt_for_a_record_never_anchored_is_named(night) -> None:  # type: ignore[no-untyped-def]
    service, client = night
    unit = [u.id for u in service.election.polling_units(CONSTITUENCY)][4]
    receipt = service.submit_report(tally(service, "org-c", unit)).receipt  # accepted, not yet sealed
    assert [m.what for m in auditor(service, client).verify_receipt(receipt).mismatches] == ["inclusion"]


def test_a_report_by_a_volunteer_not_assigned_to_the_unit_is_named(night) -> None:  # type: ignore[no-untyped-def]
    service, client = night
    unassigned = [u.id for u in service.election.polling_units(CONSTITUENCY)][7]  # org-a covers the first five
    submission = tally(service, "org-a", unassigned)
    with pytest.raises(Forbidden, match="not assigned"):
        service.submit_report(submission)  # the server refuses it; an operator puts it in anyway
    (accepted,) = service.ledger.commit([service.ledger.prepare_tally(submission)])
    Batcher(service.ledger).seal_due(force=True)
    AnchorWorker(database=service.database, content=service.ledger.content, client=client).drain()
    report = auditor(service, client).verify_all()
    named = [(m.what, m.where) for m in report.mismatches]
    assert named == [("reporter's authority", f"record {accepted.receipt['record_cid']}")], report.mismatches
    assert f"is not assigned to unit {unassigned}" in report.mismatches[0].found


def test_an_authority_entry_not_signed_by_an_admin_is_named_and_grants_nothing(night) -> None:  # type: ignore[no-untyped-def]
    service, client = night
    stranger = bytes.fromhex("77" * 32)
    node = {
        "format": "tally-authority-v1",
        "election": service.election.id,
        "grant_id": "forged-grant-0001",
        "granted_at": "2023-05-14T12:30:00Z",
        "signer": address_from_private_key(stranger),
        "action": "grant",
        "kind": "member",
        "subject": address("impostor"),
        "role": "war_room",
        "level": 3,
        "organisation": None,
    }
    signed = sign_entry(node, stranger)
    (granted,) = service.ledger.commit(
        [
            service.ledger.prepare(
                signed,
                kind="authority",
                subject=address("impostor"),
                constituency_id="",
                signer=str(node["signer"]),
                entry_id="forged-grant-0001",
            )
        ]
    )
    unit = [u.id for u in service.election.polling_units(CONSTITUENCY)][3]
    service.submit_report(tally(service, "org-a", unit))
    service.submit_report(tally(service, "org-b", unit))
    forged = forge_certify(service, "impostor", unit)  # relying on the forged grant
    Batcher(service.ledger).seal_due(force=True)
    AnchorWorker(database=service.database, content=service.ledger.content, client=client).drain()
    report = auditor(service, client).verify_all()
    assert [(m.what, m.where) for m in report.mismatches] == [
        ("authority entry", f"entry {granted.receipt['record_cid']}"),
        ("decider's authority", f"decision {forged}"),
    ], report.mismatches
    assert "is not an admin" in report.mismatches[0].found


def test_a_ledger_whose_first_record_is_no_genesis_has_no_root_of_trust(election) -> None:  # type: ignore[no-untyped-def]
    """The genesis must be record 0 of batch 1: the first root on chain then commits to it,
    and no later genesis (or none at all) can stand in for it."""
    from ledger.audit.auditor import _NightReplay

    report = AuditReport()
    night = _NightReplay(election, report, None)
    night.take("batch 1", [], [("bafy-first", ("tally", "BKK_1-0001", [], [], address("org-a")))])
    assert [(m.what, m.where) for m in report.mismatches[:1]] == [("authority genesis", "batch 1, record bafy-first")]
    assert report.mismatches[1].what == "reporter's authority"  # and with no log, nobody may report


def test_tally_verify_receipt_reads_a_receipt_file_and_names_a_forgery(  # type: ignore[no-untyped-def]
    night, settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import json

    from typer.testing import CliRunner

    from ledger.cli.main import app

    service, client = night
    unit = [u.id for u in service.election.polling_units(CONSTITUENCY)][4]
    accepted = service.submit_report(tally(service, "org-c", unit))
    Batcher(service.ledger).seal_due(force=True)
    AnchorWorker(database=service.database, content=service.ledger.content, client=client).drain()
    monkeypatch.setenv("TALLY_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("TALLY_ANVIL_PORT", str(settings.anvil_port))
    content = ["--content", f"blocks:{service.ledger.content.root}"]
    honest = tmp_path / "receipt.json"
    honest.write_text(json.dumps({"receipt": accepted.receipt}))  # the whole answer of POST /v1/tallies
    result = CliRunner().invoke(app, ["verify", "receipt", str(honest), *content])
    assert result.exit_code == 0 and f"OK receipt of {accepted.receipt['record_cid']}" in result.output, result.output
    forger = bytes.fromhex("66" * 32)
    forged = tmp_path / "forged.json"
    forged.write_text(
        json.dumps(node_to_json(sign_entry({**accepted.receipt, "ledger": address_from_private_key(forger)}, forger)))
    )
    result = CliRunner().invoke(app, ["verify", "receipt", str(forged), *content])
    assert result.exit_code == 1 and "MISMATCH receipt key" in result.output, result.output
    garbage = tmp_path / "garbage.json"
    garbage.write_text("{not json")
    result = CliRunner().invoke(app, ["verify", "receipt", str(garbage), *content])
    assert result.exit_code == 2 and "not a readable JSON receipt" in result.output, result.output
