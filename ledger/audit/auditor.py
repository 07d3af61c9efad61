"""``tally verify``: check the ledger trusting only the chain and the content.

The auditor's inputs are a JSON-RPC endpoint with the ``EvidenceAnchor`` address, and a
source of content: an IPFS node, a CAR file, a local block store, or a ledger's HTTP
gateway. Every byte from a content source is checked by recomputing its CID, so a source
can withhold content but never alter it unnoticed. A ledger's API is used only for hints
(which batch holds a record) and for the published numbers that the audit compares with
its own replay; nothing it says is taken as true.

- ``receipt``: a receipt's signature, its key (the receipt key of the anchored authority
  log) and its record, as ``record`` checks it (``ledger.audit.receipts``).
- ``record``: fetch the record, recompute its CID and leaf, find it in its batch's
  manifest, rebuild the batch root and compare it with the root on chain.
- ``batch``: rebuild the whole batch from the manifest named in its ``BatchAnchored``
  event, compare the root with the chain's, and check every record: CID, leaf values,
  signature.
- ``all``: every anchored batch in order; every photo the tallies link, each fetched and
  re-hashed through its whole file DAG (``ledger.audit.photos``; ``--skip-photos`` leaves
  them out for a quick pass); then replay every decision to recompute the certified
  numbers, and compare them with what the API publishes.

Memory stays small: batches are checked a few at a time, and only a record → unit map, the
decisions and a 64-bit fingerprint per photo are kept. ``all`` can check records and photos
in several processes (``--workers``, default: one per CPU) when the content source can be
opened again by another process (a block store, a CAR file once imported, an IPFS node; not
a gateway).

The chain is read through ``ChainReader``: reading batches and roots is all the auditor
may do there (``ledger.chain.reader.EvidenceAnchorReader`` is one).
"""

from __future__ import annotations

import hmac
import multiprocessing
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import nullcontext
from typing import TYPE_CHECKING, Any, Protocol

import httpx

from ledger.audit.checks import Summary, certified_numbers, check_leaf, check_records, chunks, read_record
from ledger.audit.photos import PhotoAudit
from ledger.audit.report import AuditReport, Mismatch
from ledger.audit.sources import ContentSource, polite_get
from ledger.audit.worker import start_worker, worker_certified_numbers, worker_check_photos, worker_check_records
from ledger.core.authority import Authority, AuthorityRefused
from ledger.core.cid import CID
from ledger.core.decision import DecisionRefused, Replay
from ledger.core.leaf import leaf_hash
from ledger.core.manifest import parse_manifest
from ledger.core.merkle import build_tree
from ledger.election import Election
from ledger.errors import LedgerError

if TYPE_CHECKING:
    from ledger.chain.reader import AnchoredBatch

__all__ = ["Auditor", "ChainReader"]


class ChainReader(Protocol):
    """What the auditor reads from the chain, and all it may do there: it never sends a
    transaction. ``ledger.chain.reader.EvidenceAnchorReader`` is one."""

    deploy_block: int

    def next_batch_id(self) -> int: ...

    def get_root(self, batch_id: int) -> bytes | None: ...

    def get_batch(self, batch_id: int, *, from_block: int | None = None) -> AnchoredBatch | None: ...


def _hex(data: bytes) -> str:
    return "0x" + data.hex()


