"""The standard-v1 Merkle tree (ledger/core/merkle.py), checked three ways:

1. the committed vectors in tests/vectors/merkle/ (also fed to Solidity's MerkleProof),
   and the generator that made them;
2. hypothesis properties against a slow, recursive reference written from OZ's
   description, with an independent keccak (pycryptodome) and abi encoder (eth_abi);
3. the real @openzeppelin/merkle-tree through scripts/oz_merkle.mjs (skipped only when
   node_modules is absent; CI runs `npm ci` first).
"""

from __future__ import annotations

import copy
import importlib.util
import json
import random
import shutil
import subprocess
from pathlib import Path
from typing import Any

import eth_abi
import pytest
from Crypto.Hash import keccak as pycryptodome_keccak
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.core.hashing import checksum_address
from ledger.core.leaf import LEAF_ENCODING, LEAF_FORMAT, leaf_hash, leaf_hashes, leaf_values
from ledger.core.merkle import (
    DUMP_FORMAT,
    LoadedTree,
    build_tree,
    load_standard_v1,
    node_hash,
    root_from_proof,
    standard_v1_dump,
    verify_inclusion,
    verify_value,
)
from ledger.errors import InvalidEncoding, InvalidProof
from tests.support.paths import REPO, VECTORS

MERKLE_VECTORS = VECTORS / "merkle"
GENERATOR = REPO / "scripts" / "gen_merkle_vectors.py"
OZ_CLI = REPO / "scripts" / "oz_merkle.mjs"
OZ_PACKAGE = REPO / "node_modules" / "@openzeppelin" / "merkle-tree"


def unhex(text: str) -> bytes:
    assert text.startswith("0x")
    return bytes.fromhex(text[2:])


