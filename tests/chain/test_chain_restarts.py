"""The embedded chain across many restarts, clean and by kill -9, on a real anvil.

What must hold after every restart: the state file is one chain with one genesis block,
the node serves that genesis (same chain id, same hash), the deployment is found again
(or, if anvil died before its state dump reached it, sent again to the same address),
anchored batches are still on chain or anchored again, and no anvil is left running that
no process owns. The deployment itself is crash-safe: a process killed between sending the
deploy transaction and writing the manifest never deploys a second contract.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from web3 import Web3

from ledger.chain.anvil import AnvilNode
from ledger.chain.anvil_binary import find_anvil_binary
from ledger.chain.deploy import (
    connect_from_settings,
    create_address,
    ensure_deployed,
    fund_on_local_chain,
    intent_path,
    manifest_path,
    read_manifest,
)
from ledger.election import Election
from ledger.errors import ChainError
from ledger.intake.service import Ledger
from ledger.settings import Settings
from ledger.store import Batch, Database
from tests.support.chain import HAVE_ANVIL, open_client, tree_of
from tests.support.intake import Clock
from tests.support.sealing import fill, worker
from wallets.keystore import load_or_create_signer

pytestmark = pytest.mark.skipif(not HAVE_ANVIL, reason="anvil not installed (run npm ci)")

MANIFEST_CID = "bafyreigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi"


@pytest.fixture
def node(settings: Settings) -> Iterator[AnvilNode]:
    """This data directory's anvil, dumping its state every second."""
    anvil = AnvilNode(chain_dir=settings.chain_dir, port=settings.anvil_port, state_interval_seconds=1)
    anvil.start()
    yield anvil
    anvil.stop()
    assert anvils_of(settings.chain_dir) == []


def anvils_of(chain_dir: Path) -> list[int]:
    """Live anvil processes whose command line names this chain directory."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            state = (entry / "stat").read_text().split()[2]
        except OSError:
            continue
        if state != "Z" and argv and Path(argv[0].decode()).name == "anvil" and str(chain_dir).encode() in b" ".join(argv):
            found.append(int(entry.name))
    return found


def geneses(path: Path) -> list[str]:
    document = json.loads(path.read_text())
    return [block["header"]["timestamp"] for block in document["blocks"] if int(block["header"]["number"], 16) == 0]


def kill_9(node: AnvilNode) -> None:
    pid = node.running_pid()
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    if node._process is not None:  # the test started it: reap it
        node._process.wait(5)
        node._process = None
    else:
        deadline = time.monotonic() + 5
        while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
            time.sleep(0.05)


def wait_for_dump(node: AnvilNode, block_number: int, timeout: float = 10.0) -> None:
    """Until anvil's periodic dump holds ``block_number``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            document = json.loads(node.dump_file.read_bytes())
            if any(int(block["header"]["number"], 16) == block_number for block in document["blocks"]):
                return
        except (OSError, ValueError, KeyError):
            pass
        time.sleep(0.1)
    raise AssertionError(f"anvil did not dump block {block_number} within {timeout} s")


def chain_identity(node: AnvilNode) -> tuple[object, object]:
    genesis = node.rpc("eth_getBlockByNumber", ["0x0", False])
    assert isinstance(genesis, dict)
    return node.rpc("eth_chainId"), genesis["hash"]


def test_five_restarts_clean_and_by_kill_9_keep_one_chain(settings: Settings, node: AnvilNode) -> None:
    client = open_client(settings)
    manifest = read_manifest(manifest_path(settings))
    _, tree = tree_of(4, "r")
    inclusion = client.wait_for_inclusion(client.anchor(1, tree.root, len(tree), MANIFEST_CID).tx_hash, timeout=30)
    identity = chain_identity(node)
    for restart in range(5):
        time.sleep(1.1)  # each start in another second of the clock, as in real life
        if restart % 2:
            wait_for_dump(node, inclusion.block_number)
            kill_9(node)
        else:
            assert node.stop()
            assert len(geneses(node.state_file)) == 1
        assert anvils_of(settings.chain_dir) == []
        assert node.start() is True
        assert chain_identity(node) == identity, f"restart {restart + 1} serves another chain"
        client = open_client(settings)  # checks the manifest against the chain; deploys nothing
        assert read_manifest(manifest_path(settings)) == manifest
        assert client.get_root(1) == tree.root and client.next_batch_id() == 2
        assert client.is_canonical(inclusion.block_number, inclusion.block_hash)
        assert len(anvils_of(settings.chain_dir)) == 1
    node.stop()
    assert len(geneses(node.state_file)) == 1
    assert not node.dump_file.exists()
    node.start()


