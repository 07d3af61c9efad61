"""``tally demo``: a simulated election night on the real 2023 structure, end to end.

Every step uses the real parts with their embedded defaults: the SQLite database, the
block store and the ledger service under ``TALLY_DATA_DIR``. Running it again resumes:
submissions are idempotent, so what was accepted before is recognised, not duplicated.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from ledger.anchoring import AnchorWorker
from ledger.app import LedgerApp, open_app
from ledger.chain.anvil import AnvilNode
from ledger.chain.deploy import open_evidence_client
from ledger.core.cid import CID
from ledger.election import Election, PollingUnit
from ledger.errors import InvalidProof
from ledger.proofs import check_proof_document
from ledger.service import format_time
from ledger.simulation import NightSimulator, TrueCount, make_photo
from wallets.tally_client import sign_tally

__all__ = ["DemoReport", "run_demo", "sample_units", "volunteer_key"]


def sample_units(election: Election, count: int) -> list[PollingUnit]:
    """``count`` units spread evenly over the whole country (every k-th unit)."""
    total = election.unit_count
    count = max(1, min(count, total))
    wanted = {round(i * total / count) for i in range(count)}
    return [unit for position, unit in enumerate(election.polling_units()) if position in wanted]


def volunteer_key(seed: int, organisation: int, unit_id: str) -> bytes:
    """A simulated volunteer's private key (deterministic, so a rerun signs identically)."""
    return hashlib.sha256(f"tally-demo:{seed}:org{organisation}:{unit_id}".encode()).digest()


@dataclass
class DemoReport:
    units: int
    accepted: int
    replayed: int
    batches: int
    anchored: int
    proofs_checked: int
    party_list_totals: Counter[str]


def build_submissions(app: LedgerApp, sim: NightSimulator, count: TrueCount, reports: int, seed: int) -> Iterator[dict]:
    unit = count.unit
    location = sim.unit_location(unit)
    for organisation in range(1, reports + 1):
        taken_at = sim.report_time(unit, organisation)
        photos = {}
        for role in ("tally_board", "form_5_18"):
            image = make_photo(label=f"{unit.id} {role}", taken_at=taken_at, location=location, seed=f"{seed}:{unit.id}:{organisation}:{role}")
            photos[role] = str(app.content.add_file(image))
        submission = {
            "polling_unit": unit.id,
            "submission_id": f"demo{seed}-org{organisation}-{unit.id}",
            "submitted_at": format_time(taken_at).split(".")[0] + "Z",
            "registered_voters": unit.registered_voters,
            "constituency": count.constituency.as_json(),
            "party_list": count.party_list.as_json(),
            "photos": photos,
        }
        yield sign_tally(submission, volunteer_key(seed, organisation, unit.id), app.election)


def run_demo(*, units: int = 200, reports: int = 2, seed: int = 2566, console: Console | None = None) -> DemoReport:
    console = console or Console()
    app = open_app()
    election = app.election
    console.print(f"[bold]Tally Ledger demo[/bold]: {election.name}")
    console.print(
        f"  {len(election.provinces)} provinces, {len(election.constituencies)} constituencies, "
        f"{len(election.parties_by_number)} party-list parties, {election.unit_count:,} polling units"
    )
    console.print(f"  data directory: {app.settings.data_dir}")
    node = None if app.settings.rpc_url else AnvilNode.from_settings(app.settings)
    started_chain = node.start() if node else False
    client = open_evidence_client(app.settings)
    console.print(f"  chain {client.chain_id} at {node.url if node else app.settings.rpc_url}, EvidenceAnchor {client.address}")
    anchorer = AnchorWorker(database=app.database, content=app.content, client=client)
    sim = NightSimulator(election, seed)
    chosen = sample_units(election, units)
    accepted = replayed = anchored = 0
    totals: Counter[str] = Counter()
    with Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console
    ) as progress:
        task = progress.add_task("reporting units", total=len(chosen))
        anchoring = progress.add_task("batches anchored", total=None)
        for unit in chosen:
            count = sim.true_count(unit)
            for submission in build_submissions(app, sim, count, reports, seed):
                result = app.ledger.submit_tally(submission)
                accepted += result.created
                replayed += not result.created
            for party, votes in count.party_list.votes.items():
                totals[party] += votes
            if app.batcher.seal_due():
                anchored += anchorer.drain()
                progress.update(anchoring, completed=anchored)
            progress.advance(task)
        sealed = app.batcher.seal_due(force=True)
        anchored += anchorer.drain()
        progress.update(anchoring, completed=anchored, total=anchored)
    batches = app.batcher.batches(limit=10_000)
    checked = 0
    for batch in batches:
        for entry_cid in _batch_records(app, batch.manifest_cid):
            document = app.batcher.proof(entry_cid)
            root = check_proof_document(document)
            if client.get_root(batch.id) != root:
                raise InvalidProof(f"batch {batch.id}: the root on chain is not the root of record {entry_cid}'s proof")
            checked += 1
    console.print(
        f"accepted {accepted} new reports ({replayed} already there), {len(batches)} batches "
        f"({len(sealed)} sealed now, {anchored} anchored now); all {checked} proofs check out against the roots on chain"
    )
    _print_party_list(console, election, totals)
    console.print("Check any record yourself: [bold]tally proof <record CID>[/bold], "
                  "and export a batch for @openzeppelin/merkle-tree: [bold]tally batch export 1 --oz-dump dump.json[/bold]")
    if started_chain and node is not None:
        node.stop()  # writes the chain state into the data directory
    app.close()
    return DemoReport(len(chosen), accepted, replayed, len(batches), anchored, checked, totals)


def _batch_records(app: LedgerApp, manifest_cid: str) -> list[str]:
    from ledger.batches import parse_manifest

    manifest = parse_manifest(b"".join(app.content.cat(CID.parse(manifest_cid))))
    return [values[0] for values in manifest["records"]]


def _print_party_list(console: Console, election: Election, totals: Counter[str]) -> None:
    table = Table(title="Party-list votes in the simulated units (top 10)")
    table.add_column("No.", justify="right")
    table.add_column("Party")
    table.add_column("Votes", justify="right")
    table.add_column("Share", justify="right")
    total = sum(totals.values()) or 1
    for number, votes in totals.most_common(10):
        party = election.parties_by_number[int(number)]
        table.add_row(number, party.name, f"{votes:,}", f"{100 * votes / total:.1f}%")
    console.print(table)
