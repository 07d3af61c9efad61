"""Reading a deployed EvidenceAnchor (contracts/EvidenceAnchor.sol): roots, events, proofs.

Read-only: :class:`EvidenceAnchorReader` never signs or sends a transaction, so it is all
an auditor needs of the chain (``ledger.audit.auditor.ChainReader``).

* :meth:`~EvidenceAnchorReader.get_root` reads the contract's ``batch(N)`` (None if not
  anchored); :meth:`~EvidenceAnchorReader.get_batch` adds the ``BatchAnchored`` event of
  batch N (record count, manifest CID, transaction, block number and hash), found by its
  batch-id topic from the deployment block on; :meth:`~EvidenceAnchorReader.anchored_events`
  scans a block range.
* :meth:`~EvidenceAnchorReader.verify` asks the contract whether a proof leads from a leaf
  to a batch's root (``ledger.errors.NotFound`` for a batch not anchored).

Every web3 / HTTP failure becomes :class:`ledger.errors.ChainError`, a refusal by the
contract :class:`ledger.chain.reverts.ContractReverted`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any, cast

from eth_typing import ChecksumAddress
from hexbytes import HexBytes
from web3 import Web3

from ledger.chain.artifacts import load_artifact
from ledger.chain.reverts import ContractReverted, translate_errors
from ledger.core.hashing import checksum_address, keccak256
from ledger.errors import ChainError, NotFound

__all__ = ["ANCHORER_ROLE", "AnchoredBatch", "EvidenceAnchorReader", "check_bytes32", "to_0x_hex"]

ANCHORER_ROLE = keccak256(b"ANCHORER_ROLE")


@dataclass(frozen=True)
class AnchoredBatch:
    """One ``BatchAnchored`` log: an anchored batch and where its transaction sits on the chain."""

    batch_id: int
    root: bytes
    record_count: int
    manifest_cid: str
    tx_hash: str
    block_number: int
    block_hash: str
    log_index: int


class EvidenceAnchorReader:
    """Reads one deployed EvidenceAnchor; ``deploy_block`` is where event searches start."""

    def __init__(
        self,
        web3: Web3,
        address: str,
        *,
        abi: Sequence[dict[str, Any]] | None = None,
        deploy_block: int = 0,
    ) -> None:
        self.web3 = web3
        self.deploy_block = deploy_block
        self.address = cast(ChecksumAddress, checksum_address(address))
        self.abi = list(abi if abi is not None else load_artifact()["abi"])
        self.contract = web3.eth.contract(address=self.address, abi=self.abi)

    @cached_property
    def chain_id(self) -> int:
        with translate_errors("read the chain id"):
            return int(self.web3.eth.chain_id)

    def head_block(self) -> int:
        with translate_errors("read the head block number"):
            return int(self.web3.eth.block_number)

    def next_batch_id(self) -> int:
        with translate_errors("read nextBatchId()", self.abi):
            return int(self.contract.functions.nextBatchId().call())

    def get_root(self, batch_id: int) -> bytes | None:
        """The anchored root of ``batch_id`` (the contract's ``batch(id)``), or None if not anchored."""
        try:
            with translate_errors(f"read batch({batch_id})", self.abi):
                root = self.contract.functions.batch(batch_id).call()
        except ContractReverted as error:
            if error.error_name == "UnknownBatch":
                return None
            raise
        return bytes(root)

    def get_batch(self, batch_id: int, *, from_block: int | None = None) -> AnchoredBatch | None:
        """Batch ``batch_id`` as anchored (root from storage, the rest from its event), or None.

        Searches logs from ``from_block`` (default: the deployment block) to the head.
        """
        root = self.get_root(batch_id)
        if root is None:
            return None
        start = self.deploy_block if from_block is None else from_block
        for event in self.anchored_events(start, batch_id=batch_id):
            if event.root == root:
                return event
        raise ChainError(
            f"batch {batch_id} is anchored with root 0x{root.hex()} but no BatchAnchored event for it was "
            f"found from block {start} on; search from an earlier block, or the node's log index is incomplete"
        )

    def verify(self, batch_id: int, leaf: bytes, proof: Sequence[bytes]) -> bool:
        """The contract's answer: does ``proof`` lead from ``leaf`` to batch ``batch_id``'s root?

        Raises NotFound if the batch is not anchored.
        """
        check_bytes32(leaf, "leaf")
        for index, sibling in enumerate(proof):
            check_bytes32(sibling, f"proof[{index}]")
        try:
            with translate_errors(f"call verify({batch_id}, ...)", self.abi):
                return bool(self.contract.functions.verify(batch_id, leaf, list(proof)).call())
        except ContractReverted as error:
            if error.error_name == "UnknownBatch":
                raise NotFound(f"batch {batch_id} is not anchored on chain {self.chain_id} at {self.address}") from error
            raise

    def has_anchorer_role(self, account: str) -> bool:
        with translate_errors("read hasRole(ANCHORER_ROLE, ...)", self.abi):
            return bool(self.contract.functions.hasRole(ANCHORER_ROLE, checksum_address(account)).call())

    def anchored_events(
        self, from_block: int, to_block: int | None = None, *, batch_id: int | None = None, max_range: int = 10_000
    ) -> list[AnchoredBatch]:
        """``BatchAnchored`` events in ``[from_block, to_block]`` (default: up to the head), oldest first.

        Queried in chunks of ``max_range`` blocks, the limit many RPC providers impose.
        """
        last = self.head_block() if to_block is None else to_block
        filters = {"batchId": batch_id} if batch_id is not None else None
        events: list[AnchoredBatch] = []
        start = from_block
        while start <= last:
            end = min(start + max_range - 1, last)
            with translate_errors(f"read BatchAnchored logs in blocks {start}-{end}", self.abi):
                logs = self.contract.events.BatchAnchored.get_logs(from_block=start, to_block=end, argument_filters=filters)
            events.extend(_event(log) for log in logs)
            start = end + 1
        return events


def _event(log: Any) -> AnchoredBatch:
    arguments = log["args"]
    return AnchoredBatch(
        batch_id=int(arguments["batchId"]),
        root=bytes(arguments["root"]),
        record_count=int(arguments["recordCount"]),
        manifest_cid=str(arguments["manifestCid"]),
        tx_hash=to_0x_hex(log["transactionHash"]),
        block_number=int(log["blockNumber"]),
        block_hash=to_0x_hex(log["blockHash"]),
        log_index=int(log["logIndex"]),
    )


def to_0x_hex(value: bytes | str) -> str:
    """Bytes or hex text as lowercase ``0x``-hex, how hashes are shown and compared here."""
    return HexBytes(value).to_0x_hex()


def check_bytes32(value: object, name: str) -> None:
    """``ValueError`` unless ``value`` is 32 bytes (a leaf, a sibling, a root)."""
    if not isinstance(value, bytes | bytearray) or len(value) != 32:
        raise ValueError(f"{name} must be 32 bytes, got {value!r}")
