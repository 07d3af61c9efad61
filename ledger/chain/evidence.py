"""Sending anchors to the EvidenceAnchor contract (contracts/EvidenceAnchor.sol) on web3 7.

Built for a crash-safe anchoring worker:

* **Sign, store, then send.** :meth:`EvidenceAnchorClient.sign_anchor` returns a
  :class:`SignedAnchor` (raw transaction, its hash, nonce and fees) without touching the
  network beyond reading the nonce and fees it is not given. Persist it, then
  :meth:`~EvidenceAnchorClient.send` it. Sending the same one again is harmless
  ("already known" counts as sent), so a worker that crashed between the two steps just
  sends again. :meth:`~EvidenceAnchorClient.anchor` does both in one call.
* **Explicit nonces and replacement.** Pass ``nonce=`` to pin it; :meth:`replace` re-signs
  the same call at the same nonce with fees raised by at least 12.5 % (nodes ask for 10 %).
* **Inclusion and reorgs.** :meth:`get_inclusion` gives block number and block hash of a
  mined transaction; :meth:`confirmations` is 0 once that block left the canonical chain.

The client is an :class:`ledger.chain.reader.EvidenceAnchorReader` too (roots, events,
``verify``; without a signer it only reads). The rest of the chain room, whose names stay
importable from here: ``ledger.chain.artifacts`` (``load_artifact``), ``ledger.chain.reverts``
(``ContractReverted``, ``decode_revert``, ``translate_errors``) and ``ledger.chain.connection``
(``connect``, ``is_local_url``).

Every web3 / HTTP failure becomes :class:`ledger.errors.ChainError`; a refusal by the
contract becomes :class:`ContractReverted` (a ChainError) naming the Solidity error and its
arguments, e.g. ``BatchOutOfOrder(expected=7, given=6)``. Unknown batches are ``None``
from :meth:`get_batch` and :class:`ledger.errors.NotFound` from :meth:`verify`.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from eth_account.signers.local import LocalAccount
from hexbytes import HexBytes
from web3 import Web3
from web3.exceptions import BlockNotFound, TransactionNotFound

from ledger.chain.artifacts import ARTIFACTS_DIR, load_artifact
from ledger.chain.connection import connect, is_local_url
from ledger.chain.reader import ANCHORER_ROLE, AnchoredBatch, EvidenceAnchorReader, check_bytes32, to_0x_hex
from ledger.chain.reverts import ContractReverted, decode_revert, translate_errors
from ledger.errors import ChainError
from ledger.settings import Settings

__all__ = [
    "ANCHORER_ROLE",
    "ARTIFACTS_DIR",
    "AnchoredBatch",
    "ContractReverted",
    "EvidenceAnchorClient",
    "Fees",
    "Inclusion",
    "SignedAnchor",
    "connect",
    "decode_revert",
    "is_local_url",
    "load_artifact",
    "translate_errors",
]

# How geth, anvil, Nethermind and Besu say "I have this transaction already" (spaces removed).
_ALREADY_SENT = ("alreadyknown", "alreadyimported", "knowntransaction")
GWEI = 10**9
_UINT64_MAX = 2**64 - 1


# -- data -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Fees:
    """EIP-1559 fees, in wei."""

    max_fee_per_gas: int
    max_priority_fee_per_gas: int

    def bumped(self) -> Fees:
        """Both fees x 1.125, rounded up: enough for any node to accept a replacement."""
        return Fees(_bump(self.max_fee_per_gas), _bump(self.max_priority_fee_per_gas))

    def at_least(self, other: Fees) -> Fees:
        return Fees(
            max(self.max_fee_per_gas, other.max_fee_per_gas),
            max(self.max_priority_fee_per_gas, other.max_priority_fee_per_gas),
        )


@dataclass(frozen=True)
class SignedAnchor:
    """A signed ``anchor`` transaction, ready to store and (re)send."""

    batch_id: int
    root: bytes
    record_count: int
    manifest_cid: str
    sender: str
    nonce: int
    fees: Fees
    gas_limit: int
    tx_hash: str
    raw_transaction: bytes

    def to_json(self) -> dict[str, object]:
        """A JSON-ready dict (bytes as 0x-hex), for the worker to store before sending."""
        return {
            "batch_id": self.batch_id,
            "root": "0x" + self.root.hex(),
            "record_count": self.record_count,
            "manifest_cid": self.manifest_cid,
            "sender": self.sender,
            "nonce": self.nonce,
            "max_fee_per_gas": self.fees.max_fee_per_gas,
            "max_priority_fee_per_gas": self.fees.max_priority_fee_per_gas,
            "gas_limit": self.gas_limit,
            "tx_hash": self.tx_hash,
            "raw_transaction": "0x" + self.raw_transaction.hex(),
        }

    @classmethod
    def from_json(cls, document: dict[str, Any]) -> SignedAnchor:
        return cls(
            batch_id=int(document["batch_id"]),
            root=bytes(HexBytes(document["root"])),
            record_count=int(document["record_count"]),
            manifest_cid=str(document["manifest_cid"]),
            sender=str(document["sender"]),
            nonce=int(document["nonce"]),
            fees=Fees(int(document["max_fee_per_gas"]), int(document["max_priority_fee_per_gas"])),
            gas_limit=int(document["gas_limit"]),
            tx_hash=str(document["tx_hash"]),
            raw_transaction=bytes(HexBytes(document["raw_transaction"])),
        )


@dataclass(frozen=True)
class Inclusion:
    """Where a transaction was mined, and whether it succeeded."""

    tx_hash: str
    block_number: int
    block_hash: str
    succeeded: bool
    gas_used: int
    effective_gas_price: int


# -- client -----------------------------------------------------------------------------


class EvidenceAnchorClient(EvidenceAnchorReader):
    """Reads and writes one deployed EvidenceAnchor. Writing needs a ``signer``."""

    def __init__(
        self,
        web3: Web3,
        address: str,
        *,
        signer: LocalAccount | None = None,
        abi: Sequence[dict[str, Any]] | None = None,
        gas_limit: int = 200_000,
        max_fee_per_gas: int | None = None,
        max_priority_fee_per_gas: int | None = None,
        confirmations: int = 1,
        deploy_block: int = 0,
    ) -> None:
        super().__init__(web3, address, abi=abi, deploy_block=deploy_block)
        self.signer = signer
        self.gas_limit = gas_limit
        self.max_fee_per_gas = max_fee_per_gas
        self.max_priority_fee_per_gas = max_priority_fee_per_gas
        self.confirmations_required = confirmations

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        web3: Web3,
        address: str,
        *,
        signer: LocalAccount | None = None,
        deploy_block: int = 0,
    ) -> EvidenceAnchorClient:
        """Gas limit, fee caps (gwei) and confirmations from ``TALLY_*`` settings.

        ``deploy_block`` (from the deployment manifest) is where event searches start.
        """
        return cls(
            web3,
            address,
            signer=signer,
            deploy_block=deploy_block,
            gas_limit=settings.gas_limit_anchor,
            max_fee_per_gas=_gwei(settings.max_fee_gwei),
            max_priority_fee_per_gas=_gwei(settings.priority_fee_gwei),
            confirmations=settings.confirmations,
        )

    # -- fees and nonces ---------------------------------------------------------------

    def pending_nonce(self) -> int:
        """The next nonce of the signer, counting transactions still in the mempool."""
        with translate_errors("read the signer's pending nonce"):
            return int(self.web3.eth.get_transaction_count(self._signer().address, "pending"))

    def mined_nonce(self) -> int:
        """The signer's nonce as of the latest block (transactions below it are mined)."""
        with translate_errors("read the signer's nonce"):
            return int(self.web3.eth.get_transaction_count(self._signer().address, "latest"))

    def suggest_fees(self) -> Fees:
        """The configured caps, or else: tip from the node, max fee = 2 x base fee + tip."""
        if self.max_fee_per_gas is not None and self.max_priority_fee_per_gas is not None:
            return Fees(self.max_fee_per_gas, self.max_priority_fee_per_gas)
        with translate_errors("read current fees"):
            tip = self.max_priority_fee_per_gas
            if tip is None:
                tip = int(self.web3.eth.max_priority_fee)
            base_fee = int(self.web3.eth.get_block("latest").get("baseFeePerGas", 0))
        max_fee = self.max_fee_per_gas if self.max_fee_per_gas is not None else 2 * base_fee + tip
        return Fees(max_fee, min(tip, max_fee))

    # -- writes ------------------------------------------------------------------------

    def sign_anchor(
        self,
        batch_id: int,
        root: bytes,
        record_count: int,
        manifest_cid: str,
        *,
        nonce: int | None = None,
        fees: Fees | None = None,
        gas_limit: int | None = None,
    ) -> SignedAnchor:
        """Signs ``anchor(batch_id, root, record_count, manifest_cid)`` without sending it."""
        _check_anchor_arguments(batch_id, root, record_count, manifest_cid)
        signer = self._signer()
        nonce = self.pending_nonce() if nonce is None else nonce
        fees = self.suggest_fees() if fees is None else fees
        gas_limit = self.gas_limit if gas_limit is None else gas_limit
        data = self.contract.encode_abi("anchor", args=[batch_id, root, record_count, manifest_cid])
        transaction = {
            "type": 2,
            "chainId": self.chain_id,
            "nonce": nonce,
            "to": self.address,
            "value": 0,
            "data": data,
            "gas": gas_limit,
            "maxFeePerGas": fees.max_fee_per_gas,
            "maxPriorityFeePerGas": fees.max_priority_fee_per_gas,
        }
        signed = signer.sign_transaction(transaction)
        return SignedAnchor(
            batch_id=batch_id,
            root=bytes(root),
            record_count=record_count,
            manifest_cid=manifest_cid,
            sender=signer.address,
            nonce=nonce,
            fees=fees,
            gas_limit=gas_limit,
            tx_hash=to_0x_hex(signed.hash),
            raw_transaction=bytes(signed.raw_transaction),
        )

    def simulate_anchor(self, batch_id: int, root: bytes, record_count: int, manifest_cid: str) -> None:
        """Runs ``anchor`` as a call from the signer against the latest block.

        Raises ContractReverted naming the reason it would fail (``BatchOutOfOrder``,
        ``AccessControlUnauthorizedAccount``...). With earlier anchors still pending it
        reports ``BatchOutOfOrder``: simulate only the batch after the last mined one.
        """
        _check_anchor_arguments(batch_id, root, record_count, manifest_cid)
        call = self.contract.functions.anchor(batch_id, root, record_count, manifest_cid)
        with translate_errors(f"simulate anchor({batch_id}, ...)", self.abi):
            call.call({"from": self._signer().address})

    def send(self, signed: SignedAnchor) -> str:
        """Broadcasts ``signed``; returns its hash.

        Sending the same transaction again is fine, also after it was mined. A different
        transaction holding the nonce raises ChainError ("nonce too low").
        """
        try:
            with translate_errors(f"send the anchor of batch {signed.batch_id} (nonce {signed.nonce})", self.abi):
                self.web3.eth.send_raw_transaction(signed.raw_transaction)
        except ChainError as error:
            message = str(error).lower().replace(" ", "")
            if any(phrase in message for phrase in _ALREADY_SENT):
                return signed.tx_hash
            if "noncetoolow" in message and self.get_inclusion(signed.tx_hash) is not None:
                return signed.tx_hash  # this very transaction was mined already
            raise
        return signed.tx_hash

    def anchor(
        self,
        batch_id: int,
        root: bytes,
        record_count: int,
        manifest_cid: str,
        *,
        nonce: int | None = None,
        fees: Fees | None = None,
        gas_limit: int | None = None,
        simulate: bool = True,
    ) -> SignedAnchor:
        """Signs and sends an anchor; returns at once (its ``tx_hash`` is known before sending).

        With ``simulate`` the call is first run against the latest block, so a batch out of
        order or a missing role fails here with ContractReverted instead of burning gas.
        """
        if simulate:
            self.simulate_anchor(batch_id, root, record_count, manifest_cid)
        signed = self.sign_anchor(batch_id, root, record_count, manifest_cid, nonce=nonce, fees=fees, gas_limit=gas_limit)
        self.send(signed)
        return signed

    def replace(self, previous: SignedAnchor, *, fees: Fees | None = None) -> SignedAnchor:
        """Re-sends ``previous``'s call at the same nonce with higher fees (a stuck transaction).

        Fees are at least ``previous`` x 1.125 and at least the current suggestion.
        """
        floor = previous.fees.bumped()
        new_fees = (fees or self.suggest_fees()).at_least(floor)
        replacement = self.sign_anchor(
            previous.batch_id,
            previous.root,
            previous.record_count,
            previous.manifest_cid,
            nonce=previous.nonce,
            fees=new_fees,
            gas_limit=previous.gas_limit,
        )
        self.send(replacement)
        return replacement

    # -- receipts ----------------------------------------------------------------------

    def get_inclusion(self, tx_hash: str) -> Inclusion | None:
        """Where ``tx_hash`` was mined, or None while it is pending or unknown to the node."""
        with translate_errors(f"read the receipt of {tx_hash}"):
            try:
                receipt = self.web3.eth.get_transaction_receipt(HexBytes(tx_hash))
            except TransactionNotFound:
                return None
        return Inclusion(
            tx_hash=to_0x_hex(receipt["transactionHash"]),
            block_number=int(receipt["blockNumber"]),
            block_hash=to_0x_hex(receipt["blockHash"]),
            succeeded=receipt["status"] == 1,
            gas_used=int(receipt["gasUsed"]),
            effective_gas_price=int(receipt.get("effectiveGasPrice", 0)),
        )

    def is_canonical(self, block_number: int, block_hash: str) -> bool:
        """True while block ``block_number`` of the canonical chain is still ``block_hash``."""
        with translate_errors(f"read block {block_number}"):
            try:
                block = self.web3.eth.get_block(block_number)
            except BlockNotFound:
                return False
        return to_0x_hex(block["hash"]) == HexBytes(block_hash).to_0x_hex()

    def confirmations(self, inclusion: Inclusion) -> int:
        """Blocks on top of the inclusion block, counting it; 0 if it was reorganised away."""
        head = self.head_block()
        if not self.is_canonical(inclusion.block_number, inclusion.block_hash):
            return 0
        return max(0, head - inclusion.block_number + 1)

    def is_final(self, inclusion: Inclusion) -> bool:
        """Mined, still canonical and buried under ``TALLY_CONFIRMATIONS`` blocks."""
        return self.confirmations(inclusion) >= max(1, self.confirmations_required)

    def wait_for_inclusion(self, tx_hash: str, *, timeout: float = 120.0, poll_interval: float = 0.5) -> Inclusion:
        """Polls until ``tx_hash`` is mined (not necessarily final); ChainError on timeout."""
        deadline = time.monotonic() + timeout
        while True:
            inclusion = self.get_inclusion(tx_hash)
            if inclusion is not None:
                return inclusion
            if time.monotonic() >= deadline:
                raise ChainError(f"transaction {tx_hash} was not mined within {timeout:g}s")
            time.sleep(poll_interval)

    def _signer(self) -> LocalAccount:
        if self.signer is None:
            raise ChainError("this EvidenceAnchorClient has no signer; pass signer= to send transactions")
        return self.signer


def _bump(wei: int) -> int:
    return (wei * 9 + 7) // 8  # ceil(wei * 1.125), in integers


def _gwei(value: float | None) -> int | None:
    return None if value is None else round(value * GWEI)


def _check_anchor_arguments(batch_id: int, root: bytes, record_count: int, manifest_cid: str) -> None:
    """The contract's own preconditions, checked before anything is signed."""
    if batch_id < 1:
        raise ValueError(f"batch_id must be 1 or more (batches start at 1), got {batch_id}")
    check_bytes32(root, "root")
    if not any(root):
        raise ValueError(f"root of batch {batch_id} is zero; the contract refuses zero roots")
    if not 1 <= record_count <= _UINT64_MAX:
        raise ValueError(f"record_count of batch {batch_id} must be between 1 and 2**64 - 1, got {record_count}")
    if not manifest_cid:
        raise ValueError(f"manifest_cid of batch {batch_id} is empty")
