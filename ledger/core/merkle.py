"""Batch Merkle trees, identical to OpenZeppelin's ``StandardMerkleTree`` (``standard-v1``).

CONSENSUS-CRITICAL. Batch roots computed here are anchored on chain and checked by
Solidity's ``MerkleProof.verify``; proofs handed to the public start from leaves made by
:mod:`ledger.core.leaf`. Changing the tree shape, the leaf order, the node hash or the dump
format breaks every root and proof already published. Add a new version instead, and keep
the vectors in ``tests/vectors/merkle/`` passing.

The tree is byte-for-byte the one ``StandardMerkleTree.of(values, ["string", "string",
"address"])`` builds in ``@openzeppelin/merkle-tree`` 1.0.8 with its default
``sortLeaves: true``; ``tests/core/test_merkle.py`` checks this against the JS library.

Shape
-----
Given ``n >= 1`` leaf hashes (32 bytes each, see :func:`ledger.core.leaf.leaf_hash`):

1. Sort the leaves ascending as 256-bit big-endian numbers (equal to bytewise order).
   The sort is stable: equal leaves keep their input order, as in JS.
2. The tree is one array of ``2n - 1`` nodes. Sorted leaf ``p`` goes to index
   ``2n - 2 - p``: leaves fill the tail of the array in *descending* order.
3. For ``i`` from ``n - 2`` down to ``0``:
   ``node[i] = keccak256(min(node[2i+1], node[2i+2]) ‖ max(node[2i+1], node[2i+2]))``
   (a "commutative" pair hash: the verifier need not know left from right).
4. The root is ``node[0]``. Input value ``j`` has ``treeIndex`` = where its leaf landed.
5. The proof of the leaf at ``i`` lists siblings bottom-up: while ``i > 0``, append
   ``node[i + 1]`` if ``i`` is odd else ``node[i - 1]``, then ``i = (i - 1) // 2``.
   Verifying folds the pair hash: ``h = leaf; for s in proof: h = pair(h, s)``; the
   proof holds iff ``h == root``. When ``n`` is not a power of two the leaves lie on two
   adjacent levels, so proofs within one tree differ in length by at most one.

A single leaf is its own root, with an empty proof. An empty batch has no tree and no
root: :func:`build_tree` refuses it, as OpenZeppelin does.

Worked example, three leaves (short names for their 32-byte hashes, ``A < B < C``)::

    tree index   0    1    2    3    4
    node         R    X    C    B    A      the sorted leaves A, B, C fill the tail, reversed
    X = pair(node 3, node 4) = pair(B, A) = keccak256(A ‖ B)
    R = pair(node 1, node 2) = pair(X, C)
    proof of A (index 4) = [B, C]; of B (index 3) = [A, C]; of C (index 2) = [X]
    input [B, C, A] gives tree indices [3, 2, 4]

Dump (``standard-v1``), as ``StandardMerkleTree.dump()`` prints it::

    {"format": "standard-v1",
     "leafEncoding": ["string", "string", "address"],
     "tree": ["0x<R>", "0x<X>", "0x<C>", "0x<B>", "0x<A>"],      lowercase hex, 0x prefix
     "values": [{"value": [record_cid, polling_unit, signer], "treeIndex": 3}, …]}
                                                                  values in input order

Errors (``ledger.errors``): :class:`InvalidEncoding` for malformed input (wrong types or
lengths, bad dumps, an empty batch); :class:`InvalidProof` when hashes do not lead where
they should, carrying the expected and computed roots as ``0x`` hex.
"""

from __future__ import annotations

import hmac
import operator
import re
from collections.abc import Mapping, Sequence
from typing import NamedTuple

from ledger.core.errors import InvalidEncoding, InvalidProof
from ledger.core.hashing import keccak_256 as _keccak_256  # the C hash, bound here for the hot loops below
from ledger.core.leaf import LEAF_ENCODING, LeafValues, leaf_hash, leaf_hashes, leaf_values

__all__ = [
    "DUMP_FORMAT",
    "HASH_LENGTH",
    "LoadedTree",
    "MerkleTree",
    "build_tree",
    "load_standard_v1",
    "node_hash",
    "root_from_proof",
    "standard_v1_dump",
    "verify_inclusion",
    "verify_value",
]

HASH_LENGTH = 32
DUMP_FORMAT = "standard-v1"

_HEX_NODE = re.compile(r"0x[0-9a-f]{64}")


def _hex(digest: bytes) -> str:
    return "0x" + digest.hex()


