"""Deploying EvidenceAnchor once, and finding it again after a restart.

The deployment is recorded in ``<data dir>/chain/deployment.json``, format
``tally-deployment-v1``::

    {
      "format": "tally-deployment-v1",
      "chain_id": 31337,
      "genesis_hash": "0x…",                 block 0 of the chain deployed on
      "contracts": {
        "EvidenceAnchor": {
          "address": "0x…",
          "deploy_tx": "0x…",
          "deploy_block": 1,
          "deploy_block_hash": "0x…",
          "runtime_code_keccak": "0x…",       keccak256 of the code at the address
          "admin": "0x…",                     DEFAULT_ADMIN_ROLE at deployment
          "anchorer": "0x…"                   ANCHORER_ROLE at deployment
        }
      }
    }

On every start :func:`ensure_deployed` reloads the manifest and checks it against the chain:
same chain id, same genesis block, the deploy block still canonical and the expected code
at the address. A different chain (another genesis block: the embedded anvil's
``chain/`` directory was lost) fails that check with :class:`ChainWiped`, which says so
plainly: the anchors recorded in the database are no longer on that chain.

The deployment is crash-safe, as the anchoring is: the signed deploy transaction is
recorded in ``<data dir>/chain/deployment.intent.json`` (format ``tally-deploy-intent-v1``)
*before* it is sent::

    {
      "format": "tally-deploy-intent-v1",
      "chain_id": 31337,
      "genesis_hash": "0x…",
      "deployer": "0x…",
      "nonce": 0,                            the deployer's nonce the transaction uses
      "address": "0x…",                      the CREATE address of (deployer, nonce)
      "admin": "0x…", "anchorer": "0x…",
      "transactions": [{"tx_hash": "0x…", "raw": "0x…"}]   every signed version, newest last
    }

A process killed between sending and writing the manifest finds, on restart, the receipt
of a recorded transaction (or sends the recorded transaction again, harmless if the node
has it), so exactly one contract is ever deployed. The intent is kept after the manifest
is written: when the same chain comes back shorter (the embedded anvil killed before its
state dump reached the deployment), the same signed transaction is sent again, at the same
nonce, and the contract comes back at the same address; the anchoring worker then anchors
the batches again.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from eth_account.signers.local import LocalAccount
from hexbytes import HexBytes
from web3 import Web3
from web3.exceptions import TransactionNotFound, Web3RPCError
from web3.types import Nonce
from web3.utils import get_create_address

from ledger.chain.anvil import AnvilNode
from ledger.chain.evidence import EvidenceAnchorClient, Fees, connect, is_local_url, load_artifact, translate_errors
from ledger.core.hashing import checksum_address, keccak256
from ledger.errors import ChainError, ChainWiped
from ledger.settings import Settings

__all__ = [
    "INTENT_FORMAT",
    "MANIFEST_FORMAT",
    "ChainWiped",
    "ContractDeployment",
    "DeploymentManifest",
    "check_deployment",
    "connect_from_settings",
    "deploy_evidence_anchor",
    "ensure_deployed",
    "create_address",
    "fund_on_local_chain",
    "intent_path",
    "manifest_path",
    "open_evidence_client",
    "read_manifest",
    "write_manifest",
]

MANIFEST_FORMAT = "tally-deployment-v1"
INTENT_FORMAT = "tally-deploy-intent-v1"
EVIDENCE_ANCHOR = "EvidenceAnchor"


@dataclass(frozen=True)
class ContractDeployment:
    address: str
    deploy_tx: str
    deploy_block: int
    deploy_block_hash: str
    runtime_code_keccak: str
    admin: str
    anchorer: str


@dataclass(frozen=True)
class DeploymentManifest:
    chain_id: int
    genesis_hash: str
    contracts: dict[str, ContractDeployment]

    @property
    def evidence_anchor(self) -> ContractDeployment:
        return self.contracts[EVIDENCE_ANCHOR]

    def to_json(self) -> dict[str, Any]:
        return {
            "format": MANIFEST_FORMAT,
            "chain_id": self.chain_id,
            "genesis_hash": self.genesis_hash,
            "contracts": {name: asdict(deployment) for name, deployment in sorted(self.contracts.items())},
        }

    @classmethod
    def from_json(cls, document: Any, *, source: str = "deployment manifest") -> DeploymentManifest:
        if not isinstance(document, dict) or document.get("format") != MANIFEST_FORMAT:
            found = document.get("format") if isinstance(document, dict) else type(document).__name__
            raise ChainError(f"{source}: expected format {MANIFEST_FORMAT!r}, found {found!r}")
        try:
            contracts = {name: ContractDeployment(**fields) for name, fields in document["contracts"].items()}
            manifest = cls(int(document["chain_id"]), str(document["genesis_hash"]), contracts)
        except (KeyError, TypeError, ValueError) as error:
            raise ChainError(f"{source}: malformed ({error})") from error
        if EVIDENCE_ANCHOR not in contracts:
            raise ChainError(f"{source}: contracts.{EVIDENCE_ANCHOR} is missing")
        return manifest


def manifest_path(settings: Settings) -> Path:
    return settings.chain_dir / "deployment.json"


def read_manifest(path: Path) -> DeploymentManifest | None:
    """The manifest at ``path``, or None if there is none yet."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as error:
        raise ChainError(f"cannot read {path}: {error}") from error
    try:
        document = json.loads(text)
    except ValueError as error:
        raise ChainError(f"{path}: not JSON ({error})") from error
    return DeploymentManifest.from_json(document, source=str(path))


