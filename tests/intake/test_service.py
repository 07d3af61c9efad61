from __future__ import annotations

import copy
import json
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ledger.content.local import LocalBlockStore
from ledger.core import dagcbor
from ledger.core.cid import CID, RAW
from ledger.core.manifest import parse_manifest
from ledger.core.merkle import verify_inclusion
from ledger.core.proof import check_proof_document
from ledger.core.record import entry_fields, verify_entry_signature
from ledger.core.signing import entry_digest, recover_signer
from ledger.election import Election
from ledger.errors import ConflictingSubmission, InvalidProof, InvalidTally, NotFound
from ledger.intake.service import Ledger
from ledger.sealing.batches import Batcher
from ledger.store import Database
from tests.support.factories import OTHER_KEY, signed_tally, stand_in_photos
from tests.support.intake import RECEIPT_KEY, Clock
from tests.support.paths import REPO


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def ledger(database: Database, content: LocalBlockStore, election: Election, clock: Clock) -> Ledger:
    content.put_block(CID.of(RAW, b"board"), b"board")
    content.put_block(CID.of(RAW, b"form"), b"form")
    return stand_in_photos(
        Ledger(
            database=database,
            content=content,
            election=election,
            receipt_key=RECEIPT_KEY,
            batch_max_records=3,
            batch_max_age_seconds=60,
            clock=clock,
        )
    )


def test_accepting_a_tally_stores_its_block_and_signs_a_receipt(ledger: Ledger, election: Election) -> None:
    accepted = ledger.submit_tally(signed_tally(election))
    receipt = accepted.receipt
    assert accepted.created
    cid = CID.parse(receipt["record_cid"])
    node = dagcbor.decode(ledger.content.get_block(cid))
    verify_entry_signature(node)  # type: ignore[arg-type]
    assert node["photos"]["tally_board"] == CID.of(RAW, b"board")  # type: ignore[index]
    assert receipt["seal_deadline"] == "2023-05-14T10:31:00.000000Z"
    signed_receipt = {k: v for k, v in receipt.items()}
    signed_receipt["signature"] = bytes.fromhex(receipt["signature"][2:])
    assert recover_signer(entry_digest(entry_fields(signed_receipt)), signed_receipt["signature"]) == ledger.receipt_signer


def test_a_retry_returns_the_same_receipt_and_a_changed_retry_is_refused(ledger: Ledger, election: Election) -> None:
    first = ledger.submit_tally(signed_tally(election))
    again = ledger.submit_tally(signed_tally(election))
    assert not again.created and again.receipt == first.receipt
    changed = signed_tally(election, cast=401)
    with pytest.raises(ConflictingSubmission, match="different content"):
        ledger.submit_tally(changed)
    # Another volunteer may use the same submission id for their own report.
    assert ledger.submit_tally(signed_tally(election, key=OTHER_KEY)).created
    assert len(ledger.unit_entries("BKK_1-0001")) == 2


def test_refused_tallies_leave_nothing_behind(ledger: Ledger, election: Election) -> None:
    bad = signed_tally(election)
    bad["constituency"]["invalid"] = -1
    with pytest.raises(InvalidTally):
        ledger.submit_tally(bad)
    assert ledger.unit_entries("BKK_1-0001") == []
    with pytest.raises(NotFound):
        ledger.entry("bafyreiadcveuokiyjkcscbjl6qzaqvbmggxfglvg3r6dgkizzdyauovqa4")


def submit_units(ledger: Ledger, election: Election, count: int) -> list[str]:
    units = [u.id for u in election.polling_units("BKK_2")][:count]
    return [
        ledger.submit_tally(signed_tally(election, unit, submission_id=f"sub-{unit}")).receipt["record_cid"] for unit in units
    ]


def test_batches_seal_by_size_and_by_age(ledger: Ledger, election: Election, clock: Clock) -> None:
    batcher = Batcher(ledger)
    cids = submit_units(ledger, election, 5)
    sealed = batcher.seal_due()
    assert [(b.id, b.record_count) for b in sealed] == [(1, 3)]  # two are pending and young
    assert batcher.proof(cids[4])["status"] == "pending"
    clock.now += timedelta(seconds=61)
    assert [(b.id, b.record_count) for b in batcher.seal_due()] == [(2, 2)]
    assert batcher.seal_due(force=True) == []
    for cid in cids:
        document = batcher.proof(cid)
        assert document["status"] == "sealed"
        root = check_proof_document(document)
        verify_inclusion(bytes.fromhex(document["leaf"]["hash"][2:]), [bytes.fromhex(p[2:]) for p in document["proof"]], root)


def test_the_manifest_lists_the_batch_in_order(ledger: Ledger, election: Election) -> None:
    batcher = Batcher(ledger)
    cids = submit_units(ledger, election, 3)
    (sealed,) = batcher.seal_due()
    manifest = parse_manifest(b"".join(ledger.content.cat(CID.parse(sealed.manifest_cid))))
    assert [r[0] for r in manifest["records"]] == cids
    assert manifest["root"] == sealed.root and manifest["batch_id"] == 1


def test_a_tampered_proof_is_caught(ledger: Ledger, election: Election) -> None:
    batcher = Batcher(ledger)
    cids = submit_units(ledger, election, 3)
    batcher.seal_due()
    document = batcher.proof(cids[0])
    for mutate in (
        lambda d: d["leaf"]["values"].__setitem__(2, "0x" + "11" * 20),
        lambda d: d["proof"].__setitem__(0, "0x" + "00" * 32),
        lambda d: d["batch"].__setitem__("root", "0x" + "ab" * 32),
    ):
        tampered = copy.deepcopy(document)
        mutate(tampered)
        with pytest.raises(InvalidProof):
            check_proof_document(tampered)


