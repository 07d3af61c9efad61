"""``tally verify``: check the ledger trusting only the chain and the content.

The auditor's inputs are a JSON-RPC endpoint with the ``EvidenceAnchor`` address, and a
source of content: an IPFS node, a CAR file, a local block store, or a ledger's HTTP
gateway. Every byte from a content source is checked by recomputing its CID, so a source
can withhold content but never alter it unnoticed. A ledger's API is used only for hints
(which batch holds a record) and for the published numbers that the audit compares with
its own replay; nothing it says is taken as true.

- ``record``: fetch the record, recompute its CID and leaf, find it in its batch's
  manifest, rebuild the batch root and compare it with the root on chain.
- ``batch``: rebuild the whole batch from the manifest named in its ``BatchAnchored``
  event, compare the root with the chain's, and check every record: CID, leaf values,
  signature.
- ``all``: every anchored batch in order, then replay every decision to recompute the
  certified numbers, and compare them with what the API publishes.

Memory stays small: batches are checked a few at a time, and only a record → unit map and
the decisions are kept for the replay. ``all`` can check records in several processes
(``--workers``, default: one per CPU) when the content source can be opened again by
another process (a block store, a CAR file once imported, an IPFS node; not a gateway).
"""

from __future__ import annotations

import hmac
import multiprocessing
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from ledger.audit.checks import (
    ContentSource,
    Mismatch,
    StoreSource,
    Summary,
    certified_numbers,
    check_leaf,
    check_records,
    chunks,
    read_record,
    start_worker,
    worker_certified_numbers,
    worker_check_records,
)
from ledger.chain.evidence import EvidenceAnchorClient
from ledger.content.car import import_car
from ledger.content.local import LocalBlockStore
from ledger.core.cid import CID
from ledger.core.decision import DecisionRefused, Replay
from ledger.core.leaf import leaf_hash
from ledger.core.manifest import parse_manifest
from ledger.core.merkle import build_tree
from ledger.core.unixfs import file_cid
from ledger.election import Election
from ledger.errors import LedgerError, NotFound

__all__ = ["Auditor", "ContentSource", "GatewaySource", "Mismatch", "StoreSource", "open_source"]


def polite_get(client: Any, url: str, *, params: dict[str, str] | None = None, attempts: int = 8) -> Any:
    """GET that waits out 429 answers (``Retry-After``), as a well-behaved client does."""
    for attempt in range(attempts):
        response = client.get(url, params=params) if params else client.get(url)
        if response.status_code != 429 or attempt == attempts - 1:
            return response
        try:
            delay = float(response.headers.get("Retry-After", "1"))
        except ValueError:
            delay = 1.0
        time.sleep(min(max(delay, 0.05), 30.0))
    return response


class GatewaySource:
    """A ledger's ``/v1/content/{cid}``: untrusted, so every answer is re-hashed."""

    def __init__(self, base_url: str, client: httpx.Client | None = None):
        self.base_url = base_url.rstrip("/")
        self.client = client or httpx.Client(timeout=60)
        self.label = f"gateway {self.base_url}"
        self.spec = None  # a ledger's gateway is asked by one process at a time (and with its key)

    def _get(self, cid: CID) -> bytes:
        response = polite_get(self.client, f"{self.base_url}/v1/content/{cid}", params={"format": "raw"})
        if response.status_code == 404:
            raise NotFound(f"{self.label} does not have {cid}")
        if response.status_code != 200:
            raise LedgerError(f"{self.label} answered {response.status_code} for {cid}")
        body: bytes = response.content
        return body

    def node_block(self, cid: CID) -> bytes:
        block = self._get(cid)
        if not cid.verify_block(block):
            raise LedgerError(f"{self.label} served bytes for {cid} that do not hash to it")
        return block

    def file_bytes(self, cid: CID) -> bytes:
        data = self._get(cid)
        if file_cid(data) != cid:
            raise LedgerError(f"{self.label} served a file for {cid} whose CID is {file_cid(data)}")
        return data


