"""Generate the committed Merkle test vectors in tests/vectors/merkle/ (tally-merkle-vectors-v1).

    .venv/bin/python scripts/gen_merkle_vectors.py [--out DIR]

Deterministic: a fixed seed, no clock, no environment. tests/core/test_merkle.py regenerates
into a temporary directory and requires byte equality with the committed files, so edit
this script only together with the vectors (and never change the cases of an existing
format version; add cases or a new version).

Files (all hex is lowercase with a 0x prefix):

``valid-size-NNN.json``
    One tree of NNN leaves (1, 2, 3, 4, 5, 7, 8, 16, 33): its root, its OZ ``standard-v1``
    dump, and one case per leaf with the leaf's full proof; every case is ``valid``.
``adversarial.json``
    Cases that must fail (bit flips, wrong index, truncated or extended paths, a swapped
    root, a 64-byte internal-node forgery, an empty proof), plus a control or two that must
    pass, each with the reason.

Every case is self-contained: ``{name, value, leaf, proof, root, expected, reason}``. A
verifier checks ``MerkleProof.verify(proof, root, leaf) == (expected == "valid")``. When
``value`` is not null, ``leaf_hash(value)`` is the leaf an honest verifier derives; where a
case tampers with the leaf itself, ``leaf`` differs from ``leaf_hash(value)`` on purpose.
"""

from __future__ import annotations

import argparse
import base64
import json
import random
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from ledger.core.hashing import checksum_address, keccak256  # noqa: E402
from ledger.core.leaf import LEAF_ENCODING, LEAF_FORMAT, leaf_hash, leaf_values  # noqa: E402
from ledger.core.merkle import MerkleTree, build_tree, node_hash, root_from_proof, standard_v1_dump  # noqa: E402

__all__ = ["FORMAT", "SIZES", "generate", "main"]

FORMAT = "tally-merkle-vectors-v1"
SIZES = (1, 2, 3, 4, 5, 7, 8, 16, 33)
SEED = 2566  # Buddhist-era year of the 2023 election
DEFAULT_OUT = ROOT / "tests" / "vectors" / "merkle"

# Values that pin the string encoding at its edges; mixed into the 33-leaf tree.
_EDGE_UNITS = (
    "",  # empty string: a length word and no data words
    "x" * 32,  # exactly one data word
    "y" * 33,  # one byte into a second data word
    "หน่วยเลือกตั้งที่ 42 เขตบางรัก",  # Thai: 3 UTF-8 bytes per character
    "กทม",  # 3 characters, 9 bytes
    "BKK_1-0042 🗳",  # a 4-byte UTF-8 character
)


def _hex(data: bytes) -> str:
    return "0x" + data.hex()


def _flip_bit(data: bytes, bit: int) -> bytes:
    mutated = bytearray(data)
    mutated[bit // 8] ^= 0x80 >> (bit % 8)
    return bytes(mutated)


def _cid(rng: random.Random) -> str:
    """A well-formed dag-cbor sha2-256 CIDv1 over a random digest (the shape of record CIDs)."""
    raw = bytes((0x01, 0x71, 0x12, 0x20)) + rng.randbytes(32)
    return "b" + base64.b32encode(raw).decode("ascii").lower().rstrip("=")


def _values(rng: random.Random, size: int) -> list[tuple[str, str, str]]:
    provinces = ("BKK", "CMI", "KKN", "NMA", "SKA", "UBN")
    values = []
    for position in range(size):
        unit = f"{rng.choice(provinces)}_{rng.randint(1, 33)}-{rng.randint(1, 400):04d}"
        if size == 33 and position < len(_EDGE_UNITS):
            unit = _EDGE_UNITS[position]
        values.append(leaf_values(_cid(rng), unit, checksum_address(_hex(rng.randbytes(20)))))
    return values


def _case(
    name: str, value: Any, leaf: bytes, proof: Any, root: bytes, expected: str, reason: str, **extra: Any
) -> dict[str, Any]:
    computed = root_from_proof(leaf, proof)
    if (computed == root) != (expected == "valid"):
        raise AssertionError(f"vector {name} does not behave as labelled ({expected})")
    case: dict[str, Any] = {
        "name": name,
        "value": list(value) if value is not None else None,
        "leaf": _hex(leaf),
        "proof": [_hex(sibling) for sibling in proof],
        "root": _hex(root),
        "expected": expected,
        "reason": reason,
    }
    case.update(extra)
    return case


def _envelope(description: str) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "leafFormat": LEAF_FORMAT,
        "leafEncoding": list(LEAF_ENCODING),
        "generator": "scripts/gen_merkle_vectors.py",
        "description": description,
    }


