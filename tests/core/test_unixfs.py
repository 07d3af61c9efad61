"""ledger.core.unixfs against committed js-ipfs vectors and a slow, independent reference.

The reference below shares no code with the module under test: it cuts the whole file into
chunks up front, builds the tree top-down the way go-unixfs ``balanced.Layout`` does
(``fillNodeRec``), serializes protobuf with a generic field writer, and makes CIDs with the
``multiformats`` package.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from multiformats import CID as ReferenceCID
from multiformats import multihash

from ledger.core.cid import CID, DAG_PB, RAW
from ledger.core.unixfs import (
    CHUNK_SIZE,
    MAX_LINKS,
    Block,
    FileDagBuilder,
    decode_pbnode,
    file_cid,
    iter_file_blocks,
    iter_file_bytes,
)
from tests.support.paths import VECTORS

JS_IPFS_VECTORS = VECTORS / "unixfs" / "js_ipfs_add_cidv1.json"


# ----------------------------------------------------------------------------------------
# The slow reference
# ----------------------------------------------------------------------------------------


def _ref_varint(value: int) -> bytes:
    out = b""
    while True:
        low = value % 128
        value //= 128
        if value:
            out += bytes([low + 128])
        else:
            return out + bytes([low])


def _ref_field(number: int, value: int | bytes) -> bytes:
    if isinstance(value, int):
        return _ref_varint(number * 8 + 0) + _ref_varint(value)
    return _ref_varint(number * 8 + 2) + _ref_varint(len(value)) + value


def _ref_cid(codec: str, block: bytes) -> ReferenceCID:
    return ReferenceCID("base32", 1, codec, multihash.digest(block, "sha2-256"))


class _RefNode:
    def __init__(self, cid: ReferenceCID, block: bytes, tsize: int, filesize: int, children: list[_RefNode]):
        self.cid = cid
        self.block = block
        self.tsize = tsize
        self.filesize = filesize
        self.children = children


def _ref_leaf(chunk: bytes) -> _RefNode:
    return _RefNode(_ref_cid("raw", chunk), chunk, len(chunk), len(chunk), [])


def _ref_internal(children: list[_RefNode]) -> _RefNode:
    unixfs = _ref_field(1, 2) + _ref_field(3, sum(c.filesize for c in children))
    for child in children:
        unixfs += _ref_field(4, child.filesize)
    block = b""
    for child in children:
        link = _ref_field(1, bytes(child.cid)) + _ref_field(2, b"") + _ref_field(3, child.tsize)
        block += _ref_field(2, link)
    block += _ref_field(1, unixfs)
    tsize = len(block) + sum(c.tsize for c in children)
    return _RefNode(_ref_cid("dag-pb", block), block, tsize, sum(c.filesize for c in children), children)


def reference_dag(data: bytes, chunk_size: int = CHUNK_SIZE, max_links: int = MAX_LINKS) -> _RefNode:
    """go-unixfs balanced.Layout, literally: the first leaf, then wrap and fill depth by depth."""
    chunks = [data[i : i + chunk_size] for i in range(0, len(data), chunk_size)] or [b""]
    queue = list(chunks)

    def fill(node_children: list[_RefNode], depth: int) -> _RefNode:
        while len(node_children) < max_links and queue:
            if depth == 1:
                node_children.append(_ref_leaf(queue.pop(0)))
            else:
                node_children.append(fill([], depth - 1))
        return _ref_internal(node_children)

    root = _ref_leaf(queue.pop(0))
    depth = 1
    while queue:
        root = fill([root], depth)
        depth += 1
    return root


def reference_blocks(root: _RefNode) -> dict[str, bytes]:
    found: dict[str, bytes] = {}
    stack = [root]
    while stack:
        node = stack.pop()
        found[str(node.cid)] = node.block
        stack.extend(node.children)
    return found


def split(data: bytes, cuts: list[int]) -> Iterator[bytes]:
    """``data`` cut at the given offsets (sorted, deduplicated, clipped)."""
    previous = 0
    for cut in sorted({min(max(c, 0), len(data)) for c in cuts}):
        yield data[previous:cut]
        previous = cut
    yield data[previous:]


def shake(seed: str, size: int) -> bytes:
    return hashlib.shake_128(seed.encode()).digest(size)


# ----------------------------------------------------------------------------------------
# Known answers
# ----------------------------------------------------------------------------------------


def test_empty_file_is_the_empty_raw_block() -> None:
    assert str(file_cid(b"")) == "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"
    blocks = list(iter_file_blocks(b""))
    assert blocks == [Block(CID.parse("bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"), b"")]


def test_small_file_is_its_raw_leaf() -> None:
    assert str(file_cid(b"hello")) == "bafkreibm6jg3ux5qumhcn2b3flc3tyu6dmlb4xa7u5bf44yegnrjhc4yeq"
    assert file_cid(b"hello") == CID.of(RAW, b"hello")


def test_worked_example_from_the_module_docstring() -> None:
    blocks = list(iter_file_blocks(bytes(CHUNK_SIZE + 1)))
    assert [str(b.cid) for b in blocks] == [
        "bafkreiekhhjkxu4ztk3tyng3er3ijhg56mb44oe3gwbgquhzu4afrg2ksa",
        "bafkreidogqfzz75tpkmjzjke425xqcrmpcib2p5tg44hnbirumdbpl5adu",
        "bafybeigllfqgfpqydppr6cmv56g7ax4wyhruzswvcefv6j5kj77nzttfki",
    ]
    root = blocks[-1].data
    assert len(root) == 104
    leaf0, leaf1 = blocks[0].cid.bytes, blocks[1].cid.bytes
    expected = (
        b"\x12\x2c"
        + b"\x0a\x24"
        + leaf0
        + b"\x12\x00"
        + b"\x18\x80\x80\x10"
        + b"\x12\x2a"
        + b"\x0a\x24"
        + leaf1
        + b"\x12\x00"
        + b"\x18\x01"
        + b"\x0a\x0c"
        + bytes.fromhex("08 02 18 81 80 10 20 80 80 10 20 01")
    )
    assert root == expected


def _vectors() -> list[dict[str, Any]]:
    document = json.loads(JS_IPFS_VECTORS.read_text("utf-8"))
    assert document["format"] == "tally-unixfs-vectors-v1"
    return list(document["vectors"])


def _vector_bytes(vector: dict[str, Any]) -> bytes:
    pattern, seed, size = str(vector["pattern"]), str(vector["seed"]), int(vector["size"])
    if pattern == "zeros":
        return bytes(size)
    if pattern == "shake128":
        return shake(seed, size)
    assert pattern.startswith("text:")
    return pattern[5:].encode()


@pytest.mark.parametrize("vector", _vectors(), ids=lambda v: str(v["name"]))
def test_js_ipfs_vectors(vector: dict[str, Any]) -> None:
    data = _vector_bytes(vector)
    chunk_size = int(vector["chunk_size"])
    assert str(file_cid(data, chunk_size=chunk_size)) == vector["cid"]


def test_vectors_cover_every_depth() -> None:
    depths = set()
    for vector in _vectors():
        chunks = max(1, -(-int(vector["size"]) // int(vector["chunk_size"])))
        depth = 0
        while MAX_LINKS**depth < chunks:
            depth += 1
        depths.add(depth)
    assert depths == {0, 1, 2, 3}


def test_multi_level_file_at_default_settings_matches_reference_and_js_ipfs() -> None:
    """> 174 chunks of 256 KiB: a depth-2 tree, streamed in uneven pieces."""
    vector = next(v for v in _vectors() if v["name"] == "about 46 MB (depth 2)")
    data = _vector_bytes(vector)
    assert len(data) > MAX_LINKS * CHUNK_SIZE
    pieces = split(data, list(range(0, len(data), 1_000_003)))
    builder = FileDagBuilder()
    blocks: list[Block] = []
    for piece in pieces:
        blocks += builder.write(piece)
    blocks += builder.finish()
    assert str(builder.root) == vector["cid"]
    reference = reference_dag(data)
    assert str(reference.cid) == vector["cid"]
    ours = {str(b.cid): b.data for b in blocks}
    assert ours == reference_blocks(reference)
    assert blocks[-1].cid == builder.root
    stored = {b.cid.bytes: b.data for b in blocks}
    assert b"".join(iter_file_bytes(builder.root, lambda cid: stored[cid.bytes])) == data


# ----------------------------------------------------------------------------------------
# Properties against the reference
# ----------------------------------------------------------------------------------------


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    data=st.binary(max_size=3000),
    chunk_size=st.integers(1, 40),
    max_links=st.integers(2, 6),
    cuts=st.lists(st.integers(0, 3000), max_size=12),
)
def test_small_trees_match_reference(data: bytes, chunk_size: int, max_links: int, cuts: list[int]) -> None:
    reference = reference_dag(data, chunk_size, max_links)
    builder = FileDagBuilder(chunk_size=chunk_size, max_links=max_links)
    blocks: list[Block] = []
    for piece in split(data, cuts):
        blocks += builder.write(piece)
        assert all(len(level) < max_links for level in builder._levels)  # bounded memory
    blocks += builder.finish()
    assert str(builder.root) == str(reference.cid)
    assert blocks[-1].cid == builder.root
    assert {str(b.cid): b.data for b in blocks} == reference_blocks(reference)
    # children before parents
    position: dict[bytes, int] = {}
    for index, block in enumerate(blocks):
        position.setdefault(block.cid.bytes, index)
    for index, block in enumerate(blocks):
        if block.cid.codec == DAG_PB:
            assert all(position[link.hash.bytes] < index for link in decode_pbnode(block.data).links)
    stored = {b.cid.bytes: b.data for b in blocks}
    assert b"".join(iter_file_bytes(builder.root, lambda cid: stored[cid.bytes])) == data
    assert file_cid(data, chunk_size=chunk_size, max_links=max_links) == builder.root


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    size=st.sampled_from([0, 1, CHUNK_SIZE - 1, CHUNK_SIZE, CHUNK_SIZE + 1, 2 * CHUNK_SIZE, 3 * CHUNK_SIZE - 5]),
    cuts=st.lists(st.integers(0, 3 * CHUNK_SIZE), max_size=6),
    seed=st.text(max_size=4),
)
def test_default_settings_match_reference(size: int, cuts: list[int], seed: str) -> None:
    data = shake(seed, size)
    assert str(file_cid(split(data, cuts))) == str(reference_dag(data).cid)


@settings(max_examples=100, deadline=None)
@given(data=st.binary(max_size=500), cuts_a=st.lists(st.integers(0, 500)), cuts_b=st.lists(st.integers(0, 500)))
def test_chunking_does_not_depend_on_how_the_stream_is_split(data: bytes, cuts_a: list[int], cuts_b: list[int]) -> None:
    a = list(iter_file_blocks(split(data, cuts_a), chunk_size=7, max_links=3))
    b = list(iter_file_blocks(split(data, cuts_b), chunk_size=7, max_links=3))
    whole = list(iter_file_blocks(data, chunk_size=7, max_links=3))  # cut into 16-chunk views inside
    assert a == b == whole


def test_kept_leaves_and_hash_only_agree_and_inputs_are_not_mutated() -> None:
    data = bytearray(shake("mut", 3 * CHUNK_SIZE + 11))
    before = bytes(data)
    with_leaves = list(iter_file_blocks([memoryview(data)]))
    assert file_cid(data) == with_leaves[-1].cid
    assert bytes(data) == before
    leaves = [b for b in with_leaves if b.cid.codec == RAW]
    assert all(isinstance(b.data, bytes) for b in leaves)
    assert b"".join(b.data for b in leaves) == before


def test_file_ending_on_a_full_node_completes_its_root_in_write() -> None:
    builder = FileDagBuilder(chunk_size=1, max_links=2)
    emitted = builder.write(b"ab")
    assert [b.cid.codec for b in emitted] == [RAW, RAW, DAG_PB]
    assert builder.finish() == []
    assert builder.root == emitted[-1].cid


def test_builder_misuse() -> None:
    builder = FileDagBuilder()
    with pytest.raises(RuntimeError, match="finish"):
        _ = builder.root
    builder.finish()
    with pytest.raises(RuntimeError):
        builder.write(b"x")
    with pytest.raises(RuntimeError):
        builder.finish()
    with pytest.raises(ValueError):
        FileDagBuilder(chunk_size=0)
    with pytest.raises(ValueError):
        FileDagBuilder(max_links=1)


def test_ledger_core_unixfs_still_offers_every_name_of_a_file_dag() -> None:
    from ledger.core import dagpb, unixfs, unixfs_data, unixfs_reader

    for module in (dagpb, unixfs_data, unixfs_reader):
        for name in module.__all__:
            assert getattr(unixfs, name) is getattr(module, name) and name in unixfs.__all__
