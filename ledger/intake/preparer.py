"""The pure half of accepting an entry: validation, canonical block, CID, leaf, signed receipt.

Nothing here touches the database, so the prepare pool's worker processes
(``ledger.intake.prepare``) run the same code as the API process. A ``Prepared`` is plain
data: the rows of other tables it carries name their table, and the writing side
(``ledger.intake.service.Ledger.commit``) picks the table by that name.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from ledger.content.store import ContentStore
from ledger.core.cid import CID
from ledger.core.leaf import leaf_hash, leaf_values
from ledger.core.record import RECEIPT_FORMAT, encode_entry, node_to_json, sign_entry
from ledger.core.record import content_digest as record_content_digest
from ledger.core.signing import address_from_private_key
from ledger.core.timefmt import format_time_micro
from ledger.election import Election
from ledger.election.validation import validate_tally

__all__ = ["IndexRow", "IndexRows", "Prepared", "Preparer"]

IndexRow = tuple[str, dict[str, Any]]
"""A row of another table to commit with an entry: (table name, column values)."""

IndexRows = Callable[[str, Mapping[str, Any]], Iterable[IndexRow]]
"""Given an entry's CID and node, rows of other tables to commit with it (e.g. photo uses)."""


@dataclass(frozen=True, slots=True)
class Prepared:
    """An entry ready to commit: its block, its ``entries`` row, its receipt, and the rows
    of other tables that go in the same transaction (each naming its table)."""

    cid: CID
    block: bytes
    row: dict[str, Any]
    receipt: dict[str, Any]
    index: tuple[IndexRow, ...] = ()
    stored: bool = False
    """Its block is in the content store already (a prepare worker put it there)."""

    @property
    def key(self) -> tuple[str, str]:
        """What makes a submission unique: (signer, submission id)."""
        return self.row["signer"], self.row["submission_id"]


class Preparer:
    """The pure half of submitting: validation, canonical block, CID, leaf and signed receipt.

    It reads the election and asks ``photo_exists`` whether each photo link names a photo;
    it never touches the database itself, so worker processes can run it beside the API
    (``ledger.intake.prepare``). There ``photo_exists`` is the content store's ``has_block`` (a
    first check: the block is stored), and ``ReviewService.submit_reports`` checks the
    group's links against the photo index in one query before committing; in the API
    process it is ``Ledger.is_photo``, the photo index itself.
    """

    def __init__(
        self,
        *,
        content: ContentStore,
        election: Election,
        receipt_key: bytes,
        batch_max_age_seconds: float,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        photo_exists: Callable[[CID], bool] | None = None,
    ):
        self.content = content
        self.photo_exists = photo_exists or content.has_block
        self.election = election
        self._receipt_key = receipt_key
        self.receipt_signer = address_from_private_key(receipt_key)
        self.batch_max_age = timedelta(seconds=batch_max_age_seconds)
        self.clock = clock

    @property
    def receipt_key(self) -> bytes:
        """The key receipts are signed with (handed to ``ledger.intake.prepare`` workers)."""
        return self._receipt_key

    def tally(
        self, submission: Mapping[str, Any], *, index: IndexRows | None = None, photo_exists: Callable[[CID], bool] | None = None
    ) -> Prepared:
        """Validate a signed tally (``InvalidTally`` with every field error) and prepare it
        (``photo_exists`` in place of this preparer's own, for a caller that checks a group's
        photo links against the index itself)."""
        node = validate_tally(submission, election=self.election, photo_exists=photo_exists or self.photo_exists)
        unit = self.election.polling_unit(str(node["polling_unit"]))
        return self.entry(
            node,
            kind="tally",
            subject=unit.id,
            constituency_id=unit.constituency_id,
            signer=str(node["submitter"]),
            entry_id=str(node["submission_id"]),
            index=index,
        )

    def entry(
        self,
        node: dict[str, object],
        *,
        kind: str,
        subject: str,
        constituency_id: str,
        signer: str,
        entry_id: str,
        index: IndexRows | None = None,
    ) -> Prepared:
        """The block, row and signed receipt of a validated entry; nothing is stored yet."""
        cid, block = encode_entry(node)
        now = self.clock()
        leaf = "0x" + leaf_hash(leaf_values(str(cid), subject, signer)).hex()
        receipt = self._receipt(cid=cid, subject=subject, entry_id=entry_id, leaf=leaf, received_at=now)
        row = {
            "cid": str(cid),
            "kind": kind,
            "election": self.election.id,
            "polling_unit": subject,
            "constituency_id": constituency_id,
            "signer": signer,
            "submission_id": entry_id,
            "content_digest": "0x" + record_content_digest(node).hex(),
            "leaf_hash": leaf,
            "received_at": now,
            "seal_deadline": now + self.batch_max_age,
            "document": node_to_json(node),
            "receipt": receipt,
        }
        extra = tuple(index(str(cid), node)) if index is not None else ()
        return Prepared(cid=cid, block=block, row=row, receipt=receipt, index=extra)

    def _receipt(self, *, cid: CID, subject: str, entry_id: str, leaf: str, received_at: datetime) -> dict[str, Any]:
        """A receipt signed by the ledger's key with the same EIP-712 scheme as entries."""
        receipt: dict[str, object] = {
            "format": RECEIPT_FORMAT,
            "election": self.election.id,
            "record_cid": str(cid),
            "polling_unit": subject,
            "submission_id": entry_id,
            "leaf_hash": leaf,
            "received_at": format_time_micro(received_at),
            "seal_deadline": format_time_micro(received_at + self.batch_max_age),
            "ledger": self.receipt_signer,
        }
        signed = sign_entry(receipt, self._receipt_key)
        return node_to_json(signed)  # type: ignore[return-value]