def node_hash(a: bytes, b: bytes) -> bytes:
    """``keccak256`` of the two 32-byte nodes concatenated smaller first (OZ ``standardNodeHash``)."""
    digest: bytes = _keccak_256(a + b if a < b else b + a).digest()
    return digest


def _check_hash(value: object, where: str) -> bytes:
    if isinstance(value, (bytearray, memoryview)):
        value = bytes(value)
    if not isinstance(value, bytes):
        raise InvalidEncoding(f"{where} must be {HASH_LENGTH} bytes, got {type(value).__name__}")
    if len(value) != HASH_LENGTH:
        raise InvalidEncoding(f"{where} must be {HASH_LENGTH} bytes, got {len(value)}")
    return value


def _check_proof(proof: object) -> list[bytes]:
    if isinstance(proof, (str, bytes, bytearray, memoryview)) or not isinstance(proof, Sequence):
        raise InvalidEncoding(f"proof must be a sequence of {HASH_LENGTH}-byte hashes, got {type(proof).__name__}")
    return [_check_hash(sibling, f"proof[{position}]") for position, sibling in enumerate(proof)]


# --- compute, then check -------------------------------------------------------------


def root_from_proof(leaf: bytes, proof: Sequence[bytes]) -> bytes:
    """The root that ``proof`` (siblings, bottom-up) leads to from ``leaf``.

    Equals OZ ``processProof`` and Solidity ``MerkleProof.processProof``. An empty proof
    returns ``leaf`` itself. Raises :class:`InvalidEncoding` if ``leaf`` or any sibling is
    not exactly 32 bytes.
    """
    computed = _check_hash(leaf, "leaf")
    for sibling in _check_proof(proof):
        computed = _keccak_256(computed + sibling if computed < sibling else sibling + computed).digest()
    return computed


def verify_inclusion(leaf: bytes, proof: Sequence[bytes], root: bytes) -> None:
    """Check that ``proof`` leads from ``leaf`` to ``root``; return ``None`` if it does.

    Raises :class:`InvalidProof` (with ``expected_root`` and ``computed_root`` in ``0x``
    hex) when it does not, and :class:`InvalidEncoding` when an input is not 32 bytes.
    """
    expected = _check_hash(root, "root")
    computed = root_from_proof(leaf, proof)
    if not hmac.compare_digest(computed, expected):
        raise InvalidProof(
            f"the proof ({len(proof)} siblings) from leaf {_hex(bytes(leaf))} leads to root {_hex(computed)}, "
            f"not to the expected root {_hex(expected)}",
            expected_root=_hex(expected),
            computed_root=_hex(computed),
        )


def verify_value(value: Sequence[object], proof: Sequence[bytes], root: bytes) -> None:
    """:func:`verify_inclusion` for a leaf value ``(record_cid, polling_unit, signer)``.

    The counterpart of OZ ``StandardMerkleTree.verify(root, leafEncoding, value, proof)``.
    """
    verify_inclusion(leaf_hash(value), proof, root)


# --- trees ---------------------------------------------------------------------------


def _hash_internal_nodes(nodes: list[bytes], leaf_count: int) -> None:
    """Fill ``nodes[0 : leaf_count - 1]`` from the leaves at the tail, bottom-up.

    Works in blocks: once ``nodes[done:]`` are known, every ``i`` in ``[done // 2, done)``
    has both children (``2i + 1 >= done``), so the block is one list comprehension.
    """
    keccak = _keccak_256
    done = leaf_count - 1
    while done > 0:
        start = done // 2
        children = nodes[2 * start + 1 : 2 * done + 1]
        nodes[start:done] = [
            keccak(left + right if left < right else right + left).digest() for left, right in zip(children[0::2], children[1::2])
        ]
        done = start


