"""The chain adapters on a real anvil (node_modules/@foundry-rs/anvil): keystore, deployment
manifest, anchoring client, and what survives an anvil restart."""

from __future__ import annotations

import json
import stat
import time
from pathlib import Path

import pytest
from web3 import Web3

from ledger.chain.anvil import AnvilNode
from ledger.chain.deploy import (
    ChainWiped,
    connect_from_settings,
    ensure_deployed,
    fund_on_local_chain,
    manifest_path,
    read_manifest,
)
from ledger.chain.evidence import Fees, SignedAnchor
from ledger.chain.reverts import ContractReverted
from ledger.errors import ChainError, NotFound
from ledger.settings import Settings
from tests.support.chain import HAVE_ANVIL, MANIFEST_CID, open_client, tree_of
from tests.support.net import free_port
from tests.support.paths import VECTORS
from wallets.keystore import (
    KeystoreError,
    create_keystore,
    keystore_address,
    keystore_path,
    load_or_create_signer,
    load_signer,
)

pytestmark = pytest.mark.skipif(not HAVE_ANVIL, reason="anvil not installed (run npm ci)")


def test_anchor_survives_an_anvil_restart(settings: Settings, anvil: AnvilNode) -> None:
    client = open_client(settings)
    values, tree = tree_of(5, "a")
    assert client.next_batch_id() == 1
    assert client.get_batch(1) is None

    sent = client.anchor(1, tree.root, len(tree), MANIFEST_CID)
    inclusion = client.wait_for_inclusion(sent.tx_hash, timeout=30)
    assert inclusion.succeeded and inclusion.tx_hash == sent.tx_hash
    assert client.is_final(inclusion)
    manifest_before = read_manifest(manifest_path(settings))

    assert anvil.stop()
    assert not anvil.is_answering()
    assert anvil.state_file.is_file()
    assert anvil.start()

    client = open_client(settings)  # reloads and checks the manifest; deploys nothing new
    assert read_manifest(manifest_path(settings)) == manifest_before
    assert client.get_root(1) == tree.root
    assert client.next_batch_id() == 2
    for index in range(len(tree)):
        assert client.verify(1, tree.leaf(index), tree.proof(index))
    assert client.is_canonical(inclusion.block_number, inclusion.block_hash)

    batch = client.get_batch(1)  # the event, found again after the restart
    assert batch is not None
    assert (batch.root, batch.record_count, batch.manifest_cid) == (tree.root, 5, MANIFEST_CID)
    assert (batch.tx_hash, batch.block_number, batch.block_hash) == (
        sent.tx_hash,
        inclusion.block_number,
        inclusion.block_hash,
    )
    assert client.get_batch(2) is None


def test_deployment_manifest_format(settings: Settings, anvil: AnvilNode) -> None:
    client = open_client(settings)
    document = json.loads(manifest_path(settings).read_text())
    assert document["format"] == "tally-deployment-v1"
    assert document["chain_id"] == 31337 == client.chain_id
    deployment = document["contracts"]["EvidenceAnchor"]
    assert Web3.to_checksum_address(deployment["address"]) == client.address
    assert deployment["anchorer"] == deployment["admin"] == client.signer.address  # type: ignore[union-attr]
    assert client.has_anchorer_role(deployment["anchorer"])
    assert deployment["deploy_tx"].startswith("0x") and deployment["deploy_block"] >= 1


def test_a_wiped_chain_is_reported(settings: Settings, anvil: AnvilNode) -> None:
    open_client(settings)
    anvil.stop()
    anvil.state_file.unlink()
    anvil.genesis_file.unlink()  # the whole chain is gone: the next start builds another genesis block
    time.sleep(1.1)  # from another second of the clock
    anvil.start()
    web3 = connect_from_settings(settings)
    signer = load_or_create_signer(settings)
    with pytest.raises(ChainWiped, match="was reset"):
        ensure_deployed(web3, signer, manifest_path(settings))

    fund_on_local_chain(web3, signer.address)
    fresh = ensure_deployed(web3, signer, manifest_path(settings), redeploy_if_wiped=True)
    assert list(settings.chain_dir.glob("deployment.wiped-*.json"))
    assert read_manifest(manifest_path(settings)) == fresh


def test_contract_errors_are_named(settings: Settings, anvil: AnvilNode) -> None:
    client = open_client(settings)
    _, tree = tree_of(3, "b")
    with pytest.raises(ContractReverted) as refused:
        client.anchor(2, tree.root, 3, MANIFEST_CID)
    assert refused.value.error_name == "BatchOutOfOrder"
    assert refused.value.arguments == {"expected": 1, "given": 2}
    assert "BatchOutOfOrder(expected=1, given=2)" in str(refused.value)
    with pytest.raises(NotFound):
        client.verify(1, tree.leaf(0), tree.proof(0))
    with pytest.raises(ValueError, match="zero"):
        client.anchor(1, bytes(32), 3, MANIFEST_CID)