def flip_bit(data: bytes, bit: int) -> bytes:
    mutated = bytearray(data)
    mutated[bit // 8] ^= 1 << (bit % 8)
    return bytes(mutated)


# --- the slow reference ------------------------------------------------------------------


def reference_keccak(data: bytes) -> bytes:
    return pycryptodome_keccak.new(digest_bits=256, data=data).digest()


def reference_pair(a: bytes, b: bytes) -> bytes:
    low, high = sorted([a, b])
    return reference_keccak(low + high)


class ReferenceTree:
    """OZ's tree as its README describes it, recursively, with nothing clever."""

    def __init__(self, leaves: list[bytes]) -> None:
        assert leaves
        self.count = len(leaves)
        # A stable sort: equal leaves keep their input order.
        self.order = sorted(range(self.count), key=lambda position: int.from_bytes(leaves[position], "big"))
        self.leaves = leaves

    def node(self, index: int) -> bytes:
        first_leaf = self.count - 1
        if index >= first_leaf:  # leaves sit at the tail, sorted leaf p at 2n - 2 - p
            return self.leaves[self.order[2 * self.count - 2 - index]]
        return reference_pair(self.node(2 * index + 1), self.node(2 * index + 2))

    def root(self) -> bytes:
        return self.node(0)

    def tree_index(self, position: int) -> int:
        return 2 * self.count - 2 - self.order.index(position)

    def path(self, index: int) -> list[bytes]:
        if index == 0:
            return []
        sibling = index + 1 if index % 2 == 1 else index - 1
        return [self.node(sibling), *self.path((index - 1) // 2)]


def reference_fold(leaf: bytes, proof: list[bytes]) -> bytes:
    for sibling in proof:
        leaf = reference_pair(leaf, sibling)
    return leaf


hashes = st.binary(min_size=32, max_size=32)
leaf_lists = st.one_of(
    st.lists(hashes, min_size=1, max_size=70),
    # Few distinct leaves: duplicates, whose order the stable sort must keep.
    st.lists(st.sampled_from([bytes([byte]) * 32 for byte in (0, 1, 0x80, 0xFF)]), min_size=1, max_size=12),
)


# --- properties against the reference ----------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(leaf_lists)
def test_tree_equals_reference(leaves: list[bytes]) -> None:
    tree = build_tree(leaves)
    reference = ReferenceTree(leaves)
    assert len(tree) == len(leaves)
    assert len(tree.nodes) == 2 * len(leaves) - 1
    assert tree.root == reference.root()
    assert list(tree.nodes) == [reference.node(index) for index in range(2 * len(leaves) - 1)]
    assert list(tree.tree_indices) == [reference.tree_index(position) for position in range(len(leaves))]


@settings(max_examples=150, deadline=None)
@given(leaf_lists)
def test_every_leaf_of_every_tree_is_provable(leaves: list[bytes]) -> None:
    tree = build_tree(leaves)
    reference = ReferenceTree(leaves)
    all_proofs = tree.proofs()
    assert len(all_proofs) == len(leaves)
    for position, leaf in enumerate(leaves):
        proof = tree.proof(position)
        assert tree.leaf(position) == leaf
        assert list(proof) == reference.path(tree.tree_indices[position])
        assert all_proofs[position] == proof == tree.proof_at(tree.tree_indices[position])
        assert root_from_proof(leaf, proof) == tree.root == reference_fold(leaf, list(proof))
        verify_inclusion(leaf, proof, tree.root)


@settings(max_examples=200, deadline=None)
@given(st.lists(hashes, min_size=1, max_size=40, unique=True), st.data())
def test_any_single_bit_mutation_fails(leaves: list[bytes], data: st.DataObject) -> None:
    tree = build_tree(leaves)
    position = data.draw(st.integers(0, len(leaves) - 1), label="position")
    leaf, proof = tree.leaf(position), list(tree.proof(position))
    target = data.draw(st.integers(-1, len(proof) - 1), label="mutated item (-1: the leaf)")
    bit = data.draw(st.integers(0, 255), label="bit")
    if target == -1:
        leaf = flip_bit(leaf, bit)
    else:
        proof[target] = flip_bit(proof[target], bit)
    assert root_from_proof(leaf, proof) != tree.root
    with pytest.raises(InvalidProof):
        verify_inclusion(leaf, proof, tree.root)
    with pytest.raises(InvalidProof):
        verify_inclusion(tree.leaf(position), tree.proof(position), flip_bit(tree.root, bit))


@settings(max_examples=100, deadline=None)
@given(st.lists(hashes, min_size=1, max_size=40))
def test_input_order_does_not_change_the_root(leaves: list[bytes]) -> None:
    assert build_tree(leaves).root == build_tree(list(reversed(leaves))).root == build_tree(sorted(leaves)).root


@settings(max_examples=100, deadline=None)
@given(hashes, hashes)
def test_node_hash_is_commutative_keccak_of_the_sorted_pair(a: bytes, b: bytes) -> None:
    assert node_hash(a, b) == node_hash(b, a) == reference_pair(a, b)


# --- edges and input checks --------------------------------------------------------------


def test_single_leaf_is_its_own_root_with_an_empty_proof() -> None:
    leaf = bytes(range(32))
    tree = build_tree([leaf])
    assert tree.root == leaf
    assert tree.nodes == (leaf,)
    assert tree.tree_indices == (0,)
    assert tree.proof(0) == ()
    assert tree.proofs() == [()]
    verify_inclusion(leaf, [], leaf)


def test_three_leaves_match_the_worked_example() -> None:
    a, b, c = (bytes([byte]) * 32 for byte in (1, 2, 3))
    tree = build_tree([b, c, a])
    x = node_hash(a, b)
    assert tree.nodes == (node_hash(x, c), x, c, b, a)
    assert tree.tree_indices == (3, 2, 4)
    assert tree.proof(2) == (b, c)  # a, at index 4
    assert tree.proof(0) == (a, c)  # b, at index 3
    assert tree.proof(1) == (x,)  # c, at index 2


def test_empty_batch_is_refused() -> None:
    with pytest.raises(InvalidEncoding, match=r"^cannot build a Merkle tree over no leaves: an empty batch has no root"):
        build_tree([])


def test_leaves_must_be_32_bytes() -> None:
    with pytest.raises(InvalidEncoding, match=r"^leaf_hashes\[1\] must be 32 bytes, got 31$"):
        build_tree([bytes(32), bytes(31)])
    with pytest.raises(InvalidEncoding, match=r"^leaf_hashes\[0\] must be 32 bytes, got str$"):
        build_tree(["00" * 32])  # type: ignore[list-item]
    assert build_tree([bytearray(32), memoryview(bytes(32))]).root == node_hash(bytes(32), bytes(32))  # type: ignore[list-item]


def test_proof_index_must_be_a_leaf() -> None:
    tree = build_tree([bytes([byte]) * 32 for byte in range(5)])
    with pytest.raises(IndexError, match=r"^leaf index must be an int in 0\.\.4, got 5$"):
        tree.proof(5)
    with pytest.raises(IndexError, match=r"^leaf index must be an int in 0\.\.4, got -1$"):
        tree.leaf(-1)
    with pytest.raises(IndexError, match=r"^tree index must point at a leaf, 4\.\.8, got 3$"):
        tree.proof_at(3)


def test_root_from_proof_checks_its_inputs() -> None:
    leaf = bytes(32)
    with pytest.raises(InvalidEncoding, match=r"^leaf must be 32 bytes, got 33$"):
        root_from_proof(bytes(33), [])
    with pytest.raises(InvalidEncoding, match=r"^proof\[1\] must be 32 bytes, got 0$"):
        root_from_proof(leaf, [bytes(32), b""])
    with pytest.raises(InvalidEncoding, match=r"^proof must be a sequence of 32-byte hashes, got bytes$"):
        root_from_proof(leaf, bytes(64))  # type: ignore[arg-type]
    with pytest.raises(InvalidEncoding, match=r"^root must be 32 bytes, got 20$"):
        verify_inclusion(leaf, [], bytes(20))


def test_verify_inclusion_reports_both_roots() -> None:
    leaves = [bytes([byte]) * 32 for byte in range(4)]
    tree = build_tree(leaves)
    wrong_root = bytes(32)
    with pytest.raises(InvalidProof) as raised:
        verify_inclusion(leaves[0], tree.proof(0), wrong_root)
    assert raised.value.expected_root == "0x" + "00" * 32
    assert raised.value.computed_root == "0x" + tree.root.hex()
    assert str(raised.value) == (
        f"the proof (2 siblings) from leaf 0x{leaves[0].hex()} leads to root 0x{tree.root.hex()}, "
        f"not to the expected root 0x{'00' * 32}"
    )
    assert isinstance(raised.value, ValueError)


def test_tree_equality_and_repr() -> None:
    leaves = [bytes([byte]) * 32 for byte in range(3)]
    assert build_tree(leaves) == build_tree(leaves)
    assert hash(build_tree(leaves)) == hash(build_tree(leaves))
    assert build_tree(leaves) != build_tree(leaves[::-1])  # same root, other input order
    assert repr(build_tree(leaves)) == f"MerkleTree(leaves=3, root=0x{build_tree(leaves).root.hex()})"


# --- the committed vectors ---------------------------------------------------------------


def vector_files() -> list[Path]:
    return sorted(MERKLE_VECTORS.glob("*.json"))


def all_cases() -> list[dict[str, Any]]:
    return [case for path in vector_files() for case in json.loads(path.read_text("utf-8"))["cases"]]


def test_vector_files_are_present() -> None:
    names = {path.name for path in vector_files()}
    assert names == {f"valid-size-{size:03d}.json" for size in (1, 2, 3, 4, 5, 7, 8, 16, 33)} | {"adversarial.json"}
    for path in vector_files():
        document = json.loads(path.read_text("utf-8"))
        assert document["format"] == "tally-merkle-vectors-v1"
        assert document["leafFormat"] == LEAF_FORMAT
        assert document["leafEncoding"] == list(LEAF_ENCODING)


@pytest.mark.parametrize("case", [pytest.param(case, id=case["name"]) for case in all_cases()])
def test_vector_case(case: dict[str, Any]) -> None:
    leaf, root = unhex(case["leaf"]), unhex(case["root"])
    proof = [unhex(sibling) for sibling in case["proof"]]
    assert case["expected"] in ("valid", "invalid") and case["reason"]
    if case["expected"] == "valid":
        assert root_from_proof(leaf, proof) == root
        verify_inclusion(leaf, proof, root)
        if case["value"] is not None:
            assert leaf_hash(case["value"]) == leaf
            verify_value(case["value"], proof, root)
    else:
        assert root_from_proof(leaf, proof) != root
        with pytest.raises(InvalidProof) as raised:
            verify_inclusion(leaf, proof, root)
        assert raised.value.expected_root == case["root"]
        if case["value"] is not None and leaf_hash(case["value"]) == leaf:  # else the leaf itself was tampered with
            with pytest.raises(InvalidProof):
                verify_value(case["value"], proof, root)
    if "preimage" in case:  # the 64-byte forgery: hashed once it is the proven internal node
        single = reference_keccak(unhex(case["preimage"]))
        assert "0x" + single.hex() == case["singleHash"]
        assert root_from_proof(single, proof) == root
        assert reference_keccak(single) == leaf


@pytest.mark.parametrize("path", [path for path in vector_files() if path.name.startswith("valid-")], ids=lambda path: path.name)
def test_valid_vector_tree_rebuilds_and_round_trips(path: Path) -> None:
    document = json.loads(path.read_text("utf-8"))
    values = [tuple(entry["value"]) for entry in document["dump"]["values"]]
    tree = build_tree(leaf_hashes(values))
    assert "0x" + tree.root.hex() == document["root"] == document["dump"]["tree"][0]
    assert standard_v1_dump(values, tree) == document["dump"]
    loaded = load_standard_v1(document["dump"])
    assert loaded == LoadedTree(tuple(values), tree)
    assert [case["treeIndex"] for case in document["cases"]] == list(tree.tree_indices)


def test_generator_output_equals_committed_vectors(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("gen_merkle_vectors", GENERATOR)
    assert spec is not None and spec.loader is not None
    generator = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generator)
    assert generator.main(["--out", str(tmp_path)]) == 0
    generated = {path.name: path.read_bytes() for path in tmp_path.iterdir()}
    committed = {path.name: path.read_bytes() for path in vector_files()}
    assert sorted(generated) == sorted(committed)
    for name, content in generated.items():
        assert content == committed[name], f"{name} differs from the generator's output; regenerate or revert"


# --- dump and load -----------------------------------------------------------------------


def sample_values(count: int, seed: int = 7) -> list[tuple[str, str, str]]:
    rng = random.Random(seed)
    units = ["BKK_1-0042", "", "x" * 32, "y" * 33, "หน่วยเลือกตั้งที่ 7 เขตดุสิต", "เชียงใหม่ เขต 3", "🗳"]
    values = []
    for position in range(count):
        cid = "bafyrei" + "".join(rng.choice("abcdefghijklmnopqrstuvwxyz234567") for _ in range(52))
        unit = rng.choice(units) if position % 3 == 0 else f"CMI_{rng.randint(1, 10)}-{rng.randint(1, 999):04d}"
        values.append(leaf_values(cid, unit, "0x" + rng.randbytes(20).hex()))
    return values


def sample_dump(count: int = 6) -> dict[str, Any]:
    values = sample_values(count)
    return standard_v1_dump(values, build_tree(leaf_hashes(values)))


def test_dump_shape() -> None:
    values = sample_values(3)
    tree = build_tree(leaf_hashes(values))
    dump = standard_v1_dump(values, tree)
    assert list(dump) == ["format", "leafEncoding", "tree", "values"]
    assert dump["format"] == DUMP_FORMAT == "standard-v1"
    assert dump["leafEncoding"] == ["string", "string", "address"]
    assert dump["tree"] == ["0x" + node.hex() for node in tree.nodes]
    assert dump["values"] == [{"value": list(value), "treeIndex": index} for value, index in zip(values, tree.tree_indices)]
    assert load_standard_v1(json.loads(json.dumps(dump))) == LoadedTree(tuple(values), tree)


def test_dump_refuses_values_that_are_not_the_tree() -> None:
    values = sample_values(4)
    tree = build_tree(leaf_hashes(values))
    with pytest.raises(InvalidEncoding, match=r"^got 3 values for a tree of 4 leaves$"):
        standard_v1_dump(values[:3], tree)
    swapped = [values[1], values[0], *values[2:]]
    message = r"^values\[0\] hashes to 0x[0-9a-f]{64}, but the tree holds 0x[0-9a-f]{64} at treeIndex \d"
    with pytest.raises(InvalidProof, match=message):
        standard_v1_dump(swapped, tree)


def wrong_checksum(address: str) -> str:
    """``address`` with the case of one letter swapped, still mixed case: a bad EIP-55 checksum."""
    body = address[2:]
    for position, char in enumerate(body):
        candidate = body[:position] + char.swapcase() + body[position + 1 :]
        if char.isalpha() and candidate not in (candidate.lower(), candidate.upper()):
            return "0x" + candidate
    raise AssertionError(f"{address} has too few letters to break its checksum")


def mutated(change: Any) -> dict[str, Any]:
    dump = copy.deepcopy(sample_dump())
    change(dump)
    return dump


def set_signer(position: int, signer: str) -> Any:
    return lambda dump: dump["values"][position]["value"].__setitem__(2, signer)


def break_checksum(dump: dict[str, Any]) -> None:
    value = dump["values"][5]["value"]
    value[2] = wrong_checksum(value[2])


KEYS = "a standard-v1 dump has exactly format, leafEncoding, tree, values"
LOAD_ENCODING_ERRORS = [
    pytest.param(
        lambda d: d.update(format="standard-v2"), r"^unknown dump format 'standard-v2'; expected 'standard-v1'$", id="format"
    ),
    pytest.param(
        lambda d: d.update(leafEncoding=["string", "address"]),
        r"^leafEncoding must be \['string', 'string', 'address'\] \(tally-leaf-v1\), got \['string', 'address'\]$",
        id="leafEncoding",
    ),
    pytest.param(lambda d: d.pop("leafEncoding"), rf"^the dump lacks leafEncoding; {KEYS}$", id="missing key"),
    pytest.param(lambda d: d.update(root="0x00"), rf"^unexpected key\(s\) root; {KEYS}$", id="extra key"),
    pytest.param(
        lambda d: d["tree"].__setitem__(2, "0x" + d["tree"][2][2:].upper()),
        r"^tree\[2\] must be '0x' \+ 64 lowercase hex digits, got '0x[0-9A-F]{64}'$",
        id="uppercase hex",
    ),
    pytest.param(
        lambda d: d["tree"].__setitem__(0, "0x1234"),
        r"^tree\[0\] must be '0x' \+ 64 lowercase hex digits, got '0x1234'$",
        id="short node",
    ),
    pytest.param(lambda d: d["tree"].pop(), r"^tree has 10 nodes; 6 values need exactly 11$", id="tree length"),
    pytest.param(
        lambda d: d.update(values=[], tree=[]), r"^values is empty; a standard-v1 tree has at least one leaf$", id="no values"
    ),
    pytest.param(
        lambda d: d["values"][1].update(treeIndex=2),
        r"^values\[1\]\.treeIndex must be a leaf position, an int in 5\.\.10, got 2$",
        id="treeIndex internal",
    ),
    pytest.param(
        lambda d: d["values"][0].update(treeIndex=True),
        r"^values\[0\]\.treeIndex must be a leaf position, an int in 5\.\.10, got True$",
        id="treeIndex bool",
    ),
    pytest.param(
        lambda d: d["values"][3].update(treeIndex=d["values"][0]["treeIndex"]),
        r"^values\[3\]\.treeIndex \d+ is already the leaf of values\[0\]$",
        id="treeIndex reused",
    ),
    pytest.param(
        lambda d: d["values"][2].update(hash="0x"),
        r"^values\[2\] must be an object with exactly the keys value and treeIndex",
        id="entry keys",
    ),
    pytest.param(
        lambda d: d["values"][4].update(value=["a", "b"]),
        r"^values\[4\]\.value must be a list \[record_cid, polling_unit, signer\], got \['a', 'b'\]$",
        id="value shape",
    ),
    pytest.param(
        set_signer(5, "0x12"),
        r"^values\[5\]\.value\.signer must be a 20-byte hex address, '0x' followed by 40 hex digits, got '0x12'$",
        id="value signer",
    ),
    pytest.param(
        break_checksum,
        r"^values\[5\]\.value\.signer 0x[0-9a-fA-F]{40} has a wrong EIP-55 checksum; "
        r"expected 0x[0-9a-fA-F]{40} \(or all-lowercase hex\)$",
        id="value checksum",
    ),
]


@pytest.mark.parametrize(("change", "message"), LOAD_ENCODING_ERRORS)
def test_load_refuses_malformed_dumps(change: Any, message: str) -> None:
    with pytest.raises(InvalidEncoding, match=message):
        load_standard_v1(mutated(change))


def test_load_refuses_a_dump_that_is_not_an_object() -> None:
    with pytest.raises(InvalidEncoding, match=r"^a standard-v1 dump must be a JSON object, got list$"):
        load_standard_v1([])


def test_load_refuses_unsorted_leaves() -> None:
    values = sample_values(4)
    dump = standard_v1_dump(values, build_tree(leaf_hashes(values)))
    tree = dump["tree"]
    tree[3], tree[4] = tree[4], tree[3]  # swap two leaves and re-point their values
    for entry in dump["values"]:
        entry["treeIndex"] = {3: 4, 4: 3}.get(entry["treeIndex"], entry["treeIndex"])
    message = r"^the leaves are not sorted: tree\[3\] < tree\[4\]; a tree built with sortLeaves: true"
    with pytest.raises(InvalidEncoding, match=message):
        load_standard_v1(dump)


def test_load_refuses_a_value_that_is_not_its_leaf() -> None:
    dump = sample_dump()
    dump["values"][2]["value"][1] = "BKK_1-9999"
    message = r"^values\[2\]\.value hashes to 0x[0-9a-f]{64}, but tree\[\d+\] holds 0x[0-9a-f]{64}$"
    with pytest.raises(InvalidProof, match=message) as raised:
        load_standard_v1(dump)
    assert raised.value.expected_root == dump["tree"][0]


@pytest.mark.parametrize("index", [0, 1, 4])
def test_load_refuses_a_forged_internal_node(index: int) -> None:
    dump = sample_dump()
    good_root = dump["tree"][0]
    dump["tree"][index] = "0x" + "ab" * 32
    message = (
        rf"^tree\[{index}\] is 0x(ab){{32}}, but hashing its children tree\[{2 * index + 1}\] "
        rf"and tree\[{2 * index + 2}\] gives 0x[0-9a-f]{{64}}$"
    )
    with pytest.raises(InvalidProof, match=message) as raised:
        load_standard_v1(dump)
    assert raised.value.expected_root == dump["tree"][0]
    assert raised.value.computed_root == good_root


def test_load_keeps_values_as_written() -> None:
    values = [(cid, unit, signer.lower()) for cid, unit, signer in sample_values(5)]
    tree = build_tree(leaf_hashes(values))
    loaded = load_standard_v1(standard_v1_dump(values, tree))
    assert loaded.values == tuple(values)
    assert standard_v1_dump(loaded.values, loaded.tree) == standard_v1_dump(values, tree)


# --- against @openzeppelin/merkle-tree ----------------------------------------------------

needs_oz = pytest.mark.skipif(
    not OZ_PACKAGE.is_dir() or shutil.which("node") is None,
    reason="node_modules/@openzeppelin/merkle-tree is absent (run `npm ci`); CI always runs these",
)


def oz(command: str, payload: Any) -> Any:
    completed = subprocess.run(
        ["node", str(OZ_CLI), command],
        input=json.dumps(payload, ensure_ascii=False),
        capture_output=True,
        text=True,
        encoding="utf-8",
        cwd=REPO,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    return json.loads(completed.stdout)


def compact_json(document: Any) -> str:
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False)


def random_batches() -> list[list[tuple[str, str, str]]]:
    """A few hundred values in trees of many sizes, with Thai, emoji, empty and edge strings."""
    rng = random.Random(2566)
    batches = [sample_values(size, seed=size) for size in (1, 2, 3, 4, 5, 6, 7, 8, 9, 15, 16, 17, 31, 32, 33, 64, 100)]
    # Duplicate values (equal leaves): the stable sort must place them as JS does.
    twin = sample_values(3, seed=99)
    batches.append([twin[0], twin[1], twin[0], twin[2], twin[0], twin[1]])

    # Lowercase and uppercase signers: written as given, hashed alike.
    def any_case(signer: str) -> str:
        return rng.choice([signer.lower(), "0x" + signer[2:].upper(), signer])

    batches.append([(cid, unit, any_case(signer)) for cid, unit, signer in sample_values(20, seed=3)])
    return batches


@needs_oz
def test_oz_dump_equals_ours() -> None:
    batches = random_batches()
    assert sum(map(len, batches)) >= 300
    ours = [standard_v1_dump(values, build_tree(leaf_hashes(values))) for values in batches]
    theirs = oz("dumps", [[list(value) for value in values] for values in batches])
    for values, mine, js in zip(batches, ours, theirs):
        assert mine == js, f"dump of {len(values)} values differs from StandardMerkleTree.of(...).dump()"
        assert compact_json(mine) == compact_json(js)  # as JSON.stringify prints it


@needs_oz
def test_oz_loads_our_dumps_and_verifies_our_proofs() -> None:
    batches = random_batches()
    dumps, queries, expected = [], [], []
    for values in batches:
        tree = build_tree(leaf_hashes(values))
        dumps.append(standard_v1_dump(values, tree))
        root = "0x" + tree.root.hex()
        for position, (value, proof) in enumerate(zip(values, tree.proofs())):
            hex_proof = ["0x" + sibling.hex() for sibling in proof]
            queries.append({"root": root, "leafEncoding": list(LEAF_ENCODING), "value": list(value), "proof": hex_proof})
            expected.append(True)
            if position == 0 and proof:  # and one forgery per tree: a flipped sibling bit
                forged = [*hex_proof]
                forged[0] = "0x" + flip_bit(proof[0], position + 3).hex()
                queries.append({"root": root, "leafEncoding": list(LEAF_ENCODING), "value": list(value), "proof": forged})
                expected.append(False)
    loaded = oz("load", dumps)
    assert [item.get("root") for item in loaded] == [dump["tree"][0] for dump in dumps]
    assert [item.get("length") for item in loaded] == [len(values) for values in batches]
    assert oz("verify", queries) == expected


@needs_oz
def test_oz_proofs_equal_ours() -> None:
    values = sample_values(45, seed=11)
    tree = build_tree(leaf_hashes(values))
    theirs = oz("proofs", [list(value) for value in values])
    assert theirs["root"] == "0x" + tree.root.hex()
    assert theirs["proofs"] == [["0x" + sibling.hex() for sibling in proof] for proof in tree.proofs()]


@needs_oz
def test_oz_agrees_with_the_committed_vectors() -> None:
    valid = [json.loads(path.read_text("utf-8")) for path in vector_files() if path.name.startswith("valid-")]
    theirs = oz("dumps", [[entry["value"] for entry in document["dump"]["values"]] for document in valid])
    assert theirs == [document["dump"] for document in valid]
    # Cases whose leaf is the honest leaf of their value (StandardMerkleTree.verify takes values, not leaves).
    with_values = [
        case for case in all_cases() if case["value"] is not None and case["leaf"] == "0x" + leaf_hash(case["value"]).hex()
    ]
    queries = [
        {"root": case["root"], "leafEncoding": list(LEAF_ENCODING), "value": case["value"], "proof": case["proof"]}
        for case in with_values
    ]
    assert oz("verify", queries) == [case["expected"] == "valid" for case in with_values]


@needs_oz
def test_oz_refuses_what_we_refuse_to_load() -> None:
    dump = sample_dump()
    dump["tree"][1] = "0x" + "ab" * 32
    assert "error" in oz("load", [dump])[0]
    with pytest.raises(InvalidProof):
        load_standard_v1(dump)


def test_reference_leaf_hash_agrees() -> None:
    """The leaf the reference tree would hash, via eth_abi and pycryptodome."""
    value = sample_values(1)[0]
    encoded = eth_abi.encode(list(LEAF_ENCODING), list(value))
    assert leaf_hash(value) == reference_keccak(reference_keccak(encoded))
    assert checksum_address(value[2].lower()) == value[2]