class MerkleTree:
    """A built tree: the OZ node array plus, for each input leaf, where it landed.

    Make one with :func:`build_tree` or :func:`load_standard_v1`; the constructor trusts
    its arguments. ``nodes[0]`` is the root; leaves are ``nodes[len(self) - 1:]``.
    Indexes called ``index`` are input positions (as OZ ``getProof(i)``); indexes called
    ``tree_index`` are positions in :attr:`nodes`.
    """

    __slots__ = ("_nodes", "_tree_indices")

    def __init__(self, nodes: Sequence[bytes], tree_indices: Sequence[int]) -> None:
        self._nodes = tuple(nodes)
        self._tree_indices = tuple(tree_indices)

    @property
    def nodes(self) -> tuple[bytes, ...]:
        """The ``2n - 1`` nodes, in OZ's ``tree`` order."""
        return self._nodes

    @property
    def tree_indices(self) -> tuple[int, ...]:
        """``tree_indices[index]`` is the tree index of input leaf ``index``."""
        return self._tree_indices

    @property
    def root(self) -> bytes:
        return self._nodes[0]

    def __len__(self) -> int:
        return len(self._tree_indices)

    def __repr__(self) -> str:
        return f"MerkleTree(leaves={len(self)}, root={_hex(self.root)})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, MerkleTree):
            return NotImplemented
        return self._nodes == other._nodes and self._tree_indices == other._tree_indices

    def __hash__(self) -> int:
        return hash((self._nodes, self._tree_indices))

    def _check_index(self, index: int) -> int:
        if type(index) is not int or not 0 <= index < len(self._tree_indices):
            raise IndexError(f"leaf index must be an int in 0..{len(self._tree_indices) - 1}, got {index!r}")
        return index

    def leaf(self, index: int) -> bytes:
        """The leaf hash of input leaf ``index``."""
        return self._nodes[self._tree_indices[self._check_index(index)]]

    def proof(self, index: int) -> tuple[bytes, ...]:
        """The sibling path of input leaf ``index``, bottom-up (OZ ``getProof(index)``)."""
        return self.proof_at(self._tree_indices[self._check_index(index)])

    def proof_at(self, tree_index: int) -> tuple[bytes, ...]:
        """The sibling path of the leaf at ``nodes[tree_index]``, bottom-up."""
        nodes = self._nodes
        first_leaf = len(self._tree_indices) - 1
        if type(tree_index) is not int or not first_leaf <= tree_index < len(nodes):
            raise IndexError(f"tree index must point at a leaf, {first_leaf}..{len(nodes) - 1}, got {tree_index!r}")
        path = []
        while tree_index > 0:
            path.append(nodes[tree_index + 1 if tree_index & 1 else tree_index - 1])
            tree_index = (tree_index - 1) >> 1
        return tuple(path)

    def proofs(self) -> list[tuple[bytes, ...]]:
        """Every input leaf's proof, in input order: ``proofs()[i] == proof(i)``.

        Builds the paths of all nodes level by level from the root down. The path of a
        node is its sibling followed by its parent's path: ``(sibling,) + parent_path``,
        done for a whole level at once with ``map`` (``zip(siblings)`` yields the
        one-tuples), so the loop runs in C. About 3x faster than walking up from each leaf.
        """
        nodes = self._nodes
        count = len(nodes)
        concatenate = operator.add
        paths: list[tuple[bytes, ...]] = [()]
        start = 1  # level k holds tree indices [2^k - 1, 2^(k+1) - 1); the last may be cut short
        while start < count:
            stop = min(2 * start + 1, count)  # count is odd, so every level holds whole pairs
            first_parent = (start - 1) >> 1
            parent_paths = paths[first_parent : first_parent + ((stop - start) >> 1)]
            level: list[tuple[bytes, ...]] = [()] * (stop - start)
            # Odd indices are left children: their sibling is the next node, and vice versa.
            level[0::2] = map(concatenate, zip(nodes[start + 1 : stop : 2]), parent_paths)
            level[1::2] = map(concatenate, zip(nodes[start:stop:2]), parent_paths)
            paths += level
            start = stop
        return list(map(paths.__getitem__, self._tree_indices))


def build_tree(leaf_hashes: Sequence[bytes]) -> MerkleTree:
    """The ``standard-v1`` tree over ``leaf_hashes`` (32 bytes each, in input order).

    Same result as OZ ``StandardMerkleTree.of(values, leafEncoding)`` where
    ``leaf_hashes[i]`` is the leaf hash of ``values[i]``. Duplicate leaves are allowed (as in
    OZ); refusing duplicate records is the caller's business. Raises
    :class:`InvalidEncoding` for an empty batch or a leaf that is not 32 bytes.
    """
    count = len(leaf_hashes)
    if count == 0:
        raise InvalidEncoding(
            "cannot build a Merkle tree over no leaves: an empty batch has no root; seal a batch only once it holds a record"
        )
    leaves = list(leaf_hashes)
    for position, leaf in enumerate(leaves):
        if type(leaf) is not bytes or len(leaf) != HASH_LENGTH:
            leaves[position] = _check_hash(leaf, f"leaf_hashes[{position}]")
    order = sorted(range(count), key=leaves.__getitem__)
    last = 2 * count - 2
    tree_indices = [0] * count
    for sorted_position, input_position in enumerate(order):
        tree_indices[input_position] = last - sorted_position
    nodes: list[bytes] = [b""] * (count - 1)
    nodes.extend([leaves[input_position] for input_position in reversed(order)])
    _hash_internal_nodes(nodes, count)
    return MerkleTree(nodes, tree_indices)


