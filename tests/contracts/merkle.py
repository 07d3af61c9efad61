"""A tiny sorted-pair Merkle tree (the OpenZeppelin layout) for contract tests only.

The ledger's own implementation lives in ``ledger.core.merkle``; this one exists so the
contract tests do not depend on it.
"""

from __future__ import annotations

from eth_utils import keccak


def hash_pair(left: bytes, right: bytes) -> bytes:
    return keccak(min(left, right) + max(left, right))


def leaf_hash(data: bytes) -> bytes:
    """Hashes a leaf twice, as OpenZeppelin's merkle-tree does (against second preimages)."""
    return keccak(keccak(data))


def root_and_proofs(leaves: list[bytes]) -> tuple[bytes, list[list[bytes]]]:
    """Root and one proof per leaf, for a tree built bottom-up pairing neighbours."""
    if not leaves:
        raise ValueError("a tree needs at least one leaf")
    proofs: list[list[bytes]] = [[] for _ in leaves]
    level = [(leaf, [index]) for index, leaf in enumerate(leaves)]
    while len(level) > 1:
        next_level = []
        for position in range(0, len(level), 2):
            if position + 1 == len(level):
                next_level.append(level[position])
                continue
            (left, left_members), (right, right_members) = level[position], level[position + 1]
            for member in left_members:
                proofs[member].append(right)
            for member in right_members:
                proofs[member].append(left)
            next_level.append((hash_pair(left, right), left_members + right_members))
        level = next_level
    return level[0][0], proofs