def test_new_blocks_keep_the_wall_clock_time_after_a_restart(settings: Settings, node: AnvilNode) -> None:
    node.rpc("evm_mine")
    time.sleep(1.1)
    assert node.stop() and node.start()
    node.rpc("evm_mine")
    latest = node.rpc("eth_getBlockByNumber", ["latest", False])
    assert isinstance(latest, dict)
    assert abs(int(latest["timestamp"], 16) - time.time()) < 5


def test_a_state_file_with_several_genesis_blocks_is_repaired(settings: Settings) -> None:
    """What the old ``--state`` command left behind: one more block 0 per restart."""
    chain_dir = settings.chain_dir
    state = chain_dir / "anvil-state.json"
    command = [str(find_anvil_binary()), "--host", "127.0.0.1", "--port", str(settings.anvil_port),
               "--chain-id", "31337", "--state", str(state)]  # fmt: skip
    probe = AnvilNode(chain_dir=chain_dir, port=settings.anvil_port)
    for _ in range(3):
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 20
            while not probe.is_answering() and time.monotonic() < deadline:
                time.sleep(0.05)
            probe.rpc("evm_mine")
        finally:
            process.terminate()
            process.wait(20)
        time.sleep(1.1)
    assert len(geneses(state)) == 3
    first = min(geneses(state), key=lambda stamp: int(stamp, 16))

    probe.start()
    try:
        genesis = probe.rpc("eth_getBlockByNumber", ["0x0", False])
        block_1 = probe.rpc("eth_getBlockByNumber", ["0x1", False])
        assert isinstance(genesis, dict) and isinstance(block_1, dict)
        assert genesis["timestamp"] == first and block_1["parentHash"] == genesis["hash"]
        assert probe.rpc("eth_blockNumber") == "0x3"
    finally:
        probe.stop()
    assert geneses(state) == [first]
    assert (chain_dir / "anvil-state.before-repair.json").is_file()


def test_a_torn_dump_falls_back_to_the_last_complete_state(settings: Settings, node: AnvilNode) -> None:
    open_client(settings)
    identity = chain_identity(node)
    assert node.stop() and node.start()  # the deployment is now in anvil-state.json
    kill_9(node)
    node.dump_file.write_text('{"block": {"number": "0x')  # killed while anvil rewrote its dump
    assert node.start()
    assert chain_identity(node) == identity
    open_client(settings)  # the deployment is found
    assert (settings.chain_dir / "anvil-state.dump.torn.json").is_file()


def test_a_failed_start_leaves_no_anvil_behind(settings: Settings) -> None:
    node = AnvilNode(chain_dir=settings.chain_dir, port=settings.anvil_port)
    with pytest.raises(ChainError, match="did not answer"):
        node.start(timeout=0.0)
    assert anvils_of(settings.chain_dir) == []
    assert not node.pid_file.exists()


def test_a_kill_9_before_the_dump_loses_the_newest_anchor_and_the_worker_anchors_it_again(
    ledger: Ledger,
    election: Election,
    settings: Settings,
    clock: Clock,
    database: Database,  # noqa: F811
) -> None:
    node = AnvilNode(chain_dir=settings.chain_dir, port=settings.anvil_port, state_interval_seconds=3600)
    node.start()
    try:
        fill(ledger, election, 1)
        client = open_client(settings)
        assert worker(ledger, client, clock).drain() == 1
        assert node.stop() and node.start()  # batch 1 is in the state file
        fill(ledger, election, 3)  # the next four units: batches 2 and 3
        client = open_client(settings)
        assert worker(ledger, client, clock).drain() == 2
        kill_9(node)  # long before the next state dump: batches 2 and 3 are lost
        assert node.start()
        client = open_client(settings)
        assert client.next_batch_id() == 2
        assert worker(ledger, client, clock).drain() == 2  # seen as lost, anchored again
        assert client.next_batch_id() == 4
        with database.session() as session:
            batches = {row.id: row for row in session.query(Batch)}
        for batch_id in (1, 2, 3):
            row = batches[batch_id]
            assert row.status == "anchored"
            assert client.get_root(batch_id) == bytes.fromhex(row.root.removeprefix("0x"))
            assert row.anchor_block is not None and row.anchor_block_hash is not None
            assert client.is_canonical(row.anchor_block, row.anchor_block_hash)
    finally:
        node.stop()
    assert anvils_of(settings.chain_dir) == []