@pytest.mark.skipif(not (REPO / "node_modules" / "@openzeppelin" / "merkle-tree").exists(), reason="npm tools not installed")
def test_oz_dump_loads_in_the_javascript_library_with_our_root(ledger: Ledger, election: Election, tmp_path: Path) -> None:
    batcher = Batcher(ledger)
    submit_units(ledger, election, 3)
    (sealed,) = batcher.seal_due()
    dump = batcher.oz_dump(sealed.id)
    path = tmp_path / "dump.json"
    path.write_text(json.dumps(dump))
    script = (
        "const {StandardMerkleTree}=require('@openzeppelin/merkle-tree');"
        "const t=StandardMerkleTree.load(JSON.parse(require('fs').readFileSync(process.argv[1])));"
        "const types=['string','string','address'];"
        "for (const [i,v] of t.entries()) { if(!StandardMerkleTree.verify(t.root,types,v,t.getProof(i))) throw 1 };"
        "console.log(t.root)"
    )
    out = subprocess.run(["node", "-e", script, str(path)], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == sealed.root


def test_a_group_commit_answers_each_entry_in_order(ledger: Ledger, election: Election) -> None:
    """``commit`` takes many prepared entries in one transaction; retries and reused ids in
    the same group, or against rows committed earlier, get the answers they get alone."""
    earlier = ledger.submit_tally(signed_tally(election, "BKK_1-0002", submission_id="earlier-01"))
    units = [u.id for u in election.polling_units("BKK_1")][:4]
    fresh = [ledger.prepare_tally(signed_tally(election, unit, submission_id=f"group-{unit}")) for unit in units]
    retry_of_earlier = ledger.prepare_tally(signed_tally(election, "BKK_1-0002", submission_id="earlier-01"))
    changed_earlier = ledger.prepare_tally(signed_tally(election, "BKK_1-0003", submission_id="earlier-01"))
    twice = ledger.prepare_tally(signed_tally(election, units[0], submission_id=f"group-{units[0]}"))
    changed_in_group = ledger.prepare_tally(signed_tally(election, units[1], submission_id=f"group-{units[1]}", cast=401))
    answers = ledger.commit([*fresh, retry_of_earlier, changed_earlier, twice, changed_in_group])
    assert [getattr(a, "created", None) for a in answers] == [True, True, True, True, False, None, False, None]
    assert answers[4].receipt == earlier.receipt  # type: ignore[union-attr]
    assert answers[6].receipt == answers[0].receipt  # type: ignore[union-attr]
    assert isinstance(answers[5], ConflictingSubmission) and earlier.receipt["record_cid"] in str(answers[5])
    assert isinstance(answers[7], ConflictingSubmission)
    # rows were inserted in the group's order, so the feed (ordered by id) shows them so
    items, _ = ledger.changes(after=0, limit=10)
    assert [item["record_cid"] for item in items] == [earlier.receipt["record_cid"]] + [
        a.receipt["record_cid"]
        for a in answers[:4]  # type: ignore[union-attr]
    ]
    assert ledger.commit([]) == []


def test_photos_indexed_as_a_group_keep_the_first_upload(ledger: Ledger) -> None:
    from ledger.cli.simulation import make_photo
    from ledger.intake.photos import ingest_photo

    def info(label: str):  # type: ignore[no-untyped-def]
        data = make_photo(label=label, taken_at=datetime(2023, 5, 14, 17, 5, tzinfo=UTC), location=(13.75, 100.5), seed=label)
        return ingest_photo(data, content=ledger.content, max_bytes=1 << 20)

    first = info("board of unit 1")
    row, created = ledger.record_photo(first, uploader="0x" + "11" * 20)
    assert created and row.exif["gps"]["lat"] == pytest.approx(13.75)
    second, third = info("form of unit 1"), info("board of unit 2")
    answers = ledger.record_photos(
        [(first, "0x" + "22" * 20), (second, "0x" + "22" * 20), (third, None), (second, "0x" + "33" * 20)]
    )
    assert [created for _, created in answers] == [False, True, True, False]
    assert [row.cid for row, _ in answers] == [str(first.cid), str(second.cid), str(third.cid), str(second.cid)]
    assert answers[0][0].uploader == "0x" + "11" * 20  # the first upload wins
    assert ledger.photo(str(second.cid)).uploader == "0x" + "22" * 20


def test_the_ledger_answers_frozen_rows_that_outlive_their_session(ledger: Ledger, election: Election) -> None:
    import dataclasses

    from ledger.store.entries import EntryRow
    from ledger.store.photos import PhotoRow

    ledger.submit_tally(signed_tally(election))
    (entry,) = ledger.unit_entries("BKK_1-0001")
    photo = ledger.photo(str(CID.of(RAW, b"board")))
    assert isinstance(entry, EntryRow) and isinstance(photo, PhotoRow) and photo.media_type == "image/jpeg"
    with pytest.raises(dataclasses.FrozenInstanceError):
        photo.uploader = "0x" + "22" * 20  # type: ignore[misc]
    with pytest.raises(NotFound, match="no photo bafy-nothing was uploaded here"):
        ledger.photo("bafy-nothing")