class Auditor:
    def __init__(
        self,
        *,
        chain: ChainReader,
        content: ContentSource,
        election: Election,
        api: httpx.Client | None = None,
        api_url: str | None = None,
    ):
        self.chain = chain
        self.content = content
        self.election = election
        self.api = api
        self.api_url = (api_url or "").rstrip("/")

    # -- one batch ----------------------------------------------------------------

    def _open_batch(self, batch_id: int, report: AuditReport) -> list[tuple[str, str, str]] | None:
        """Batch ``batch_id``'s leaf values from the manifest its event names, after checking
        that they rebuild the root on chain (None when there is no batch to check)."""
        where = f"batch {batch_id}"
        event = self.chain.get_batch(batch_id, from_block=self.chain.deploy_block)
        root = self.chain.get_root(batch_id)
        if event is None or root is None:
            report.mismatches.append(Mismatch("anchor", where, "a BatchAnchored event and a root on chain", "nothing"))
            return None
        try:
            manifest = parse_manifest(self.content.file_bytes(CID.parse(event.manifest_cid)))
        except (LedgerError, ValueError) as exc:
            report.mismatches.append(Mismatch("manifest", where, f"manifest {event.manifest_cid}", str(exc)))
            return None
        values = [tuple(v) for v in manifest["records"]]
        if manifest.get("batch_id") != batch_id or len(values) != event.record_count:
            report.mismatches.append(
                Mismatch(
                    "manifest",
                    where,
                    f"batch {batch_id} with {event.record_count} records",
                    f"batch {manifest.get('batch_id')} with {len(values)} records",
                )
            )
        rebuilt = build_tree([leaf_hash(v) for v in values]).root if values else b""
        if not hmac.compare_digest(rebuilt, root):
            report.mismatches.append(Mismatch("batch root", where, f"{_hex(root)} (on chain)", f"{_hex(rebuilt)} (rebuilt)"))
        return values

    def verify_batch(self, batch_id: int, report: AuditReport) -> list[tuple[str, str, str]]:
        """Check batch ``batch_id`` against the chain, and every record in it; returns its leaf values."""
        values = self._open_batch(batch_id, report)
        if values is None:
            return []
        mismatches, _ = check_records(self.content, values, f"batch {batch_id}", self.election)
        report.mismatches += mismatches
        report.batches += 1
        report.records += len(values)
        return values

    def _record(self, record_cid: str, where: str, report: AuditReport) -> dict[str, Any] | None:
        return read_record(self.content, record_cid, where, report.mismatches)

    # -- one record ---------------------------------------------------------------

    def _batch_hint(self, record_cid: str) -> int | None:
        if self.api is None:
            return None
        response = polite_get(self.api, f"{self.api_url}/v1/proofs/{record_cid}")
        if response.status_code != 200:
            return None
        batch = (response.json() or {}).get("batch") or {}
        return batch.get("id") if isinstance(batch.get("id"), int) else None

    def verify_record(self, record_cid: str) -> AuditReport:
        """Find the record's batch (the API's hint, else every batch), and check it there."""
        report = AuditReport()
        hint = self._batch_hint(record_cid)
        candidates = [hint] if hint else range(1, self.chain.next_batch_id())
        for batch_id in candidates:
            event = self.chain.get_batch(batch_id, from_block=self.chain.deploy_block)
            if event is None:
                continue
            try:
                manifest = parse_manifest(self.content.file_bytes(CID.parse(event.manifest_cid)))
            except (LedgerError, ValueError) as exc:
                report.mismatches.append(Mismatch("manifest", f"batch {batch_id}", event.manifest_cid, str(exc)))
                continue
            values = [tuple(v) for v in manifest["records"]]
            positions = [i for i, v in enumerate(values) if v[0] == record_cid]
            if not positions:
                continue
            tree = build_tree([leaf_hash(v) for v in values])
            root = self.chain.get_root(batch_id) or b""
            if not hmac.compare_digest(tree.root, root):
                report.mismatches.append(Mismatch("batch root", f"batch {batch_id}", _hex(root), _hex(tree.root)))
            node = self._record(record_cid, f"batch {batch_id}, record {record_cid}", report)
            if node is not None:
                check_leaf(node, values[positions[0]], f"batch {batch_id}, record {record_cid}", report.mismatches)
            report.records += 1
            report.batches += 1
            return report
        report.mismatches.append(
            Mismatch("inclusion", f"record {record_cid}", "a batch anchored on chain that holds it", "no anchored batch lists it")
        )
        return report

    def verify_unit(self, unit_id: str) -> AuditReport:
        """Every record of a unit: from the API's list (a hint), each checked on chain."""
        self.election.polling_unit(unit_id)
        report = AuditReport()
        cids: list[str] = []
        if self.api is not None:
            response = polite_get(self.api, f"{self.api_url}/v1/units/{unit_id}/records")
            if response.status_code == 200:
                body = response.json()
                items = body.get("records", body) if isinstance(body, dict) else body
                cids = [item["record_cid"] if isinstance(item, dict) else str(item) for item in items]
        if not cids:
            for batch_id in range(1, self.chain.next_batch_id()):
                event = self.chain.get_batch(batch_id, from_block=self.chain.deploy_block)
                if event is not None:
                    manifest = parse_manifest(self.content.file_bytes(CID.parse(event.manifest_cid)))
                    cids += [v[0] for v in manifest["records"] if v[1] == unit_id]
        for record_cid in cids:
            single = self.verify_record(record_cid)
            report.records += single.records
            report.batches += single.batches
            report.mismatches += single.mismatches
        return report

    def verify_receipt(self, receipt: object) -> AuditReport:
        """A receipt's signature, its key against the anchored authority log, and its record
        in an anchored batch (``ledger.audit.receipts``)."""
        from ledger.audit.receipts import verify_receipt

        return verify_receipt(self, receipt)

    # -- everything ---------------------------------------------------------------

    def verify_all(
        self, *, progress: Callable[[int, int], None] | None = None, workers: int = 1, photos: bool = True
    ) -> AuditReport:
        """Every anchored batch in order, every photo the records link (unless ``photos`` is
        False), then the replay of every decision and the certified numbers, compared with
        the API's when one is given.

        ``workers`` > 1 checks records and photos (the costly part: reading, re-hashing,
        signature recovery) in that many processes while this one reads the chain and
        rebuilds roots; the records' results are taken in batch order, so the replay sees
        what a single process sees. Photos are queued as their records' results arrive,
        each photo once.
        """
        report = AuditReport(photos_skipped=not photos)
        with self._pool(workers) as pool:
            photo_audit = PhotoAudit(self.content, report, pool=pool, work=worker_check_photos) if photos else None
            night = _NightReplay(self.election, report, photo_audit)
            self._check_batches(night, pool, progress)
            if photo_audit is not None:
                photo_audit.finish()
            report.certified = self._certified_numbers(night.replay, report, pool)
        if self.api is not None:
            self._compare_with_api(report)
        return report

    def _check_batches(
        self, night: _NightReplay, pool: ProcessPoolExecutor | None, progress: Callable[[int, int], None] | None
    ) -> None:
        """Check every anchored batch and its records, handing the results to ``night`` in batch order."""
        report = night.report
        last = self.chain.next_batch_id() - 1
        pending: deque[tuple[int, int, list[Future[Any]]]] = deque()

        def settle_oldest() -> None:
            batch_id, count, futures = pending.popleft()
            for future in futures:
                night.take(f"batch {batch_id}", *future.result())
            report.batches += 1
            report.records += count
            if progress is not None:
                progress(batch_id, last)

        for batch_id in range(1, last + 1):
            values = self._open_batch(batch_id, report)
            if values is None:
                continue
            where = f"batch {batch_id}"
            futures: list[Future[Any]] = []
            if pool is None:
                night.take(where, *check_records(self.content, values, where, self.election))
            else:
                futures = [pool.submit(worker_check_records, chunk, where) for chunk in chunks(values, 500)]
            pending.append((batch_id, len(values), futures))
            while len(pending) > 2:  # a batch or two in flight: memory stays bounded
                settle_oldest()
        while pending:
            settle_oldest()

    def _pool(self, workers: int) -> Any:
        """Worker processes for ``verify all``, or a null context (None) to work in this one."""
        spec = getattr(self.content, "spec", None)
        if workers <= 1 or spec is None:
            return nullcontext(None)
        return ProcessPoolExecutor(
            workers, mp_context=multiprocessing.get_context("spawn"), initializer=start_worker, initargs=(spec, self.election)
        )

    def _certified_numbers(self, replay: Replay, report: AuditReport, pool: ProcessPoolExecutor | None = None) -> dict[str, Any]:
        """Sum the certified records per constituency, and the party list nationally."""
        constituencies: dict[str, dict[str, Any]] = {}
        party_votes: dict[str, int] = {}
        items = sorted(replay.certified_records().items())
        if pool is None:
            results: Iterator[Any] = iter([certified_numbers(self.content, items, self.election)])
        else:
            results = pool.map(worker_certified_numbers, chunks(items, 1000))
        for mismatches, numbers in results:
            report.mismatches.extend(mismatches)
            for unit_id, ballots_cast, constituency_votes, party_list_votes in numbers:
                constituency_id = self.election.polling_unit(unit_id).constituency_id
                totals = constituencies.setdefault(constituency_id, {"units": 0, "ballots_cast": 0, "votes": {}})
                totals["units"] += 1
                totals["ballots_cast"] += ballots_cast
                for number, votes in constituency_votes.items():
                    totals["votes"][number] = totals["votes"].get(number, 0) + votes
                for number, votes in party_list_votes.items():
                    party_votes[number] = party_votes.get(number, 0) + votes
        return {"constituencies": constituencies, "party_list": party_votes}

    def _compare_with_api(self, report: AuditReport) -> None:
        assert self.api is not None
        readiness = polite_get(self.api, f"{self.api_url}/v1/ready")
        if readiness.status_code == 200:  # what the server itself could not use (older servers have no /v1/ready)
            for item in readiness.json().get("entries", []):
                report.mismatches.append(
                    Mismatch(
                        "entry set aside by the server",
                        f"{item.get('stage')} of {item.get('entry')} ({item.get('subject')})",
                        "an entry the server can use",
                        str(item.get("reason") or "set aside (the reason is shown with an auditor key, --api-key)"),
                    )
                )
        published = polite_get(self.api, f"{self.api_url}/v1/aggregates/certified/constituencies")
        if published.status_code != 200:
            report.mismatches.append(
                Mismatch("published aggregates", "certified constituencies", "HTTP 200", f"HTTP {published.status_code}")
            )
            return
        body = published.json()
        items = body.get("constituencies", body) if isinstance(body, dict) else body
        ours = report.certified["constituencies"]
        for item in items:
            constituency_id = item["constituency_id"]
            mine = ours.get(constituency_id, {"units": 0, "ballots_cast": 0, "votes": {}})
            theirs_votes = {str(c["number"]): c["votes"] for c in item["candidates"] if c["votes"]}
            mine_votes = {k: v for k, v in mine["votes"].items() if v}
            found = (item["units_reporting"], item["ballots_cast"], theirs_votes)
            expected = (mine["units"], mine["ballots_cast"], mine_votes)
            if found != expected:
                report.mismatches.append(
                    Mismatch(
                        "published certified result",
                        f"constituency {constituency_id}",
                        f"{expected[0]} units, {expected[1]} ballots, votes {expected[2]}",
                        f"{found[0]} units, {found[1]} ballots, votes {found[2]}",
                    )
                )
        party = polite_get(self.api, f"{self.api_url}/v1/aggregates/certified/party-list")
        if party.status_code == 200:
            theirs = {str(p["number"]): p["votes"] for p in party.json()["parties"] if p["votes"]}
            mine = {k: v for k, v in report.certified["party_list"].items() if v}
            if theirs != mine:
                diff = sorted(k for k in set(theirs) | set(mine) if theirs.get(k) != mine.get(k))
                report.mismatches.append(
                    Mismatch(
                        "published certified party list",
                        f"parties {', '.join(diff[:5])}",
                        str({k: mine.get(k, 0) for k in diff[:5]}),
                        str({k: theirs.get(k, 0) for k in diff[:5]}),
                    )
                )