def open_source(spec: str, *, scratch: Path, client: httpx.Client | None = None) -> ContentSource:
    """``car:FILE``, ``ipfs:URL`` (Kubo RPC API), ``blocks:DIR`` (a local block store) or an
    ``http(s)://`` ledger gateway."""
    kind, _, rest = spec.partition(":")
    if kind == "car":
        store = LocalBlockStore(scratch / "car-blocks")
        import_car(store, Path(rest))
        return StoreSource(store, f"CAR file {rest}", spec=f"blocks:{scratch / 'car-blocks'}")
    if kind == "ipfs":
        from ledger.content.kubo import KuboStore

        return StoreSource(KuboStore(rest), f"IPFS node {rest}", spec=spec)
    if kind == "blocks":
        return StoreSource(LocalBlockStore(Path(rest)), f"block store {rest}", spec=spec)
    if kind in ("http", "https"):
        return GatewaySource(spec, client)
    raise ValueError(f"unknown content source {spec!r}: use car:FILE, ipfs:URL, blocks:DIR or an http(s) gateway URL")


@dataclass
class AuditReport:
    batches: int = 0
    records: int = 0
    decisions: int = 0
    mismatches: list[Mismatch] = field(default_factory=list)
    certified: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.mismatches


def _hex(data: bytes) -> str:
    return "0x" + data.hex()


class Auditor:
    def __init__(
        self,
        *,
        chain: EvidenceAnchorClient,
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

    # -- everything ---------------------------------------------------------------

    def verify_all(self, *, progress: Callable[[int, int], None] | None = None, workers: int = 1) -> AuditReport:
        """Every anchored batch in order, then the replay of every decision and the certified
        numbers, compared with the API's when one is given.

        ``workers`` > 1 checks records (the costly part: reading, re-hashing, signature
        recovery) in that many processes while this one reads the chain and rebuilds roots;
        the results are taken in batch order, so the replay sees what a single process sees.
        """
        report = AuditReport()
        record_units: dict[str, str] = {}
        corrects: dict[str, list[str]] = {}
        # Decisions are replayed as they stream past, in ledger order: a decision is always
        # accepted after the records it names, so they are known by then (one that names a
        # record from later in the ledger is refused, as it should be).
        replay = Replay(
            record_unit=record_units.get,
            corrects=lambda cid: corrects.get(cid, []),
            units_of=lambda constituency: [u.id for u in self.election.polling_units(constituency)],
        )

        def take(mismatches: list[Mismatch], summaries: list[tuple[str, Summary]]) -> None:
            report.mismatches.extend(mismatches)
            for record_cid, summary in summaries:
                if summary[0] == "tally":
                    record_units[record_cid] = summary[1]
                    if summary[2]:
                        corrects[record_cid] = summary[2]
                elif summary[0] == "decision":
                    report.decisions += 1
                    try:
                        replay.apply(record_cid, summary[1])
                    except DecisionRefused as exc:
                        report.mismatches.append(
                            Mismatch("decision", f"decision {record_cid}", "a decision the rules allow", str(exc))
                        )

        last = self.chain.next_batch_id() - 1
        with self._pool(workers) as pool:
            pending: deque[tuple[int, int, list[Future[Any]]]] = deque()

            def settle_oldest() -> None:
                batch_id, count, futures = pending.popleft()
                for future in futures:
                    take(*future.result())
                report.batches += 1
                report.records += count
                if progress is not None:
                    progress(batch_id, last)

            for batch_id in range(1, last + 1):
                values = self._open_batch(batch_id, report)
                if values is None:
                    continue
                where = f"batch {batch_id}"
                if pool is None:
                    take(*check_records(self.content, values, where, self.election))
                    pending.append((batch_id, len(values), []))
                else:
                    pending.append(
                        (
                            batch_id,
                            len(values),
                            [pool.submit(worker_check_records, chunk, where) for chunk in chunks(values, 500)],
                        )
                    )
                while len(pending) > 2:  # a batch or two in flight: memory stays bounded
                    settle_oldest()
            while pending:
                settle_oldest()
            report.certified = self._certified_numbers(replay, report, pool)
        if self.api is not None:
            self._compare_with_api(report)
        return report

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


def iter_report_lines(report: AuditReport) -> Iterator[str]:
    for mismatch in report.mismatches:
        yield f"MISMATCH {mismatch}"