# --- the standard-v1 dump ------------------------------------------------------------


def standard_v1_dump(values: Sequence[Sequence[object]], tree: MerkleTree) -> dict[str, object]:
    """The JSON object OZ ``StandardMerkleTree.dump()`` returns for ``values`` and ``tree``.

    ``values`` are the leaf values in the input order ``tree`` was built from; they are
    written as given (``json.dumps`` of the result, with ``separators=(",", ":")`` and
    ``ensure_ascii=False``, equals ``JSON.stringify(tree.dump())``). Raises
    :class:`InvalidProof` if a value does not hash to its leaf in ``tree``.
    """
    if len(values) != len(tree):
        raise InvalidEncoding(f"got {len(values)} values for a tree of {len(tree)} leaves")
    nodes = tree.nodes
    for position, (computed, tree_index) in enumerate(zip(leaf_hashes(values), tree.tree_indices)):
        if computed != nodes[tree_index]:
            raise InvalidProof(
                f"values[{position}] hashes to {_hex(computed)}, but the tree holds {_hex(nodes[tree_index])} "
                f"at treeIndex {tree_index}: these are not the values the tree was built from",
                expected_root=_hex(tree.root),
            )
    return {
        "format": DUMP_FORMAT,
        "leafEncoding": list(LEAF_ENCODING),
        "tree": [_hex(node) for node in nodes],
        "values": [{"value": list(value), "treeIndex": index} for value, index in zip(values, tree.tree_indices)],
    }


class LoadedTree(NamedTuple):
    """What :func:`load_standard_v1` returns: the values (input order) and their tree."""

    values: tuple[LeafValues, ...]
    tree: MerkleTree


_DUMP_KEYS = ("format", "leafEncoding", "tree", "values")
_VALUE_KEYS = ("value", "treeIndex")


def load_standard_v1(dump: object) -> LoadedTree:
    """Parse and fully check a ``standard-v1`` dump (e.g. ``json.load`` of a dump file).

    Stricter than OZ ``StandardMerkleTree.load``, which it otherwise matches. Requires:
    exactly the keys ``format``, ``leafEncoding``, ``tree``, ``values``; ``format`` is
    ``"standard-v1"``; ``leafEncoding`` is ``["string", "string", "address"]``; ``tree``
    holds ``2n - 1`` lowercase ``0x`` hex 32-byte nodes for ``n >= 1`` values; each value
    is ``{"value": [record_cid, polling_unit, signer], "treeIndex": int}`` with a valid
    leaf value (signer: 20-byte hex, EIP-55 if mixed case) and a distinct leaf
    ``treeIndex``; the leaves are sorted (``sortLeaves: true``); each value hashes to the
    leaf at its ``treeIndex``; each internal node is the pair hash of its children.

    Raises :class:`InvalidEncoding` for the shape and :class:`InvalidProof` for hashes that
    do not match, naming the failing path (``values[3].treeIndex``, ``tree[7]``).
    """
    dump = _checked_header(dump)
    nodes = _dump_nodes(dump["tree"])
    entries = dump["values"]
    if not isinstance(entries, list):
        raise InvalidEncoding(f"values must be a list, got {type(entries).__name__}")
    count = len(entries)
    if count == 0:
        raise InvalidEncoding("values is empty; a standard-v1 tree has at least one leaf")
    if len(nodes) != 2 * count - 1:
        raise InvalidEncoding(f"tree has {len(nodes)} nodes; {count} values need exactly {2 * count - 1}")
    values, tree_indices = _dump_values(entries)
    _check_dump_hashes(nodes, values, tree_indices)
    return LoadedTree(tuple(values), MerkleTree(nodes, tree_indices))


def _checked_header(dump: object) -> Mapping[str, object]:
    """``dump``, once it is an object of exactly the keys ``_DUMP_KEYS``, of format
    ``standard-v1`` and the ``tally-leaf-v1`` leaf encoding."""
    if not isinstance(dump, Mapping):
        raise InvalidEncoding(f"a standard-v1 dump must be a JSON object, got {type(dump).__name__}")
    missing = [key for key in _DUMP_KEYS if key not in dump]
    if missing:
        raise InvalidEncoding(f"the dump lacks {', '.join(missing)}; a standard-v1 dump has exactly {', '.join(_DUMP_KEYS)}")
    extra = sorted(str(key) for key in dump if key not in _DUMP_KEYS)
    if extra:
        raise InvalidEncoding(f"unexpected key(s) {', '.join(extra)}; a standard-v1 dump has exactly {', '.join(_DUMP_KEYS)}")
    if dump["format"] != DUMP_FORMAT:
        raise InvalidEncoding(f"unknown dump format {dump['format']!r}; expected {DUMP_FORMAT!r}")
    encoding = dump["leafEncoding"]
    if not isinstance(encoding, (list, tuple)) or tuple(encoding) != LEAF_ENCODING:
        raise InvalidEncoding(f"leafEncoding must be {list(LEAF_ENCODING)!r} (tally-leaf-v1), got {encoding!r}")
    return dump