class _NightReplay:
    """What ``verify all`` keeps of the records it has read: a record → unit map and the
    corrections for the replay of decisions, the authority state (``ledger.core.authority``),
    both of which run as the entries stream past, and the photo links handed to the photo check.

    Entries are replayed in ledger order: a decision is always accepted after the records
    it names, so they are known by then (one that names a record from later in the ledger
    is refused, as it should be), and after the grants that let its signer decide. A decision
    whose signer did not hold the role it claims (with a head's constituency, or for the
    ledger's automatic acceptances its service key) at that point of the log is named and
    left out of the replay, so the certified numbers never rest on it; so is a tally whose
    signer could not report its unit then (``Authority.may_report``)."""

    def __init__(self, election: Election, report: AuditReport, photos: PhotoAudit | None):
        self.report = report
        self.photos = photos
        self.record_units: dict[str, str] = {}
        self.corrects: dict[str, list[str]] = {}

        def constituency_of(unit_id: str) -> str | None:
            try:
                return election.polling_unit(unit_id).constituency_id
            except LedgerError:
                return None

        self.authority = Authority(constituency_of=constituency_of)
        self._first = True
        self.replay = Replay(
            record_unit=self.record_units.get,
            corrects=lambda cid: self.corrects.get(cid, []),
            units_of=lambda constituency: [u.id for u in election.polling_units(constituency)],
        )

    def take(self, where: str, mismatches: list[Mismatch], summaries: list[tuple[str, Summary]]) -> None:
        """The results of checking some records of the batch at ``where``, in ledger order."""
        self.report.mismatches.extend(mismatches)
        for record_cid, summary in summaries:
            if self._first:  # the root of trust: batch 1's root commits to its first record
                self._first = False
                if summary[0] != "authority" or summary[1].get("action") != "genesis":
                    self.report.mismatches.append(
                        Mismatch(
                            "authority genesis",
                            f"{where}, record {record_cid}",
                            "the authority log's genesis as the ledger's first record",
                            f"a {summary[0]} entry",
                        )
                    )
            if summary[0] == "tally":
                refused = self.authority.may_report(summary[4], summary[1])
                if refused is not None:  # named, and never counted: no decision can rest on it
                    self.report.mismatches.append(
                        Mismatch("reporter's authority", f"record {record_cid}", "a signer who may report this unit", refused)
                    )
                    continue
                self.record_units[record_cid] = summary[1]
                if summary[2]:
                    self.corrects[record_cid] = summary[2]
                if self.photos is not None:
                    self.photos.add(f"{where}, record {record_cid}", summary[3])
            elif summary[0] == "authority":
                self.report.authority_entries += 1
                try:
                    self.authority.apply(record_cid, summary[1])
                except AuthorityRefused as exc:
                    self.report.mismatches.append(
                        Mismatch("authority entry", f"entry {record_cid}", "an entry the authority rules allow", str(exc))
                    )
            elif summary[0] == "decision":
                self.report.decisions += 1
                decision = summary[1]
                refused = self.authority.may_decide(
                    str(decision.get("decider")), str(decision.get("role")), str(decision.get("subject"))
                )
                if refused is not None:
                    self.report.mismatches.append(
                        Mismatch(
                            "decider's authority", f"decision {record_cid}", "a signer who held the role it decides in", refused
                        )
                    )
                    continue
                try:
                    self.replay.apply(record_cid, summary[1])
                except DecisionRefused as exc:
                    self.report.mismatches.append(
                        Mismatch("decision", f"decision {record_cid}", "a decision the rules allow", str(exc))
                    )