def write_manifest(path: Path, manifest: DeploymentManifest) -> None:
    """Writes atomically (temporary file, fsync, rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    with temporary.open("w", encoding="utf-8") as handle:
        json.dump(manifest.to_json(), handle, indent=2, sort_keys=True)
        handle.write("\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)


def check_deployment(web3: Web3, manifest: DeploymentManifest) -> None:
    """Raises ChainError for a different chain, ChainWiped if the deployment is gone."""
    deployment = manifest.evidence_anchor
    with translate_errors("check the recorded deployment"):
        chain_id = int(web3.eth.chain_id)
        genesis_hash = HexBytes(web3.eth.get_block(0)["hash"]).to_0x_hex()
        head = int(web3.eth.block_number)
        deploy_block = web3.eth.get_block(deployment.deploy_block) if deployment.deploy_block <= head else None
        code = bytes(web3.eth.get_code(checksum_address(deployment.address)))
    if chain_id != manifest.chain_id:
        raise ChainError(
            f"the endpoint serves chain id {chain_id} but EvidenceAnchor was deployed on chain id "
            f"{manifest.chain_id}; point TALLY_RPC_URL at that chain or move the data dir's chain/ away"
        )
    lost = None
    if genesis_hash != manifest.genesis_hash:
        lost = f"its genesis block is {genesis_hash}, not {manifest.genesis_hash}: this is a new chain"
    elif deploy_block is None or HexBytes(deploy_block["hash"]).to_0x_hex() != deployment.deploy_block_hash:
        lost = f"block {deployment.deploy_block} (the deployment block) is missing or different"
    elif not code:
        lost = f"there is no contract code at {deployment.address}"
    elif keccak256(code).hex() != deployment.runtime_code_keccak.removeprefix("0x"):
        lost = f"the code at {deployment.address} is not the EvidenceAnchor that was deployed"
    if lost is not None:
        raise ChainWiped(
            f"chain {chain_id} no longer holds the EvidenceAnchor recorded in the deployment manifest: {lost}. "
            "The chain was reset (for the embedded anvil: chain/anvil-state.json and anvil-genesis.json were lost), so batches "
            "anchored on it are gone too. Restore the state file, or move deployment.json away to deploy "
            "afresh and re-anchor every batch."
        )


def intent_path(manifest: Path) -> Path:
    """Where the signed deploy transaction is recorded, beside the manifest."""
    return manifest.with_name(manifest.stem + ".intent.json")


def create_address(deployer: str, nonce: int) -> str:
    """The address a contract created by ``deployer`` at ``nonce`` gets (CREATE)."""
    return checksum_address(get_create_address(checksum_address(deployer), Nonce(nonce)))


def _read_intent(path: Path) -> dict[str, Any] | None:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as error:
        raise ChainError(f"{path}: unreadable ({error}); it records a signed deploy transaction, check it by hand") from error
    if not isinstance(document, dict) or document.get("format") != INTENT_FORMAT:
        raise ChainError(f"{path}: expected format {INTENT_FORMAT!r}")
    return document


def _write_json(path: Path, document: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    with temporary.open("w", encoding="utf-8") as handle:
        json.dump(document, handle, indent=2, sort_keys=True)
        handle.write("\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)


def _sign_deployment(web3: Web3, deployer: LocalAccount, intent: dict[str, Any], fees: Fees | None) -> dict[str, str]:
    artifact = load_artifact(EVIDENCE_ANCHOR)
    factory = web3.eth.contract(abi=artifact["abi"], bytecode=artifact["bytecode"])
    if fees is None:
        tip = int(web3.eth.max_priority_fee)
        base_fee = int(web3.eth.get_block("latest").get("baseFeePerGas", 0))
        fees = Fees(2 * base_fee + tip, tip)
    transaction = factory.constructor(intent["admin"], intent["anchorer"]).build_transaction(
        {
            "from": deployer.address,
            "chainId": intent["chain_id"],
            "nonce": intent["nonce"],
            "maxFeePerGas": fees.max_fee_per_gas,
            "maxPriorityFeePerGas": fees.max_priority_fee_per_gas,
        }
    )
    signed = deployer.sign_transaction(transaction)
    return {"tx_hash": HexBytes(signed.hash).to_0x_hex(), "raw": HexBytes(signed.raw_transaction).to_0x_hex()}


def _receipt(web3: Web3, tx_hash: str) -> Any:
    try:
        return web3.eth.get_transaction_receipt(HexBytes(tx_hash))
    except TransactionNotFound:
        return None


def deploy_evidence_anchor(
    web3: Web3,
    deployer: LocalAccount,
    *,
    admin: str,
    anchorer: str,
    fees: Fees | None = None,
    timeout: float = 120.0,
    intent: Path | None = None,
) -> DeploymentManifest:
    """Deploys EvidenceAnchor from contracts/build and waits for it to be mined.

    With ``intent`` (a path), the signed transaction is recorded there before it is sent,
    and a recorded deployment of the same deployer on the same chain is finished instead
    of a new one being signed: found by its receipt, or sent again at its nonce.
    """
    artifact = load_artifact(EVIDENCE_ANCHOR)
    admin, anchorer = checksum_address(admin), checksum_address(anchorer)
    with translate_errors("deploy EvidenceAnchor", artifact["abi"]):
        chain_id = int(web3.eth.chain_id)
        genesis_hash = HexBytes(web3.eth.get_block(0)["hash"]).to_0x_hex()
        mined_nonce = int(web3.eth.get_transaction_count(deployer.address, "latest"))
        recorded = _read_intent(intent) if intent is not None else None
        if recorded is not None and (
            recorded.get("chain_id") != chain_id
            or recorded.get("genesis_hash") != genesis_hash
            or recorded.get("deployer") != deployer.address
        ):
            recorded = None  # another chain or deployer: that transaction can never be mined here
        receipt = None
        if recorded is not None:
            for attempt in reversed(recorded["transactions"]):
                receipt = _receipt(web3, attempt["tx_hash"])
                if receipt is not None:
                    break
            if receipt is None and mined_nonce > recorded["nonce"]:
                recorded = None  # its nonce went to another transaction: nothing of it was deployed
            # (below it, an earlier transaction of the deployer is still pending: the recorded
            # one can still be mined, so it is sent again rather than a second one signed)
        if receipt is None:
            if recorded is None:
                nonce = int(web3.eth.get_transaction_count(deployer.address, "pending"))
                recorded = {
                    "format": INTENT_FORMAT, "chain_id": chain_id, "genesis_hash": genesis_hash,
                    "deployer": deployer.address, "nonce": nonce, "address": create_address(deployer.address, nonce),
                    "admin": admin, "anchorer": anchorer, "transactions": [],
                }  # fmt: skip
                recorded["transactions"].append(_sign_deployment(web3, deployer, recorded, fees))
                if intent is not None:
                    _write_json(intent, recorded)  # before sending: a crash after the send finds it
            attempt = recorded["transactions"][-1]
            try:
                web3.eth.send_raw_transaction(HexBytes(attempt["raw"]))
            except (Web3RPCError, ValueError) as refused:  # e.g. its fees are below the node's base fee now
                if "already known" not in str(refused):
                    attempt = _sign_deployment(web3, deployer, recorded, None)  # same nonce, same address
                    recorded["transactions"].append(attempt)
                    if intent is not None:
                        _write_json(intent, recorded)
                    web3.eth.send_raw_transaction(HexBytes(attempt["raw"]))
            receipt = web3.eth.wait_for_transaction_receipt(HexBytes(attempt["tx_hash"]), timeout=timeout, poll_latency=0.2)
        tx_hash = HexBytes(receipt["transactionHash"]).to_0x_hex()
        created = receipt.get("contractAddress")
        if receipt["status"] != 1 or created is None:
            raise ChainError(f"the EvidenceAnchor deployment {tx_hash} reverted")
        address = checksum_address(created)
        code = bytes(web3.eth.get_code(address))
    if code != bytes(HexBytes(artifact["deployedBytecode"])):
        raise ChainError(f"the code deployed at {address} differs from contracts/build/EvidenceAnchor.json")
    deployment = ContractDeployment(
        address=address,
        deploy_tx=tx_hash,
        deploy_block=int(receipt["blockNumber"]),
        deploy_block_hash=HexBytes(receipt["blockHash"]).to_0x_hex(),
        runtime_code_keccak="0x" + keccak256(code).hex(),
        admin=recorded["admin"] if recorded is not None else admin,
        anchorer=recorded["anchorer"] if recorded is not None else anchorer,
    )
    return DeploymentManifest(chain_id, genesis_hash, {EVIDENCE_ANCHOR: deployment})


def ensure_deployed(
    web3: Web3,
    deployer: LocalAccount,
    path: Path,
    *,
    admin: str | None = None,
    anchorer: str | None = None,
    redeploy_if_wiped: bool = False,
) -> DeploymentManifest:
    """The checked deployment from ``path``; deploys and writes it the first time.

    ``admin`` and ``anchorer`` default to the deployer. A deployment recorded in the intent
    file beside ``path`` is finished, never repeated (see the module docstring), also when
    the same chain lost the blocks that held it. A wiped chain (another genesis block)
    raises ChainWiped, unless ``redeploy_if_wiped``: then the old manifest and intent are
    kept as ``deployment.wiped-<unix time>.json`` and ``….intent.json`` and a new contract
    is deployed (batch ids start again at 1, so the caller must re-anchor everything).
    """
    intent = intent_path(path)
    manifest = read_manifest(path)
    if manifest is not None:
        try:
            check_deployment(web3, manifest)
            return manifest
        except ChainWiped:
            recorded = _read_intent(intent)
            if recorded is not None and recorded.get("address") == manifest.evidence_anchor.address:
                with translate_errors("check the recorded deployment"):
                    genesis_hash = HexBytes(web3.eth.get_block(0)["hash"]).to_0x_hex()
                if genesis_hash == manifest.genesis_hash == recorded.get("genesis_hash"):
                    # The same chain, shorter: send the recorded deployment again.
                    again = deploy_evidence_anchor(
                        web3, deployer, admin=recorded["admin"], anchorer=recorded["anchorer"], intent=intent
                    )
                    if again.evidence_anchor.address == manifest.evidence_anchor.address:
                        write_manifest(path, again)
                        return again
                    raise ChainWiped(
                        f"the EvidenceAnchor of {path} ({manifest.evidence_anchor.address}) was lost with blocks of "
                        f"this chain, and its nonce went to another transaction; deployed it again at "
                        f"{again.evidence_anchor.address}: move {path.name} away to use that one and re-anchor every batch"
                    ) from None
            if not redeploy_if_wiped:
                raise
            stamp = int(time.time())
            os.replace(path, path.with_name(f"deployment.wiped-{stamp}.json"))
            if intent.exists():
                os.replace(intent, path.with_name(f"deployment.wiped-{stamp}.intent.json"))
    manifest = deploy_evidence_anchor(
        web3, deployer, admin=admin or deployer.address, anchorer=anchorer or deployer.address, intent=intent
    )
    write_manifest(path, manifest)
    return manifest


def connect_from_settings(settings: Settings, *, start_anvil: bool = True) -> Web3:
    """A Web3 on ``TALLY_RPC_URL``, or on the embedded anvil (started if needed)."""
    if settings.rpc_url is not None:
        return connect(settings.rpc_url, expected_chain_id=settings.chain_id)
    node = AnvilNode.from_settings(settings)
    if start_anvil:
        node.start()
    return connect(node.url, expected_chain_id=settings.chain_id)


def open_evidence_client(settings: Settings) -> EvidenceAnchorClient:
    """The anchoring client for this data directory: connect (starting the embedded anvil
    when no ``TALLY_RPC_URL`` is set), load the anchorer key, and deploy EvidenceAnchor the
    first time (afterwards the deployment manifest finds it again)."""
    from wallets.keystore import load_or_create_signer

    web3 = connect_from_settings(settings)
    signer = load_or_create_signer(settings, "anchorer")
    if settings.rpc_url is None or is_local_url(settings.rpc_url):
        fund_on_local_chain(web3, signer.address)
    deployment = ensure_deployed(web3, signer, manifest_path(settings)).evidence_anchor
    return EvidenceAnchorClient.from_settings(
        settings, web3, deployment.address, signer=signer, deploy_block=deployment.deploy_block
    )


def fund_on_local_chain(web3: Web3, address: str, *, minimum_wei: int = 10 * 10**18) -> None:
    """Tops ``address`` up to ``minimum_wei`` with ``anvil_setBalance``; local anvil only."""
    endpoint = getattr(web3.provider, "endpoint_uri", None)
    if endpoint is None or not is_local_url(str(endpoint)):
        raise ChainError(f"refusing to mint ether on {endpoint}: funding by anvil_setBalance is for the local anvil only")
    address = checksum_address(address)
    with translate_errors(f"fund {address} on the local chain"):
        if int(web3.eth.get_balance(address)) >= minimum_wei:
            return
        response = web3.provider.make_request("anvil_setBalance", [address, hex(minimum_wei)])  # type: ignore[arg-type]
    if "error" in response:
        raise ChainError(f"anvil_setBalance failed: {response['error']}")
