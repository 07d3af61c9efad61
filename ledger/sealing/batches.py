"""Sealing entries into Merkle batches, and the proofs and manifests that come out of them.

A batch takes pending entries in the order they were accepted, at most
``batch_max_records`` of them, once there are that many or the oldest has waited
``batch_max_age_seconds``. Its leaves are ``tally-leaf-v1`` values and its tree is an
OpenZeppelin ``StandardMerkleTree`` (``ledger.core.merkle``). The batch manifest, a JSON
file listing every leaf value in batch order, goes to the content store; its CID is
anchored on chain next to the root, so anyone can rebuild the tree from content alone.

The manifest's format is ``ledger.core.manifest``.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime
from threading import Lock
from typing import Any

from ledger.core import merkle
from ledger.core.cid import CID
from ledger.core.leaf import LEAF_ENCODING, LEAF_FORMAT, leaf_hash
from ledger.core.manifest import encode_manifest, parse_manifest
from ledger.core.proof import PROOF_FORMAT
from ledger.errors import NotFound
from ledger.intake.service import Ledger
from ledger.quarantine import Quarantine
from ledger.store import batches as store
from ledger.store.batches import BatchRow

__all__ = ["Batcher", "SealedBatch"]


@dataclass(frozen=True)
class SealedBatch:
    id: int
    root: str
    record_count: int
    manifest_cid: str


class Batcher:
    """Seals batches and answers proofs. Only one sealer may run per database."""

    def __init__(self, ledger: Ledger, *, tree_cache_size: int = 8, quarantine: Quarantine | None = None):
        self.ledger = ledger
        self.quarantine = quarantine if quarantine is not None else Quarantine()
        self._seal_lock = Lock()
        self._trees: OrderedDict[int, merkle.MerkleTree] = OrderedDict()
        self._tree_cache_size = tree_cache_size
        self._cache_lock = Lock()

    # -- sealing ------------------------------------------------------------------

    def seal_due(self, *, force: bool = False) -> list[SealedBatch]:
        """Seal every batch that is due (full, or old enough, or any pending with ``force``)."""
        sealed = []
        while (batch := self.seal_one(force=force)) is not None:
            sealed.append(batch)
        return sealed

    def seal_one(self, *, force: bool = False, now: datetime | None = None) -> SealedBatch | None:
        ledger = self.ledger
        now = now or ledger.clock()
        set_aside = [item.entry for item in self.quarantine.items() if item.stage == "sealing"]
        with self._seal_lock, ledger.database.session() as session:
            pending = store.pending_entries(session, limit=ledger.batch_max_records, leave_out=set_aside)
            if not pending:
                return None
            full = len(pending) >= ledger.batch_max_records
            old = now - pending[0].received_at >= ledger.batch_max_age
            if not (full or old or force):
                return None
            leaves, sealable = [], []
            for row in pending:
                try:
                    leaves.append(leaf_hash((row.cid, row.polling_unit, row.signer)))
                except Exception as exc:  # noqa: BLE001 - a corrupt row stays unsealed; the others are sealed
                    self.quarantine.add("sealing", row.cid, row.polling_unit or "", exc)
                    continue
                sealable.append(row)
            pending = sealable
            if not pending:
                return None
            batch_id = store.next_batch_id(session)
            values = [(row.cid, row.polling_unit, row.signer) for row in pending]
            tree = merkle.build_tree(leaves)
            manifest = encode_manifest(batch_id=batch_id, election=ledger.election.id, root=tree.root, records=values)
            manifest_cid = ledger.content.add_file(manifest)
            store.insert_batch(
                session,
                batch_id=batch_id,
                root="0x" + tree.root.hex(),
                sealed_at=now,
                manifest_cid=str(manifest_cid),
                tree=b"".join(tree.nodes),
                members=[(row.id, tree.tree_indices[position]) for position, row in enumerate(pending)],
            )
        return SealedBatch(batch_id, "0x" + tree.root.hex(), len(values), str(manifest_cid))

    # -- reading ------------------------------------------------------------------

    def batch(self, batch_id: int) -> BatchRow:
        row = store.get_batch(self.ledger.database, batch_id)
        if row is None:
            raise NotFound(f"no batch {batch_id}")
        return row

    def batches(self, *, offset: int = 0, limit: int = 100) -> list[BatchRow]:
        return store.list_batches(self.ledger.database, offset=offset, limit=limit)

    def _tree(self, batch: BatchRow) -> merkle.MerkleTree:
        """The stored node array of a sealed batch (trees never change, so they are cached)."""
        with self._cache_lock:
            tree = self._trees.get(batch.id)
            if tree is not None:
                self._trees.move_to_end(batch.id)
                return tree
        nodes = [batch.tree[i : i + 32] for i in range(0, len(batch.tree), 32)]
        # Proofs are asked by tree index, so input positions are not needed here.
        tree = merkle.MerkleTree(nodes, range(batch.record_count))
        with self._cache_lock:
            self._trees[batch.id] = tree
            while len(self._trees) > self._tree_cache_size:
                self._trees.popitem(last=False)
        return tree

    def proof(self, record_cid: str) -> dict[str, Any]:
        """The self-sufficient ``tally-proof-v1`` document for one entry."""
        entry = self.ledger.entry(record_cid)
        values = [entry.cid, entry.polling_unit, entry.signer]
        document: dict[str, Any] = {
            "format": PROOF_FORMAT,
            "record_cid": entry.cid,
            "polling_unit": entry.polling_unit,
            "leaf": {"format": LEAF_FORMAT, "encoding": list(LEAF_ENCODING), "values": values, "hash": entry.leaf_hash},
            "status": "pending",
            "seal_deadline": entry.receipt.get("seal_deadline"),
            "batch": None,
            "proof": [],
            "anchor": None,
        }
        if entry.batch_id is None or entry.tree_index is None:
            return document
        batch = self.batch(entry.batch_id)
        path = self._tree(batch).proof_at(entry.tree_index)
        document["status"] = "anchored" if batch.status == "anchored" else "sealed"
        document["batch"] = {
            "id": batch.id,
            "root": batch.root,
            "record_count": batch.record_count,
            "manifest_cid": batch.manifest_cid,
            "tree_index": entry.tree_index,
            "position": entry.batch_position,
        }
        document["proof"] = ["0x" + node.hex() for node in path]
        document["anchor"] = batch.anchor
        return document

    def oz_dump(self, batch_id: int) -> dict[str, Any]:
        """The batch as ``@openzeppelin/merkle-tree``'s ``standard-v1`` dump."""
        batch = self.batch(batch_id)
        manifest = parse_manifest(b"".join(self.ledger.content.cat(CID.parse(batch.manifest_cid))))
        values = [tuple(v) for v in manifest["records"]]
        return merkle.standard_v1_dump(values, merkle.build_tree([leaf_hash(v) for v in values]))