def _valid_file(size: int, values: list[tuple[str, str, str]], tree: MerkleTree) -> dict[str, Any]:
    document = _envelope(
        f"A standard-v1 tree of {size} leaves (OZ StandardMerkleTree.of, sortLeaves: true) with every leaf's proof."
    )
    document["size"] = size
    document["root"] = _hex(tree.root)
    document["dump"] = standard_v1_dump(values, tree)
    document["cases"] = [
        _case(
            f"size-{size}/value-{index}",
            value,
            tree.leaf(index),
            tree.proof(index),
            tree.root,
            "valid",
            f"value {index} of {size} (treeIndex {tree.tree_indices[index]}) with its sibling path",
            treeIndex=tree.tree_indices[index],
        )
        for index, value in enumerate(values)
    ]
    return document


Values = list[tuple[str, str, str]]
Trees = dict[int, tuple[Values, MerkleTree]]


def _adversarial_file(rng: random.Random, trees: Trees) -> dict[str, Any]:
    cases: list[dict[str, Any]] = []
    for size in (33, 5, 2):
        values, tree = trees[size]
        other_root = trees[5][1].root if size != 5 else trees[33][1].root  # another batch's root
        for index in sorted(rng.sample(range(size), 2)):
            cases += _tampered_proofs(rng, values, tree, index)
            cases += _misshapen_proofs(rng, values, tree, index, other_root)
    cases += _internal_node_cases(trees[33][1])
    cases += _one_leaf_cases(rng, trees[1])
    document = _envelope("Proofs that must fail, and why; plus controls that must pass. Each case carries its own root.")
    document["cases"] = cases
    return document


def _tampered_proofs(rng: random.Random, values: Values, tree: MerkleTree, index: int) -> list[dict[str, Any]]:
    """A bit flipped in a sibling or in the leaf, a changed value, another leaf's proof."""
    size = len(values)
    value, leaf, proof, root = values[index], tree.leaf(index), tree.proof(index), tree.root
    label = f"size-{size}/value-{index}"
    cases: list[dict[str, Any]] = []
    position = rng.randrange(len(proof))
    bit = rng.randrange(256)
    flipped = list(proof)
    flipped[position] = _flip_bit(proof[position], bit)
    cases.append(
        _case(
            f"{label}/flipped-sibling-bit",
            value,
            leaf,
            flipped,
            root,
            "invalid",
            f"bit {bit} of proof[{position}] flipped: the path leads to another root",
        )
    )
    bit = rng.randrange(256)
    cases.append(
        _case(
            f"{label}/flipped-leaf-bit",
            value,
            _flip_bit(leaf, bit),
            proof,
            root,
            "invalid",
            f"bit {bit} of the leaf flipped (leaf != leaf_hash(value)): a changed leaf cannot reuse the proof",
        )
    )
    tampered = (value[0], value[1] + "1", value[2])
    cases.append(
        _case(
            f"{label}/tampered-value",
            tampered,
            leaf_hash(tampered),
            proof,
            root,
            "invalid",
            "the polling unit was changed after sealing: the new value's leaf does not verify with the old proof",
        )
    )
    other = (index + 1 + rng.randrange(size - 1)) % size
    cases.append(
        _case(
            f"{label}/wrong-index",
            value,
            leaf,
            tree.proof(other),
            root,
            "invalid",
            f"the proof of value {other} (another leaf) presented for value {index}",
        )
    )
    return cases


def _misshapen_proofs(
    rng: random.Random, values: Values, tree: MerkleTree, index: int, other_root: bytes
) -> list[dict[str, Any]]:
    """Paths cut short, extended, reversed or empty, and the right proof against another root."""
    size = len(values)
    value, leaf, proof, root = values[index], tree.leaf(index), tree.proof(index), tree.root
    label = f"size-{size}/value-{index}"
    cases: list[dict[str, Any]] = []
    cases.append(
        _case(
            f"{label}/truncated-path",
            value,
            leaf,
            proof[:-1],
            root,
            "invalid",
            f"the last of {len(proof)} siblings dropped: the path ends at an internal node, not the root",
        )
    )
    extra = rng.randbytes(32)
    cases.append(
        _case(
            f"{label}/extra-sibling",
            value,
            leaf,
            [*proof, extra],
            root,
            "invalid",
            "a 32-byte sibling appended: the path climbs past the root",
        )
    )
    cases.append(
        _case(
            f"{label}/swapped-root",
            value,
            leaf,
            proof,
            other_root,
            "invalid",
            "a valid leaf and proof checked against the root of another batch",
        )
    )
    cases.append(
        _case(
            f"{label}/empty-proof",
            value,
            leaf,
            [],
            root,
            "invalid",
            f"no siblings in a {size}-leaf tree: the leaf is not the root",
        )
    )
    if len(proof) > 1:
        cases.append(
            _case(
                f"{label}/reversed-path",
                value,
                leaf,
                proof[::-1],
                root,
                "invalid",
                "the right siblings in the wrong order: pair hashes commute within a level, not across levels",
            )
        )
    return cases


