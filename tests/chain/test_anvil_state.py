"""The embedded anvil's state files (``ledger.chain.anvil_state``), without starting anvil:
the genesis record, dump promotion, torn dumps and the repair of several blocks 0."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ledger.chain.anvil_state import GENESIS_FORMAT, AnvilState, repair_state_document
from ledger.errors import ChainError


def block(number: int, timestamp: int) -> dict[str, object]:
    return {"header": {"number": hex(number), "timestamp": hex(timestamp)}}


def state_document(*blocks: dict[str, object]) -> dict[str, object]:
    return {"accounts": {}, "blocks": list(blocks)}


def test_a_new_chain_records_its_genesis_timestamp(tmp_path: Path) -> None:
    state = AnvilState(tmp_path, 31337)
    genesis_timestamp, load_state = state.prepare()
    assert not load_state
    assert json.loads(state.genesis_file.read_text()) == {
        "format": GENESIS_FORMAT,
        "chain_id": 31337,
        "genesis_timestamp": genesis_timestamp,
    }
    assert state.prepare() == (genesis_timestamp, False)  # a lost state: the same chain again


def test_a_complete_dump_becomes_the_state_and_a_torn_one_is_set_aside(tmp_path: Path) -> None:
    state = AnvilState(tmp_path, 31337)
    state.dump_file.write_text(json.dumps(state_document(block(0, 1_700_000_000), block(1, 1_700_000_012))))
    assert state.prepare() == (1_700_000_000, True)
    assert not state.dump_file.exists() and state.state_file.is_file()
    state.dump_file.write_text('{"blocks": [{"header": {"number": "0x')
    assert state.prepare() == (1_700_000_000, True)
    assert (tmp_path / "anvil-state.dump.torn.json").is_file()


def test_several_blocks_0_keep_the_earliest(tmp_path: Path) -> None:
    document = state_document(block(0, 30), block(0, 10), block(1, 11), block(0, 20))
    repaired, dropped = repair_state_document(document)
    assert dropped == 2 and repaired["blocks"] == [block(0, 10), block(1, 11)]
    assert repair_state_document(repaired) == (repaired, 0)
    state = AnvilState(tmp_path, 31337)
    state.state_file.write_text(json.dumps(document))
    assert state.prepare() == (10, True)
    assert json.loads(state.state_file.read_text())["blocks"] == [block(0, 10), block(1, 11)]
    assert (tmp_path / "anvil-state.before-repair.json").is_file()


def test_unusable_files_are_refused_with_what_to_do(tmp_path: Path) -> None:
    state = AnvilState(tmp_path, 31337)
    state.state_file.write_text("{")
    with pytest.raises(ChainError, match="not a complete anvil state"):
        state.prepare()
    state.state_file.unlink()
    state.genesis_file.write_text(json.dumps({"format": GENESIS_FORMAT, "chain_id": 1, "genesis_timestamp": 5}))
    with pytest.raises(ChainError, match="set TALLY_CHAIN_ID=1 or use another data directory"):
        state.prepare()
