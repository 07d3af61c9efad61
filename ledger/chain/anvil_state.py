"""The state files of the embedded anvil, kept in ``settings.chain_dir``:

    chain/anvil-state.json       the chain (accounts, blocks, receipts, logs) as of the last
                                 start or clean stop; anvil only reads it (``--load-state``)
    chain/anvil-state.dump.json  what anvil writes every ``state_interval_seconds`` and on a
                                 clean stop (``--dump-state``); promoted to anvil-state.json
                                 at the next start or stop
    chain/anvil-genesis.json     ``tally-anvil-genesis-v1``: the chain id and the timestamp of
                                 block 0, so that every start builds the same genesis block
    chain/anvil-cache/           anvil's state cache (instead of ~/.foundry)
    chain/anvil.pid              "<pid> <port>" of the running process
    chain/anvil.log              its output

Why it is done so (anvil 1.7.1):

- anvil builds a genesis block from the clock at every start, then adds the blocks of the
  state it loads, and dumps both. With ``--state`` alone each restart added one more block
  0 to the file, and which one the node served changed from start to start (a "new chain"
  to the deployment check). Every start here passes the genesis timestamp of this chain
  (``--timestamp``), so the genesis block it builds is the one in the state file, and then
  sets the node's clock back to the wall clock (``evm_setTime``). A state file that an
  older version left with several blocks 0 is repaired at start: the earliest is the chain's
  (every later one was built by a later start), the others are dropped.
- anvil rewrites its dump in place (truncate, then write). Reading one file and dumping to
  another keeps a complete state on disk at every moment: a kill -9 loses at most the last
  ``state_interval_seconds`` of blocks, or, if it strikes while the dump is being written,
  the blocks since the last start. The chain is then a shorter version of the same chain
  (same genesis): the deployment is re-sent from its recorded signed transaction
  (:mod:`ledger.chain.deploy`) and the anchoring worker re-anchors the batches the contract
  no longer holds (:mod:`ledger.sealing.anchoring`).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from ledger.errors import ChainError

__all__ = ["GENESIS_FORMAT", "AnvilState", "repair_state_document"]

log = logging.getLogger("tally.chain")

GENESIS_FORMAT = "tally-anvil-genesis-v1"


@dataclass(frozen=True)
class AnvilState:
    """The state files of the anvil of ``chain_dir``, running chain ``chain_id``."""

    chain_dir: Path
    chain_id: int

    @property
    def state_file(self) -> Path:
        return self.chain_dir / "anvil-state.json"

    @property
    def dump_file(self) -> Path:
        return self.chain_dir / "anvil-state.dump.json"

    @property
    def genesis_file(self) -> Path:
        return self.chain_dir / "anvil-genesis.json"

    def prepare(self) -> tuple[int, bool]:
        """Before a start: the genesis timestamp of this chain, and whether there is a state to load.

        Promotes a complete dump to the state file, repairs a state file holding several
        blocks 0, and records the genesis timestamp (a new chain takes the clock's).
        Raises ChainError if the state file is unreadable.
        """
        self.promote_dump()
        document = None
        if self.state_file.exists():
            document = _read_state(self.state_file)
            if document is None:
                raise ChainError(
                    f"{self.state_file} is not a complete anvil state (truncated or not JSON); restore it "
                    f"from a backup, or move it away to start the chain again from its genesis block"
                )
            repaired, dropped = repair_state_document(document)
            if dropped:
                backup = self.state_file.with_name("anvil-state.before-repair.json")
                shutil.copy2(self.state_file, backup)
                _write_json_atomically(self.state_file, repaired)
                log.warning(
                    "%s held %s blocks 0; kept the chain's own (timestamp %s), dropped %s (copy kept in %s)",
                    self.state_file,
                    dropped + 1,
                    _genesis_timestamp(repaired),
                    dropped,
                    backup.name,
                )
            document = repaired
        recorded = self.recorded_genesis_timestamp()
        if document is not None:
            genesis_timestamp = _genesis_timestamp(document)
        elif recorded is not None:
            genesis_timestamp = recorded  # the state was lost: the same chain, from its genesis again
            log.warning("%s is missing: anvil starts this chain again from its genesis block", self.state_file)
        else:
            genesis_timestamp = int(time.time())
        if recorded != genesis_timestamp:
            _write_json_atomically(
                self.genesis_file,
                {"format": GENESIS_FORMAT, "chain_id": self.chain_id, "genesis_timestamp": genesis_timestamp},
            )
        return genesis_timestamp, document is not None

    def recorded_genesis_timestamp(self) -> int | None:
        try:
            document = json.loads(self.genesis_file.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as error:
            raise ChainError(f"{self.genesis_file}: unreadable ({error}); move it away to start afresh") from error
        if not isinstance(document, dict) or document.get("format") != GENESIS_FORMAT:
            raise ChainError(f"{self.genesis_file}: expected format {GENESIS_FORMAT!r}")
        if document.get("chain_id") != self.chain_id:
            raise ChainError(
                f"{self.genesis_file} records chain id {document.get('chain_id')}, but this node runs chain id "
                f"{self.chain_id}; set TALLY_CHAIN_ID={document.get('chain_id')} or use another data directory"
            )
        timestamp = document.get("genesis_timestamp")
        if not isinstance(timestamp, int) or isinstance(timestamp, bool) or timestamp <= 0:
            raise ChainError(f"{self.genesis_file}: genesis_timestamp must be a positive integer, not {timestamp!r}")
        return timestamp

    def promote_dump(self) -> None:
        """A complete dump becomes the state file; a torn one (kill -9 while writing) is set aside."""
        if not self.dump_file.exists():
            return
        document = _read_state(self.dump_file)
        if document is None:
            torn = self.dump_file.with_name("anvil-state.dump.torn.json")
            os.replace(self.dump_file, torn)
            log.warning(
                "%s is incomplete (anvil was killed while writing it); set aside as %s, the chain restarts from %s",
                self.dump_file,
                torn.name,
                self.state_file,
            )
            return
        repaired, dropped = repair_state_document(document)
        if dropped:
            _write_json_atomically(self.state_file, repaired)
            self.dump_file.unlink()
        else:
            with self.dump_file.open("rb") as handle:
                os.fsync(handle.fileno())
            os.replace(self.dump_file, self.state_file)


def repair_state_document(document: dict[str, object]) -> tuple[dict[str, object], int]:
    """The state with one block 0, the earliest, and how many others were dropped.

    Each start of anvil before this module passed ``--timestamp`` built a new genesis block
    from the clock and dumped it beside the loaded ones; the chain's own is the earliest.
    """
    blocks = document.get("blocks")
    if not isinstance(blocks, list):
        return document, 0
    genesis = [block for block in blocks if _block_number(block) == 0]
    if len(genesis) <= 1:
        return document, 0
    keep = min(genesis, key=lambda block: int(block["header"]["timestamp"], 16))
    repaired = dict(document)
    repaired["blocks"] = [block for block in blocks if _block_number(block) != 0 or block is keep]
    return repaired, len(genesis) - 1


def _block_number(block: object) -> int | None:
    try:
        return int(block["header"]["number"], 16)  # type: ignore[index]
    except (KeyError, TypeError, ValueError):
        return None


def _genesis_timestamp(document: dict[str, object]) -> int:
    blocks = document.get("blocks")
    for block in blocks if isinstance(blocks, list) else []:
        if _block_number(block) == 0:
            return int(block["header"]["timestamp"], 16)
    raise ChainError("the anvil state holds no genesis block")


def _read_state(path: Path) -> dict[str, object] | None:
    """The parsed anvil state, or None if it is not a complete one."""
    try:
        document = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return None
    if not isinstance(document, dict) or not isinstance(document.get("blocks"), list):
        return None
    if not any(_block_number(block) == 0 for block in document["blocks"]):
        return None
    return document


def _write_json_atomically(path: Path, document: object) -> None:
    temporary = path.with_name(path.name + ".tmp")
    with temporary.open("w", encoding="utf-8") as handle:
        json.dump(document, handle)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)