# -- the deployment is crash-safe -------------------------------------------------------


class Crash(BaseException):
    """Stands for the process being killed at that point."""


def deployer_and_web3(settings: Settings):  # type: ignore[no-untyped-def]
    web3 = connect_from_settings(settings)
    signer = load_or_create_signer(settings)
    fund_on_local_chain(web3, signer.address)
    return web3, signer


def code_at(web3: Web3, address: str) -> bytes:
    return bytes(web3.eth.get_code(Web3.to_checksum_address(address)))


@pytest.mark.parametrize("moment", ["before-send", "after-send"])
def test_a_crash_around_the_deploy_send_never_deploys_a_second_contract(
    settings: Settings, node: AnvilNode, moment: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    web3, signer = deployer_and_web3(settings)
    nonce = web3.eth.get_transaction_count(signer.address)
    path = manifest_path(settings)

    def crash(*args: object, **kwargs: object) -> None:
        raise Crash(moment)

    if moment == "before-send":
        monkeypatch.setattr(web3.eth, "send_raw_transaction", crash)
    else:
        monkeypatch.setattr(web3.eth, "wait_for_transaction_receipt", crash)
    with pytest.raises(Crash):
        ensure_deployed(web3, signer, path)
    assert read_manifest(path) is None
    assert intent_path(path).is_file()  # recorded before sending
    sent = web3.eth.get_transaction_count(signer.address, "pending")
    assert sent == nonce + (moment == "after-send")

    monkeypatch.undo()
    web3, signer = deployer_and_web3(settings)  # the restarted process
    manifest = ensure_deployed(web3, signer, path)
    assert web3.eth.get_transaction_count(signer.address) == nonce + 1  # one deployment, no more
    assert manifest.evidence_anchor.address == create_address(signer.address, nonce)
    assert code_at(web3, manifest.evidence_anchor.address)
    assert not code_at(web3, create_address(signer.address, nonce + 1))
    assert read_manifest(path) == manifest
    assert ensure_deployed(web3, signer, path) == manifest  # and again: nothing new
    assert web3.eth.get_transaction_count(signer.address) == nonce + 1


def test_a_deployment_lost_with_the_chain_state_is_sent_again_to_the_same_address(settings: Settings, node: AnvilNode) -> None:
    client = open_client(settings)
    before = read_manifest(manifest_path(settings))
    assert before is not None
    kill_9(node)  # before any dump reached the deployment (or: anvil-state.json lost)
    node.dump_file.unlink(missing_ok=True)
    node.state_file.unlink(missing_ok=True)
    assert node.start()
    client = open_client(settings)  # the same chain (same genesis), from block 0 again
    after = read_manifest(manifest_path(settings))
    assert after is not None and after.genesis_hash == before.genesis_hash
    assert client.address == after.evidence_anchor.address == before.evidence_anchor.address
    assert after.evidence_anchor.deploy_tx == before.evidence_anchor.deploy_tx  # the same signed transaction
    assert client.next_batch_id() == 1


def test_a_failing_demo_stops_the_anvil_it_started(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    from ledger.cli.demo import run_demo

    monkeypatch.setenv("TALLY_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("TALLY_ANVIL_PORT", str(settings.anvil_port))
    manifest_path(settings).write_text('{"format": "something-else"}')  # open_evidence_client refuses it
    with pytest.raises(ChainError, match="expected format"):
        run_demo(units=1, serve=False)
    assert anvils_of(settings.chain_dir) == []

    adopted = AnvilNode.from_settings(settings)  # one another process started: the demo leaves it running
    adopted.start()
    try:
        with pytest.raises(ChainError, match="expected format"):
            run_demo(units=1, serve=False)
        assert adopted.is_answering()
    finally:
        adopted.stop()


def test_a_stored_anchor_whose_nonce_the_chain_no_longer_expects_is_signed_again(
    ledger: Ledger,
    election: Election,
    settings: Settings,
    clock: Clock,
    node: AnvilNode,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """After blocks are lost the stored transaction of a batch may carry a nonce the chain
    will never reach; re-sending it forever would wedge the worker."""
    fill(ledger, election, 1)
    client = open_client(settings)
    expected = client.mined_nonce()
    monkeypatch.setattr(client, "mined_nonce", lambda: expected + 3)  # as the lost chain had it
    anchors = worker(ledger, client, clock)
    assert anchors.step().action == "sent"
    monkeypatch.undo()
    assert anchors.drain(timeout=15) == 1
    assert client.next_batch_id() == 2
