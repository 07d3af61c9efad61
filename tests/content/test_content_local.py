"""LocalBlockStore, the DAG walker, cid_of_path and open_content_store."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.content import KuboStore, LocalBlockStore, open_content_store
from ledger.content.cli_helpers import cid_of_path
from ledger.content.local import block_links, iter_dag_blocks
from ledger.content.store import ContentStore
from ledger.core import dagcbor
from ledger.core.cid import CID, DAG_CBOR, DAG_JSON, DAG_PB, RAW
from ledger.core.unixfs import CHUNK_SIZE, file_cid, iter_file_blocks
from ledger.errors import BlockNotFound, ContentStoreError, InvalidCID, InvalidEncoding
from ledger.settings import Settings


@pytest.fixture()
def store(tmp_path: Path) -> LocalBlockStore:
    return LocalBlockStore(tmp_path / "blocks")


def test_is_a_content_store(store: LocalBlockStore) -> None:
    assert isinstance(store, ContentStore)


def test_block_round_trip(store: LocalBlockStore) -> None:
    cid = CID.of(RAW, b"evidence")
    assert not store.has_block(cid)
    store.put_block(cid, b"evidence")
    store.put_block(cid, b"evidence")  # idempotent
    assert store.has_block(cid)
    assert store.get_block(cid) == b"evidence"
    # found whatever codec the CID names (blocks are keyed by multihash, like Kubo)
    assert store.get_block(CID(1, DAG_PB, cid.multihash)) == b"evidence"
    path = store.path_of(cid)
    assert path.parent.parent == store.root and len(path.parent.name) == 2
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temp files left


def test_put_refuses_a_block_that_does_not_hash_to_its_cid(store: LocalBlockStore) -> None:
    cid = CID.of(RAW, b"right")
    with pytest.raises(InvalidCID, match=str(cid)):
        store.put_block(cid, b"wrong")
    assert not store.has_block(cid)


def test_put_refuses_other_hash_functions(store: LocalBlockStore) -> None:
    blake = CID(1, RAW, bytes((0xB2, 0x40, 0x20)) + bytes(32))  # blake2b-256
    with pytest.raises(InvalidCID, match="sha2-256"):
        store.put_block(blake, b"x")


def test_missing_block(store: LocalBlockStore) -> None:
    cid = CID.of(RAW, b"absent")
    with pytest.raises(BlockNotFound, match=str(cid)):
        store.get_block(cid)


def test_tampered_block_is_reported_with_its_cid(store: LocalBlockStore) -> None:
    cid = CID.of(RAW, b"photo of the tally sheet")
    store.put_block(cid, b"photo of the tally sheet")
    store.path_of(cid).write_bytes(b"photo of a forged sheet!")
    with pytest.raises(ContentStoreError, match=f"block {cid} .* is corrupt"):
        store.get_block(cid)
    # storing the real block again repairs it
    store.put_block(cid, b"photo of the tally sheet")
    assert store.get_block(cid) == b"photo of the tally sheet"


def test_tampered_leaf_stops_cat(store: LocalBlockStore) -> None:
    data = hashlib.shake_128(b"cat").digest(3 * CHUNK_SIZE)
    root = store.add_file(data)
    leaf = next(b.cid for b in iter_file_blocks(data) if b.cid.codec == RAW and b.data == data[CHUNK_SIZE : 2 * CHUNK_SIZE])
    path = store.path_of(leaf)
    damaged = bytearray(path.read_bytes())
    damaged[100] ^= 1
    path.write_bytes(bytes(damaged))
    with pytest.raises(ContentStoreError, match=str(leaf)):
        b"".join(store.cat(root))


def test_fsync_mode(tmp_path: Path) -> None:
    store = LocalBlockStore(tmp_path / "durable", fsync=True)
    cid = store.put_node({"format": "test-v1"})
    assert store.get_node(cid) == {"format": "test-v1"}


@settings(max_examples=30, deadline=None)
@given(data=st.binary(max_size=2 * CHUNK_SIZE + 10), cuts=st.lists(st.integers(0, 2 * CHUNK_SIZE), max_size=5))
def test_add_file_and_cat(tmp_path_factory: pytest.TempPathFactory, data: bytes, cuts: list[int]) -> None:
    store = LocalBlockStore(tmp_path_factory.mktemp("blocks"))
    bounds = sorted({min(c, len(data)) for c in cuts})
    pieces = [data[a:b] for a, b in zip([0, *bounds], [*bounds, len(data)])]
    root = store.add_file(iter(pieces))
    assert root == file_cid(data)
    assert b"".join(store.cat(root)) == data


def test_add_file_multi_chunk(store: LocalBlockStore) -> None:
    data = hashlib.shake_128(b"multi").digest(5 * CHUNK_SIZE + 3)
    root = store.add_file(data)
    assert root.codec == DAG_PB
    assert all(store.has_block(b.cid) for b in iter_file_blocks(data))
    streamed = list(store.cat(root))
    assert b"".join(streamed) == data and len(streamed) == 6


def test_nodes(store: LocalBlockStore) -> None:
    photo = store.add_file(b"jpeg bytes")
    node = {"format": "tally-record-v1", "photo": photo, "votes": [1, 2, 3]}
    cid = store.put_node(node)
    assert cid == CID.of(DAG_CBOR, dagcbor.encode(node))
    assert store.get_node(cid) == node
    with pytest.raises(InvalidEncoding, match="not a dag-cbor node"):
        store.get_node(photo)


def test_reachable_blocks_cross_dag_cbor_and_dag_pb(store: LocalBlockStore) -> None:
    big = hashlib.shake_128(b"big").digest(CHUNK_SIZE + 1)
    photo = store.add_file(big)
    small = store.add_file(b"small")
    record = store.put_node({"photos": [photo, small], "again": photo})
    batch = store.put_node({"records": [record], "note": "x"})
    walked = list(store.iter_reachable([batch]))
    cids = [cid for cid, _ in walked]
    assert cids[:3] == [batch, record, photo]
    assert len(cids) == len(set(c.bytes for c in cids)) == 2 + 1 + 2 + 1
    assert all(cid.verify_block(block) for cid, block in walked)
    store.pin(batch)


def test_pin_reports_a_hole(store: LocalBlockStore) -> None:
    hole = CID.of(RAW, b"never stored")
    record = store.put_node({"photo": hole})
    with pytest.raises(BlockNotFound, match=str(hole)):
        store.pin(record)


def test_block_links() -> None:
    raw = CID.of(RAW, b"a")
    assert block_links(raw, b"a") == []
    node = dagcbor.encode({"z": [raw, {"deep": raw}], "a": raw})
    assert block_links(CID.of(DAG_CBOR, node), node) == [raw, raw, raw]
    with pytest.raises(InvalidEncoding, match="dag-json"):
        block_links(CID.of(DAG_JSON, b"{}"), b"{}")
    with pytest.raises(InvalidEncoding, match="block bafy"):
        block_links(CID.of(DAG_CBOR, b"\xff"), b"\xff")


def test_iter_dag_blocks_with_a_getter() -> None:
    blocks = {b.cid.bytes: b.data for b in iter_file_blocks(bytes(3 * 7), chunk_size=7, max_links=2)}
    root = list(iter_file_blocks(bytes(3 * 7), chunk_size=7, max_links=2))[-1].cid
    walked = list(iter_dag_blocks(lambda cid: blocks[cid.bytes], [root, root]))
    assert walked[0][0] == root
    assert {cid.bytes for cid, _ in walked} == set(blocks)


def test_cid_of_path(tmp_path: Path) -> None:
    data = hashlib.shake_128(b"file").digest(2 * CHUNK_SIZE + 17)
    path = tmp_path / "photo.jpg"
    path.write_bytes(data)
    assert cid_of_path(path) == file_cid(data)
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    assert str(cid_of_path(str(empty))) == "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"
    with pytest.raises(IsADirectoryError):
        cid_of_path(tmp_path)
    with pytest.raises(FileNotFoundError):
        cid_of_path(tmp_path / "missing")


def test_open_content_store(tmp_path: Path) -> None:
    local = open_content_store(Settings(data_dir=tmp_path))
    assert isinstance(local, LocalBlockStore) and local.root == tmp_path.resolve() / "blocks"
    remote = open_content_store(Settings(data_dir=tmp_path, ipfs_api_url="http://127.0.0.1:5001", ipfs_timeout_seconds=7))
    assert isinstance(remote, KuboStore) and remote.api_url == "http://127.0.0.1:5001" and remote.timeout == 7
    remote.close()
