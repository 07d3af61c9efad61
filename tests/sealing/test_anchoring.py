"""The anchoring worker on a real anvil: order, exactly-once under crashes, outages,
stuck transactions, reorgs, and a chain that disagrees with us."""

from __future__ import annotations

from datetime import timedelta

import pytest

from ledger.chain.anvil import AnvilNode
from ledger.chain.evidence import EvidenceAnchorClient
from ledger.core.proof import check_proof_document
from ledger.election import Election
from ledger.errors import AnchorMismatch, ChainError
from ledger.intake.service import Ledger
from ledger.sealing.batches import Batcher
from ledger.settings import Settings
from ledger.store.batches import list_batches
from tests.support.chain import HAVE_ANVIL, open_client
from tests.support.intake import Clock
from tests.support.sealing import fill, worker

pytestmark = pytest.mark.skipif(not HAVE_ANVIL, reason="anvil not installed (run npm ci)")


def events_by_batch(client: EvidenceAnchorClient) -> list[int]:
    return [event.batch_id for event in client.anchored_events(0)]


def test_batches_are_anchored_in_order_and_proofs_verify_on_chain(
    ledger: Ledger, election: Election, settings: Settings, anvil: AnvilNode, clock: Clock
) -> None:
    cids = fill(ledger, election, 3)
    client = open_client(settings)
    assert worker(ledger, client, clock).drain() == 3
    assert events_by_batch(client) == [1, 2, 3]
    batcher = Batcher(ledger)
    for cid in cids:
        document = batcher.proof(cid)
        assert document["status"] == "anchored"
        anchor = document["anchor"]
        assert anchor["chain_id"] == client.chain_id and anchor["contract"] == client.address
        root = check_proof_document(document)
        assert client.get_root(document["batch"]["id"]) == root
        leaf = bytes.fromhex(document["leaf"]["hash"][2:])
        assert client.verify(document["batch"]["id"], leaf, [bytes.fromhex(p[2:]) for p in document["proof"]])
    # Stop the chain and start it again: the anchors and proofs are still there.
    assert anvil.stop() and anvil.start()
    client = open_client(settings)
    document = batcher.proof(cids[-1])
    assert client.verify(3, bytes.fromhex(document["leaf"]["hash"][2:]), [bytes.fromhex(p[2:]) for p in document["proof"]])


class Crash(BaseException):
    """Stands for the process being killed at that point."""


@pytest.mark.parametrize("moment", ["before-send", "after-send"])
def test_a_worker_killed_mid_anchor_never_anchors_twice_or_skips(
    ledger: Ledger,
    election: Election,
    settings: Settings,
    anvil: AnvilNode,
    clock: Clock,
    moment: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fill(ledger, election, 3)
    client = open_client(settings)
    first = worker(ledger, client, clock)
    real_send = client.send

    def crashing_send(signed):  # type: ignore[no-untyped-def]
        if signed.batch_id == 2:
            if moment == "after-send":
                real_send(signed)
            raise Crash
        return real_send(signed)

    monkeypatch.setattr(client, "send", crashing_send)
    with pytest.raises(Crash):
        first.drain()
    monkeypatch.undo()
    restarted = worker(ledger, open_client(settings), clock)
    assert restarted.drain() == 2  # batches 2 and 3
    assert events_by_batch(client) == [1, 2, 3]
    assert {batch.status for batch in list_batches(ledger.database)} == {"anchored"}


def test_receipt_never_recorded_is_adopted_from_the_chain(
    ledger: Ledger, election: Election, settings: Settings, anvil: AnvilNode, clock: Clock
) -> None:
    fill(ledger, election, 1)
    client = open_client(settings)
    assert worker(ledger, client, clock).step().action == "sent"
    # killed here: the transaction is mined but its receipt was never recorded
    assert worker(ledger, open_client(settings), clock).step().action == "confirmed"
    assert events_by_batch(client) == [1]


def test_chain_down_keeps_accepting_and_sealing_then_catches_up(
    ledger: Ledger, election: Election, settings: Settings, anvil: AnvilNode, clock: Clock
) -> None:
    client = open_client(settings)
    fill(ledger, election, 1)
    anvil.stop()
    with pytest.raises(ChainError):
        worker(ledger, client, clock).step()
    fill(ledger, election, 2)  # submissions and sealing go on while the chain is down
    anvil.start()
    assert worker(ledger, open_client(settings), clock).drain() == 2
    assert events_by_batch(open_client(settings)) == [1, 2]


def test_a_stuck_transaction_is_replaced_not_duplicated(
    ledger: Ledger, election: Election, settings: Settings, anvil: AnvilNode, clock: Clock
) -> None:
    fill(ledger, election, 1)
    client = open_client(settings)
    anvil.rpc("evm_setAutomine", [False])
    stuck_worker = worker(ledger, client, clock, replace_after_seconds=30)
    sent = stuck_worker.step()
    assert sent.action == "sent"
    assert stuck_worker.step().action == "resent"
    clock.now += timedelta(seconds=31)
    replaced = stuck_worker.step()
    assert replaced.action == "replaced" and replaced.detail != sent.detail
    anvil.rpc("evm_mine")
    anvil.rpc("evm_setAutomine", [True])
    assert stuck_worker.drain() == 1
    events = client.anchored_events(0)
    assert [(e.batch_id, e.tx_hash) for e in events] == [(1, replaced.detail)]


def test_a_reorg_before_confirmation_never_reaches_a_proof(
    ledger: Ledger, election: Election, settings: Settings, anvil: AnvilNode, clock: Clock
) -> None:
    cids = fill(ledger, election, 1)
    base = open_client(settings)
    client = EvidenceAnchorClient(base.web3, base.address, signer=base.signer, confirmations=3, deploy_block=base.deploy_block)
    snapshot = anvil.rpc("evm_snapshot")
    reorg_worker = worker(ledger, client, clock)
    assert reorg_worker.step().action == "sent"
    assert reorg_worker.step().action == "waiting"  # mined, 1 of 3 confirmations
    assert Batcher(ledger).proof(cids[0])["anchor"] is None
    anvil.rpc("evm_revert", [snapshot])  # the block with our anchor is gone
    assert client.next_batch_id() == 1
    assert reorg_worker.step().action == "resent"  # the stored transaction goes out again
    anvil.rpc("anvil_mine", [3])
    assert reorg_worker.drain() == 1
    document = Batcher(ledger).proof(cids[0])
    assert document["status"] == "anchored"
    assert client.is_canonical(document["anchor"]["block_number"], document["anchor"]["block_hash"])


def test_a_different_root_on_chain_stops_the_worker(
    ledger: Ledger, election: Election, settings: Settings, anvil: AnvilNode, clock: Clock
) -> None:
    fill(ledger, election, 1)
    client = open_client(settings)
    intruder = client.anchor(1, b"\x11" * 32, 2, "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku")
    client.wait_for_inclusion(intruder.tx_hash)
    with pytest.raises(AnchorMismatch, match="the chain holds root 0x1111"):
        worker(ledger, client, clock).step()