def _internal_node_cases(tree: MerkleTree) -> list[dict[str, Any]]:
    """The second-preimage forgery: present two internal nodes, concatenated, as a leaf."""
    cases: list[dict[str, Any]] = []
    for internal in (1, 5):
        left, right = tree.nodes[2 * internal + 1], tree.nodes[2 * internal + 2]
        preimage = left + right if left < right else right + left
        path = _internal_path(tree, internal)
        if keccak256(preimage) != tree.nodes[internal] or node_hash(left, right) != tree.nodes[internal]:
            raise AssertionError("internal node does not hash from its children")
        cases.append(
            _case(
                f"size-33/internal-node-{internal}/64-byte-forgery",
                None,
                keccak256(keccak256(preimage)),
                path,
                tree.root,
                "invalid",
                f"the 64 bytes of tree[{2 * internal + 1}] and tree[{2 * internal + 2}] presented as a leaf preimage: "
                f"hashed once they give tree[{internal}], which this path proves, but leaves are hashed twice, "
                "so the leaf is keccak256(keccak256(preimage)) "
                "and it does not verify",
                preimage=_hex(preimage),
                singleHash=_hex(keccak256(preimage)),
            )
        )
        cases.append(
            _case(
                f"size-33/internal-node-{internal}/raw-internal-leaf",
                None,
                tree.nodes[internal],
                path,
                tree.root,
                "valid",
                f"CONTROL: tree[{internal}] (an internal node) with its path passes MerkleProof.verify. "
                "A verifier must derive the leaf from a value with leaf_hash and never accept a raw 32-byte leaf from outside",
            )
        )
    return cases


def _one_leaf_cases(rng: random.Random, one_leaf: tuple[Values, MerkleTree]) -> list[dict[str, Any]]:
    """A one-leaf tree: its root is its leaf and its proof is empty."""
    values, tree = one_leaf
    cases: list[dict[str, Any]] = []
    cases.append(
        _case(
            "size-1/value-0/extra-sibling",
            values[0],
            tree.leaf(0),
            [rng.randbytes(32)],
            tree.root,
            "invalid",
            "a sibling added to the empty proof of a one-leaf tree",
        )
    )
    cases.append(
        _case(
            "size-1/value-0/flipped-leaf-bit",
            values[0],
            _flip_bit(tree.leaf(0), 255),
            [],
            tree.root,
            "invalid",
            "bit 255 of the only leaf flipped: with an empty proof the leaf must equal the root",
        )
    )
    cases.append(
        _case(
            "size-1/value-0/leaf-as-root",
            values[0],
            tree.leaf(0),
            [],
            tree.root,
            "valid",
            "CONTROL: a one-leaf tree's root is its leaf; the empty proof verifies",
        )
    )
    return cases


def _internal_path(tree: MerkleTree, tree_index: int) -> list[bytes]:
    """The sibling path from any node (internal ones included) up to the root."""
    path = []
    while tree_index > 0:
        path.append(tree.nodes[tree_index + 1 if tree_index & 1 else tree_index - 1])
        tree_index = (tree_index - 1) >> 1
    return path


def generate() -> dict[str, str]:
    """Every vector file, as ``{file name: JSON text}``."""
    rng = random.Random(SEED)
    trees: Trees = {}
    files: dict[str, str] = {}
    for size in SIZES:
        values = _values(rng, size)
        tree = build_tree([leaf_hash(value) for value in values])
        trees[size] = (values, tree)
        files[f"valid-size-{size:03d}.json"] = _render(_valid_file(size, values, tree))
    files["adversarial.json"] = _render(_adversarial_file(rng, trees))
    return files


def _render(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"output directory (default: {DEFAULT_OUT})")
    arguments = parser.parse_args(argv)
    arguments.out.mkdir(parents=True, exist_ok=True)
    for name, text in generate().items():
        (arguments.out / name).write_text(text, encoding="utf-8")
    print(f"wrote {len(SIZES) + 1} files to {arguments.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