def _dump_nodes(raw_nodes: object) -> list[bytes]:
    """The dump's ``tree``: a list of ``0x`` + 64 lowercase hex digits, as bytes."""
    if not isinstance(raw_nodes, list):
        raise InvalidEncoding(f"tree must be a list of 0x-prefixed hex nodes, got {type(raw_nodes).__name__}")
    nodes: list[bytes] = []
    for position, node in enumerate(raw_nodes):
        if not isinstance(node, str) or not _HEX_NODE.fullmatch(node):
            raise InvalidEncoding(f"tree[{position}] must be '0x' + 64 lowercase hex digits, got {node!r}")
        nodes.append(bytes.fromhex(node[2:]))
    return nodes


def _dump_values(entries: list[object]) -> tuple[list[LeafValues], list[int]]:
    """The dump's ``values`` (a non-empty list, for a tree of ``2 * len(entries) - 1``
    nodes): each a valid leaf value at its own leaf ``treeIndex``."""
    count = len(entries)
    first_leaf, last = count - 1, 2 * count - 2
    values: list[LeafValues] = []
    tree_indices: list[int] = []
    owner_of_index: dict[int, int] = {}
    for position, entry in enumerate(entries):
        where = f"values[{position}]"
        if not isinstance(entry, Mapping) or set(entry) != set(_VALUE_KEYS):
            raise InvalidEncoding(f"{where} must be an object with exactly the keys value and treeIndex, got {entry!r}")
        tree_index = entry["treeIndex"]
        if type(tree_index) is not int or not first_leaf <= tree_index <= last:
            raise InvalidEncoding(
                f"{where}.treeIndex must be a leaf position, an int in {first_leaf}..{last}, got {tree_index!r}"
            )
        if tree_index in owner_of_index:
            raise InvalidEncoding(f"{where}.treeIndex {tree_index} is already the leaf of values[{owner_of_index[tree_index]}]")
        owner_of_index[tree_index] = position
        value = entry["value"]
        if not isinstance(value, list) or len(value) != 3:
            raise InvalidEncoding(f"{where}.value must be a list [record_cid, polling_unit, signer], got {value!r}")
        try:
            leaf_values(*value)
        except InvalidEncoding as exc:
            raise InvalidEncoding(f"{where}.value.{exc}") from None
        values.append((value[0], value[1], value[2]))
        tree_indices.append(tree_index)
    return values, tree_indices


def _check_dump_hashes(nodes: list[bytes], values: list[LeafValues], tree_indices: list[int]) -> None:
    """The leaves are sorted, each value hashes to its leaf, each internal node to its children."""
    count = len(values)
    first_leaf, last = count - 1, 2 * count - 2
    for tree_index in range(first_leaf, last):
        if nodes[tree_index] < nodes[tree_index + 1]:
            raise InvalidEncoding(
                f"the leaves are not sorted: tree[{tree_index}] < tree[{tree_index + 1}]; a tree built with "
                f"sortLeaves: true holds its leaves in descending order from tree[{first_leaf}] to tree[{last}]"
            )
    expected_root = _hex(nodes[0])
    for position, (computed, tree_index) in enumerate(zip(leaf_hashes(values), tree_indices)):
        if computed != nodes[tree_index]:
            raise InvalidProof(
                f"values[{position}].value hashes to {_hex(computed)}, but tree[{tree_index}] holds {_hex(nodes[tree_index])}",
                expected_root=expected_root,
            )
    rebuilt = nodes[:]
    _hash_internal_nodes(rebuilt, count)
    if rebuilt != nodes:
        bad = max(index for index in range(first_leaf) if rebuilt[index] != nodes[index])
        raise InvalidProof(
            f"tree[{bad}] is {_hex(nodes[bad])}, but hashing its children tree[{2 * bad + 1}] and tree[{2 * bad + 2}] "
            f"gives {_hex(rebuilt[bad])}",
            expected_root=expected_root,
            computed_root=_hex(rebuilt[0]),
        )
