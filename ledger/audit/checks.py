"""The record checks of ``tally verify`` (``ledger.audit.auditor``), kept light so that the worker
processes of ``verify all`` (``ledger.audit.worker``) import only these, the core and the block store.

A record checks out when its bytes hash to its CID, it decodes as a DAG-CBOR map, its
EIP-712 signature is its stated signer's, the leaf values a batch manifest lists for it
(unit or subject, signer) are what the record itself says, and a tally is exactly what
validation makes of it (``ledger.election.validation.check_stored_tally``: a party key written in
Thai digits, say, is named even though it is signed and anchored).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from ledger.audit.report import Mismatch
from ledger.audit.sources import ContentSource
from ledger.core import dagcbor
from ledger.core.authority import AUTHORITY_FORMAT
from ledger.core.cid import CID, DAG_CBOR
from ledger.core.decision import DECISION_FORMAT
from ledger.core.record import TALLY_FORMAT, node_to_json, verify_entry_signature
from ledger.election import Election, counting
from ledger.election.validation import check_stored_tally
from ledger.errors import InvalidTally, LedgerError

__all__ = [
    "Summary",
    "certified_numbers",
    "check_leaf",
    "check_records",
    "check_tally",
    "chunks",
    "countable",
    "photo_links",
    "read_record",
]


Summary = tuple[Any, ...]
"""What ``verify all`` keeps of a record for the replay and the photo check:
``("tally", unit, corrects, photo_links, submitter)``, ``("decision", decision)`` and
``("authority", entry)`` (links as CID strings, without the signature) or ``("other",)``."""


def photo_links(node: Mapping[str, Any]) -> list[tuple[str, bytes]]:
    """A tally's photo links as (role, binary CID) pairs, in role order (binary: cheaper to
    pass between processes than the text form). A ``photos`` value that is no map of links
    is left out here: ``check_tally`` names such a record."""
    photos = node.get("photos") if node.get("format") == TALLY_FORMAT else None
    if not isinstance(photos, Mapping):
        return []
    return [(str(role), link.bytes) for role, link in sorted(photos.items()) if isinstance(link, CID)]


def _summary(node: Mapping[str, Any]) -> Summary:
    if node.get("format") == TALLY_FORMAT:
        corrects = [str(c) for c in node.get("corrects") or []]
        return ("tally", str(node["polling_unit"]), corrects, photo_links(node), str(node.get("submitter")))
    if node.get("format") in (DECISION_FORMAT, AUTHORITY_FORMAT):
        kind = "decision" if node.get("format") == DECISION_FORMAT else "authority"
        return (kind, {k: (str(v) if isinstance(v, CID) else v) for k, v in node.items() if k != "signature"})
    return ("other",)


def read_record(source: ContentSource, record_cid: str, where: str, mismatches: list[Mismatch]) -> dict[str, Any] | None:
    """Fetch a record (re-hashed to its CID), decode it and check its signature."""
    try:
        cid = CID.parse(record_cid)
        if cid.codec != DAG_CBOR:
            raise LedgerError(f"{record_cid} is not a DAG-CBOR record")
        node = dagcbor.decode(source.node_block(cid))
        if not isinstance(node, dict):
            raise LedgerError("a record must be a map")
        verify_entry_signature(node)
        return node
    except (LedgerError, ValueError) as exc:
        mismatches.append(Mismatch("record", where, "a signed record that hashes to its CID", str(exc)))
        return None


def check_leaf(node: Mapping[str, Any], values: tuple[str, str, str], where: str, mismatches: list[Mismatch]) -> None:
    """The manifest's leaf values must be what the record itself says."""
    if node.get("format") == TALLY_FORMAT:
        stated = (node.get("polling_unit"), node.get("submitter"))
    elif node.get("format") == AUTHORITY_FORMAT:
        stated = (node.get("subject"), node.get("signer"))
    else:
        stated = (node.get("subject"), node.get("decider"))
    if (values[1], values[2].lower()) != (stated[0], str(stated[1]).lower()):
        mismatches.append(
            Mismatch("leaf values", where, f"{stated[0]} signed by {stated[1]}", f"{values[1]} signed by {values[2]}")
        )


def check_tally(node: Mapping[str, Any], election: Election | None, where: str, mismatches: list[Mismatch]) -> bool:
    """A tally record must be valid and canonical under today's rules; True if it is (or
    is no tally, or there is no election to check it against)."""
    if election is None or node.get("format") != TALLY_FORMAT:
        return True
    try:
        check_stored_tally(node, election=election)
        return True
    except InvalidTally as exc:
        mismatches.append(Mismatch("record", where, "a valid tally-record-v1 in canonical form", str(exc)))
        return False


def countable(node: Mapping[str, Any], election: Election | None) -> bool:
    """Whether the server's aggregates can count this tally: the same rule
    (``ledger.election.counting``), so the auditor leaves out what the server sets aside."""
    if election is None:
        return True
    try:
        constituency_id = election.polling_unit(str(node["polling_unit"])).constituency_id
    except (LedgerError, KeyError):
        return False
    return counting.countable(constituency_id, node, election)


def check_records(
    source: ContentSource, values: list[tuple[str, str, str]], where: str, election: Election | None = None
) -> tuple[list[Mismatch], list[tuple[str, Summary]]]:
    """Check a batch's records (CID, signature, leaf values, and with ``election`` the
    tallies' validity); their mismatches and summaries. An invalid tally is still
    summarized: decisions may name it, and the replay must see what the server saw."""
    mismatches: list[Mismatch] = []
    summaries: list[tuple[str, Summary]] = []
    for record_cid, subject, signer in values:
        at = f"{where}, record {record_cid}"
        node = read_record(source, record_cid, at, mismatches)
        if node is not None:
            check_leaf(node, (record_cid, subject, signer), at, mismatches)
            check_tally(node, election, at, mismatches)
            summaries.append((record_cid, _summary(node)))
    return mismatches, summaries


def certified_numbers(
    source: ContentSource, items: list[tuple[str, str]], election: Election | None = None
) -> tuple[list[Mismatch], list[tuple[str, int, dict[str, int], dict[str, int]]]]:
    """For certified ``(unit, record CID)`` pairs: (unit, ballots cast, constituency votes,
    party-list votes) of each record that checks out and that the server can count
    (``countable``: what it cannot count it sets aside from its certified view)."""
    mismatches: list[Mismatch] = []
    numbers = []
    for unit_id, record_cid in items:
        where = f"certified record {record_cid} of {unit_id}"
        node = read_record(source, record_cid, where, mismatches)
        if node is None:
            continue
        # Named when it breaks today's rules (its batch check names it too), but counted
        # exactly when the server can count it, so the published numbers compare.
        if not check_tally(node, election, where, []) and not countable(node, election):
            continue
        document = node_to_json(node)
        assert isinstance(document, dict)
        numbers.append(
            (
                unit_id,
                document["constituency"]["ballots_cast"],
                dict(document["constituency"]["votes"]),
                dict(document["party_list"]["votes"]),
            )
        )
    return mismatches, numbers


def chunks(items: list[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