def test_explicit_nonce_replacement_and_events(settings: Settings, anvil: AnvilNode) -> None:
    client = open_client(settings)
    anvil.rpc("evm_setAutomine", [False])
    nonce = client.pending_nonce()
    _, first_tree = tree_of(4, "c")
    first = client.anchor(1, first_tree.root, 4, MANIFEST_CID, nonce=nonce, fees=Fees(10**10, 10**9))
    assert client.get_inclusion(first.tx_hash) is None  # pending
    assert client.send(first) == first.tx_hash  # sending again is harmless
    assert SignedAnchor.from_json(json.loads(json.dumps(first.to_json()))) == first

    replacement = client.replace(first)
    assert replacement.nonce == nonce and replacement.tx_hash != first.tx_hash
    assert replacement.fees.max_fee_per_gas >= first.fees.max_fee_per_gas * 1.125
    _, second_tree = tree_of(2, "d")
    second = client.anchor(2, second_tree.root, 2, MANIFEST_CID, nonce=nonce + 1, simulate=False)
    anvil.rpc("evm_mine")
    anvil.rpc("evm_setAutomine", [True])

    assert client.get_inclusion(first.tx_hash) is None  # replaced, never mined
    assert client.wait_for_inclusion(replacement.tx_hash, timeout=10).succeeded
    assert client.wait_for_inclusion(second.tx_hash, timeout=10).succeeded
    assert client.send(replacement) == replacement.tx_hash  # mined already: still fine
    with pytest.raises(ChainError, match="(?i)nonce"):
        client.send(first)  # its nonce went to the replacement
    events = client.anchored_events(0, max_range=2)
    assert [(event.batch_id, event.root) for event in events] == [(1, first_tree.root), (2, second_tree.root)]
    assert [event.tx_hash for event in events] == [replacement.tx_hash, second.tx_hash]
    assert client.anchored_events(0, batch_id=2)[0].record_count == 2


def test_anvil_adopts_a_running_node_and_refuses_a_foreign_one(settings: Settings, anvil: AnvilNode) -> None:
    assert AnvilNode.from_settings(settings).start() is False  # same directory: adopted
    stranger = AnvilNode(chain_dir=settings.data_dir / "other-chain", port=settings.anvil_port)
    with pytest.raises(ChainError, match="already served by another node"):
        stranger.start()
    second = AnvilNode(chain_dir=settings.chain_dir, port=free_port())  # same state file, other port
    with pytest.raises(ChainError, match=f"already runs on port {settings.anvil_port}"):
        second.start()


def test_keystore_round_trip_and_password_rules(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "keystore-data")
    signer = load_or_create_signer(settings)  # real scrypt cost: about 2 s
    path = keystore_path(settings)
    document = json.loads(path.read_text())
    assert document["version"] == 3 and "crypto" in document  # Ape / keystore v3 format
    assert keystore_address(path) == signer.address
    password_file = settings.keys_dir / "anchorer.password"
    for file in (path, password_file):
        assert stat.S_IMODE(file.stat().st_mode) == 0o600
    assert json.loads(path.read_text())["crypto"]["kdfparams"]["n"] == 2**18
    assert signer.key.hex() not in path.read_text()
    with pytest.raises(KeystoreError, match="does not open"):
        load_signer(path, "wrong password")

    remote = Settings(data_dir=settings.data_dir, rpc_url="https://rpc.example.org")
    with pytest.raises(KeystoreError, match="TALLY_KEYSTORE_PASSWORD"):
        load_or_create_signer(remote, alias="remote")
    explicit = Settings(data_dir=settings.data_dir, rpc_url="https://rpc.example.org", keystore_password="hunter2")
    address = create_keystore(keystore_path(explicit, "remote"), "hunter2", scrypt_n=2**10)
    assert load_or_create_signer(explicit, alias="remote").address == address
    with pytest.raises(KeystoreError, match="already exists"):
        create_keystore(keystore_path(explicit, "remote"), "hunter2")


def test_merkle_vectors_agree_with_the_contract(settings: Settings, anvil: AnvilNode) -> None:
    """The same vectors as tests/contracts/test_merkle_vectors.py, through the Python client."""
    cases = []
    for path in sorted((VECTORS / "merkle").glob("*.json")):
        cases.extend(json.loads(path.read_text())["cases"])
    if not cases:
        pytest.skip("no Merkle vectors")
    client = open_client(settings)
    batch_of_root: dict[str, int] = {}
    for root in sorted({case["root"].lower() for case in cases}):
        batch_of_root[root] = len(batch_of_root) + 1
        sent = client.anchor(batch_of_root[root], bytes.fromhex(root[2:]), 1, MANIFEST_CID)
        client.wait_for_inclusion(sent.tx_hash, timeout=10)
    for case in cases:
        proof = [bytes.fromhex(sibling[2:]) for sibling in case["proof"]]
        answer = client.verify(batch_of_root[case["root"].lower()], bytes.fromhex(case["leaf"][2:]), proof)
        assert answer == (case["expected"] == "valid"), case["name"]


def test_a_dead_endpoint_is_a_chain_error(settings: Settings) -> None:
    dead = Settings(data_dir=settings.data_dir, rpc_url=f"http://127.0.0.1:{free_port()}")
    with pytest.raises(ChainError):
        connect_from_settings(dead)
