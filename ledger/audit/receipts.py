"""``tally verify receipt``: a volunteer's receipt, tied to this ledger without trusting it.

A receipt (``tally-receipt-v1``) is the ledger's signed promise that a record was accepted
and will be in a batch. It checks out when:

1. its EIP-712 signature is that of the key it names (``ledger``);
2. that key is the ledger's receipt key in the authority log anchored on chain (a
   ``service_key`` grant for ``receipt``, signed by an admin of the anchored genesis), so a
   receipt signed by any other key, however well formed, is refused;
3. the record it names is in an anchored batch (``Auditor.verify_record``), with the leaf
   hash the receipt promised.

The authority log is read from the anchored batches: the genesis is the ledger's first
record (record 0 of batch 1, so the first root on chain commits to it), and after it only
the records signed by an admin are fetched.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any, Protocol

from ledger.audit.report import AuditReport, Mismatch
from ledger.core import dagcbor
from ledger.core.authority import AUTHORITY_FORMAT, Authority, AuthorityRefused
from ledger.core.cid import CID
from ledger.core.leaf import leaf_hash
from ledger.core.manifest import parse_manifest
from ledger.core.record import RECEIPT_FORMAT, verify_entry_signature
from ledger.errors import LedgerError

if TYPE_CHECKING:
    from ledger.audit.sources import ContentSource
    from ledger.election import Election

__all__ = ["anchored_authority", "verify_receipt"]


class Auditor(Protocol):
    """What a receipt check uses of ``ledger.audit.auditor.Auditor``."""

    chain: Any
    """A ``ledger.audit.auditor.ChainReader`` (named here without importing the auditor)."""
    content: ContentSource
    election: Election

    def verify_record(self, record_cid: str) -> AuditReport: ...


def _receipt_node(receipt: object) -> dict[str, Any]:
    """The receipt as the node that was signed (its signature as bytes); ``LedgerError`` if it is none."""
    if not isinstance(receipt, Mapping) or receipt.get("format") != RECEIPT_FORMAT:
        raise LedgerError(f"not a {RECEIPT_FORMAT} document")
    node = dict(receipt)
    signature = node.get("signature")
    if not isinstance(signature, str) or not signature.startswith("0x"):
        raise LedgerError("signature must be 0x and 130 hex digits")
    try:
        node["signature"] = bytes.fromhex(signature[2:])
    except ValueError:
        raise LedgerError("signature must be 0x and 130 hex digits") from None
    for name in ("record_cid", "leaf_hash", "ledger"):
        if not isinstance(node.get(name), str):
            raise LedgerError(f"a receipt names its {name}")
    return node


def _authority_entries(auditor: Auditor, report: AuditReport) -> Iterator[tuple[str, dict[str, Any]]]:
    """(CID, entry) of each anchored authority entry, in ledger order: the genesis, which
    must be the first record of batch 1, then the records signed by an admin it or a later
    change of admins names."""
    admins: set[str] | None = None
    for batch_id in range(1, auditor.chain.next_batch_id()):
        event = auditor.chain.get_batch(batch_id, from_block=auditor.chain.deploy_block)
        if event is None:
            continue
        try:
            manifest = parse_manifest(auditor.content.file_bytes(CID.parse(event.manifest_cid)))
        except (LedgerError, ValueError) as exc:
            report.mismatches.append(Mismatch("manifest", f"batch {batch_id}", f"manifest {event.manifest_cid}", str(exc)))
            continue
        for record_cid, _subject, signer in manifest["records"]:
            if admins is not None and signer not in admins:
                continue
            where = f"batch {batch_id}, record {record_cid}"
            try:
                node = dagcbor.decode(auditor.content.node_block(CID.parse(record_cid)))
                if not isinstance(node, dict):
                    raise LedgerError("a record must be a map")
                verify_entry_signature(node)
            except (LedgerError, ValueError) as exc:
                report.mismatches.append(Mismatch("record", where, "a signed entry", str(exc)))
                if admins is None:
                    return
                continue
            if admins is None and (node.get("format") != AUTHORITY_FORMAT or node.get("action") != "genesis"):
                report.mismatches.append(
                    Mismatch(
                        "authority genesis", where, "the authority log's genesis as the ledger's first record", "another entry"
                    )
                )
                return
            if node.get("format") != AUTHORITY_FORMAT:
                continue
            admins = admins or set()
            admins |= set(node.get("admins") or [])  # every admin ever named may have signed later entries
            yield record_cid, {k: v for k, v in node.items() if k != "signature"}


def anchored_authority(auditor: Auditor, report: AuditReport) -> tuple[Authority, set[str]]:
    """The authority state at the end of the anchored log, and every address that was ever
    the ledger's receipt key in it."""

    def constituency_of(unit_id: str) -> str | None:
        try:
            return auditor.election.polling_unit(unit_id).constituency_id
        except LedgerError:
            return None

    state = Authority(constituency_of=constituency_of)
    receipt_keys: set[str] = set()
    for record_cid, entry in _authority_entries(auditor, report):
        try:
            state.apply(record_cid, entry)
        except AuthorityRefused as exc:
            report.mismatches.append(
                Mismatch("authority entry", f"entry {record_cid}", "an entry the authority rules allow", str(exc))
            )
            continue
        if "receipt" in state.service_keys:
            receipt_keys.add(state.service_keys["receipt"])
    return state, receipt_keys


def verify_receipt(auditor: Auditor, receipt: object) -> AuditReport:
    """Check a receipt: its signature, its key against the anchored log, its record on chain."""
    report = AuditReport()
    try:
        node = _receipt_node(receipt)
        verify_entry_signature(node)
    except (LedgerError, ValueError) as exc:
        report.mismatches.append(Mismatch("receipt", "the receipt", "a tally-receipt-v1 signed by the key it names", str(exc)))
        return report
    state, receipt_keys = anchored_authority(auditor, report)
    signer = str(node["ledger"])
    if state.genesis is None:
        report.mismatches.append(Mismatch("authority log", "the anchored batches", "a genesis entry", "none"))
    elif signer not in receipt_keys:
        keys = ", ".join(sorted(receipt_keys)) or "none"
        report.mismatches.append(Mismatch("receipt key", "the receipt", f"signed by this ledger's receipt key ({keys})", signer))
    record_cid = str(node["record_cid"])
    found = auditor.verify_record(record_cid)
    report.mismatches += found.mismatches
    report.records, report.batches = found.records, found.batches
    promised = str(node["leaf_hash"])
    actual = _anchored_leaf(auditor, record_cid)
    if actual is not None and not hmac.compare_digest(actual.lower(), promised.lower()):
        report.mismatches.append(Mismatch("receipt leaf", f"record {record_cid}", promised, f"{actual} (anchored)"))
    return report


def _anchored_leaf(auditor: Auditor, record_cid: str) -> str | None:
    """The leaf hash of ``record_cid`` in the first anchored batch that lists it."""
    for batch_id in range(1, auditor.chain.next_batch_id()):
        event = auditor.chain.get_batch(batch_id, from_block=auditor.chain.deploy_block)
        if event is None:
            continue
        try:
            manifest = parse_manifest(auditor.content.file_bytes(CID.parse(event.manifest_cid)))
        except (LedgerError, ValueError):
            continue
        for values in manifest["records"]:
            if values[0] == record_cid:
                return "0x" + leaf_hash(tuple(values)).hex()
    return None
