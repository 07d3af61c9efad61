"""The ``tally`` command line."""

from __future__ import annotations

import json
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer

from ledger.errors import InvalidTally, LedgerError

app = typer.Typer(
    help="Tally Ledger: a provable, open, unofficial election count.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
batch_app = typer.Typer(help="Merkle batches: seal, list, export.", no_args_is_help=True)
car_app = typer.Typer(help="Move content between stores as CAR v1 files.", no_args_is_help=True)
verify_app = typer.Typer(
    help="Audit a deployment trusting only the chain (JSON-RPC) and content checked against its CIDs.",
    no_args_is_help=True,
)
app.add_typer(batch_app, name="batch")
app.add_typer(car_app, name="car")
app.add_typer(verify_app, name="verify")
units_app = typer.Typer(help="Polling units: import the real unit list (names and coordinates).", no_args_is_help=True)
app.add_typer(units_app, name="units")


def _print_json(value: Any) -> None:
    typer.echo(json.dumps(value, ensure_ascii=False, indent=2, default=str))


def _open():  # type: ignore[no-untyped-def]
    from ledger.app import open_app

    return open_app()


@app.command()
def cid(files: Annotated[list[Path], typer.Argument(help="Files to hash", exists=True, dir_okay=False)]) -> None:
    """Print each file's CID, as `ipfs add -n -Q --cid-version=1` would."""
    from ledger.content.cli_helpers import cid_of_path

    for path in files:
        typer.echo(str(cid_of_path(path)))


@app.command()
def submit(file: Annotated[Path, typer.Argument(help="A signed tally as JSON", exists=True, dir_okay=False)]) -> None:
    """Submit one signed tally (JSON) and print its receipt."""
    ledger_app = _open()
    accepted = ledger_app.ledger.submit_tally(json.loads(file.read_text(encoding="utf-8")))
    _print_json(accepted.receipt)


@app.command()
def record(record_cid: str) -> None:
    """Print an accepted record (JSON view)."""
    _print_json(_open().ledger.entry(record_cid).document)


@app.command()
def proof(record_cid: str) -> None:
    """Print the self-sufficient proof document of a record."""
    _print_json(_open().batcher.proof(record_cid))


@batch_app.command("seal")
def batch_seal(force: Annotated[bool, typer.Option(help="Seal whatever is pending, even if not due")] = False) -> None:
    """Seal every batch that is due."""
    for sealed in _open().batcher.seal_due(force=force):
        typer.echo(f"sealed batch {sealed.id}: {sealed.record_count} records, root {sealed.root}, manifest {sealed.manifest_cid}")


@batch_app.command("list")
def batch_list(offset: int = 0, limit: int = 100) -> None:
    """List batches and their status."""
    for batch in _open().batcher.batches(offset=offset, limit=limit):
        anchored = f" tx {batch.anchor_tx} block {batch.anchor_block}" if batch.anchor_tx else ""
        typer.echo(f"{batch.id:>6}  {batch.status:<9} {batch.record_count:>7} records  root {batch.root}{anchored}")


@batch_app.command("export")
def batch_export(
    batch_id: int,
    oz_dump: Annotated[Path, typer.Option("--oz-dump", help="Write @openzeppelin/merkle-tree's standard-v1 dump here")],
) -> None:
    """Export a batch as an OpenZeppelin StandardMerkleTree dump."""
    dump = _open().batcher.oz_dump(batch_id)
    oz_dump.write_text(json.dumps(dump, ensure_ascii=False, indent=2), encoding="utf-8")
    typer.echo(f"wrote {oz_dump} ({len(dump['values'])} leaves)")


@car_app.command("export")
def car_export(
    cids: Annotated[list[str], typer.Argument(help="Root CIDs (records, manifests, photos)")],
    output: Annotated[Path, typer.Option("--output", "-o", help="CAR file to write")],
) -> None:
    """Export roots with every block they link to (a record takes its photos along)."""
    from ledger.content.car import export_car
    from ledger.core.cid import CID

    summary = export_car(_open().content, [CID.parse(c) for c in cids], output)
    typer.echo(f"wrote {output}: {summary.block_count} blocks, {summary.byte_count} bytes")


@car_app.command("import")
def car_import(file: Annotated[Path, typer.Argument(exists=True, dir_okay=False)]) -> None:
    """Import every block of a CAR file, checking each block's hash."""
    from ledger.content.car import import_car

    summary = import_car(_open().content, file)
    typer.echo(f"imported {summary.block_count} blocks; roots:")
    for root in summary.roots:
        typer.echo(str(root))


# -- tally verify ---------------------------------------------------------------------

RpcOption = Annotated[str | None, typer.Option("--rpc", help="JSON-RPC URL (default: TALLY_RPC_URL or the local anvil)")]
ContractOption = Annotated[
    str | None, typer.Option("--contract", help="EvidenceAnchor address (default: this data dir's deployment)")
]
ContentOption = Annotated[
    str | None,
    typer.Option(
        "--content", help="car:FILE, ipfs:URL, blocks:DIR or a ledger gateway URL (default: --api, else the local blocks)"
    ),
]
ApiOption = Annotated[str | None, typer.Option("--api", help="A ledger API URL: hints and published numbers to compare")]
ApiKeyOption = Annotated[
    str | None, typer.Option("--api-key", envvar="TALLY_AUDITOR_KEY", help="An auditor API key (higher rate limits); optional")
]


@contextmanager
def _auditor(
    rpc: str | None,
    contract: str | None,
    content: str | None,
    api: str | None,  # type: ignore[no-untyped-def]
    api_key: str | None = None,
):
    """The auditor for a verify command; its scratch space (a CAR file's blocks) is removed when the command ends."""
    import tempfile

    import httpx

    from ledger.audit import Auditor, open_source
    from ledger.chain.connection import connect
    from ledger.chain.deploy import connect_from_settings, manifest_path, read_manifest
    from ledger.chain.reader import EvidenceAnchorReader
    from ledger.election import load_election
    from ledger.settings import Settings

    settings = Settings()
    web3 = connect(rpc, expected_chain_id=settings.chain_id) if rpc else connect_from_settings(settings)
    deploy_block = 0
    if contract is None:
        manifest = read_manifest(manifest_path(settings))
        if manifest is None:
            raise typer.BadParameter("no --contract given and no deployment manifest in the data directory")
        contract, deploy_block = manifest.evidence_anchor.address, manifest.evidence_anchor.deploy_block
    client = EvidenceAnchorReader(web3, contract, deploy_block=deploy_block)  # the auditor only reads
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    http = httpx.Client(timeout=60, headers=headers) if api else None
    source_spec = content or api or f"blocks:{settings.blocks_dir}"
    with tempfile.TemporaryDirectory(prefix="tally-verify-") as scratch:
        source = open_source(source_spec, scratch=Path(scratch), client=http)
        yield Auditor(chain=client, content=source, election=load_election(settings.election), api=http, api_url=api)


def _finish(report, what: str) -> None:  # type: ignore[no-untyped-def]
    for mismatch in report.mismatches:
        typer.echo(f"MISMATCH {mismatch}")
    summary = f"{report.batches} batches, {report.records} records, {report.decisions} decisions"
    if report.authority_entries:
        summary += f", {report.authority_entries} authority entries"
    if report.photos_skipped:
        summary += " checked; photos skipped (--skip-photos)"
    elif report.photos:
        summary += f", {report.photos} photos checked"
    else:
        summary += " checked"
    if report.ok:
        typer.echo(f"OK {what}: {summary}; everything matches the chain")
        return
    typer.echo(f"FAILED {what}: {len(report.mismatches)} mismatches ({summary})", err=True)
    raise typer.Exit(1)


@verify_app.command("record")
def verify_record(
    record_cid: str,
    rpc: RpcOption = None,
    contract: ContractOption = None,
    content: ContentOption = None,
    api: ApiOption = None,
    api_key: ApiKeyOption = None,
) -> None:
    """Recompute a record's CID, leaf and batch root, and compare with the root on chain."""
    with _auditor(rpc, contract, content, api, api_key) as auditor:
        _finish(auditor.verify_record(record_cid), f"record {record_cid}")


@verify_app.command("receipt")
def verify_receipt(
    receipt_file: Annotated[Path, typer.Argument(metavar="FILE", help="a receipt as the ledger answered it (JSON)")],
    rpc: RpcOption = None,
    contract: ContractOption = None,
    content: ContentOption = None,
    api: ApiOption = None,
    api_key: ApiKeyOption = None,
) -> None:
    """Check a receipt: signed by the receipt key of the authority log anchored on chain, and
    its record in an anchored batch with the leaf it promised."""
    try:
        receipt = json.loads(receipt_file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise typer.BadParameter(f"{receipt_file}: not a readable JSON receipt ({exc})") from None
    if isinstance(receipt, dict) and isinstance(receipt.get("receipt"), dict):
        receipt = receipt["receipt"]  # the whole answer of POST /v1/tallies
    with _auditor(rpc, contract, content, api, api_key) as auditor:
        _finish(auditor.verify_receipt(receipt), f"receipt of {receipt.get('record_cid') if isinstance(receipt, dict) else '?'}")


@verify_app.command("unit")
def verify_unit(
    unit: str,
    rpc: RpcOption = None,
    contract: ContractOption = None,
    content: ContentOption = None,
    api: ApiOption = None,
    api_key: ApiKeyOption = None,
) -> None:
    """Check every record of a polling unit against the chain."""
    with _auditor(rpc, contract, content, api, api_key) as auditor:
        _finish(auditor.verify_unit(unit), f"unit {unit}")


@verify_app.command("batch")
def verify_batch(
    batch_id: int,
    rpc: RpcOption = None,
    contract: ContractOption = None,
    content: ContentOption = None,
    api: ApiOption = None,
    api_key: ApiKeyOption = None,
) -> None:
    """Rebuild a batch from its manifest and compare its root with the chain's."""
    from ledger.audit import AuditReport

    report = AuditReport()
    with _auditor(rpc, contract, content, api, api_key) as auditor:
        auditor.verify_batch(batch_id, report)
    _finish(report, f"batch {batch_id}")


@verify_app.command("all")
def verify_all(
    rpc: RpcOption = None,
    contract: ContractOption = None,
    content: ContentOption = None,
    api: ApiOption = None,
    api_key: ApiKeyOption = None,
    workers: Annotated[
        int, typer.Option("--workers", min=0, help="processes checking records (0: one per CPU; a gateway source uses one)")
    ] = 0,
    skip_photos: Annotated[
        bool, typer.Option("--skip-photos", help="a quick pass: do not fetch and re-hash the photos the records link")
    ] = False,
) -> None:
    """Every anchored batch in order, every photo the records link (each re-hashed block by
    block), then replay all decisions and compare the certified numbers with what the API publishes."""
    import os

    from rich.progress import Progress

    workers = workers or os.cpu_count() or 1
    with _auditor(rpc, contract, content, api, api_key) as auditor, Progress() as progress:
        task = progress.add_task("verifying batches", total=None)

        def advance(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        report = auditor.verify_all(progress=advance, workers=workers, photos=not skip_photos)
    certified = report.certified["constituencies"]
    typer.echo(
        f"certified: {sum(c['units'] for c in certified.values())} units in {len(certified)} constituencies "
        f"replayed from {report.decisions} decisions"
    )
    _finish(report, "all batches")


@app.command()
def demo(
    units: Annotated[int, typer.Option(help="About how many polling units to simulate (whole constituencies)")] = 1000,
    seed: Annotated[int, typer.Option(help="Random seed; the same seed gives the same night")] = 2566,
    serve: Annotated[bool, typer.Option("--serve/--no-serve", help="Keep serving the API when the night is done")] = True,
) -> None:
    """Simulate election night on the real 2023 structure: report, resolve, certify, anchor."""
    from ledger.cli.demo import run_demo

    run_demo(units=units, seed=seed, serve=serve)


# -- tally serve, tally seats ---------------------------------------------------------


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Interface to listen on (default TALLY_HOST, 127.0.0.1)")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default TALLY_PORT, 8000)")] = None,
    access_log: Annotated[bool, typer.Option("--access-log/--no-access-log", help="Log every request")] = False,
    create_admin_key: Annotated[
        str | None,
        typer.Option("--create-admin-key", metavar="NAME", help="Make an admin API key named NAME, print it once, and exit"),
    ] = None,
) -> None:
    """Serve the HTTP API (OpenAPI at /docs), with aggregates, sealing and anchoring in the background.

    Make the first admin key with `tally serve --create-admin-key NAME`."""
    from ledger.cli.serve import create_admin_key as make_admin_key
    from ledger.cli.serve import serve_app
    from ledger.settings import Settings

    settings = Settings()
    if create_admin_key is not None:
        principal_id, token = make_admin_key(settings, create_admin_key)
        typer.echo(f"admin key {principal_id} ({create_admin_key}); it is shown only now:", err=True)
        typer.echo(token)
        return
    serve_app(settings, host=host, port=port, access_log=access_log)


@app.command()
def seats(
    votes_file: Annotated[
        Path | None,
        typer.Argument(
            help='JSON party-list votes, like {"31": 14438851, "29": 10962522}; "-" reads stdin; '
            "omit to use this ledger's count",
            allow_dash=True,
        ),
    ] = None,
    party_list_votes: Annotated[
        Path | None, typer.Option("--party-list-votes", help="The same JSON file as the argument", allow_dash=True)
    ] = None,
    seat_count: Annotated[int, typer.Option("--seats", help="Party-list seats to allocate")] = 100,
    view: Annotated[str, typer.Option(help="Without a file: the aggregate view, unofficial or certified")] = "unofficial",
    house: Annotated[bool, typer.Option("--house", help="Without a file: print the projected House of 500 instead")] = False,
) -> None:
    """Allocate party-list seats by the 2023 largest-remainder rule and print the allocation as JSON.

    Ties at the cut-off are reported, never drawn (format tally-party-list-allocation-v1)."""
    from ledger.results.seats import allocate_party_list, parse_votes_json

    votes_file = votes_file or party_list_votes
    if votes_file is not None:
        text = sys.stdin.read() if str(votes_file) == "-" else votes_file.read_text(encoding="utf-8")
        try:
            document = json.loads(text)
        except json.JSONDecodeError as exc:
            raise typer.BadParameter(f"{votes_file} is not JSON: {exc}") from None
        _print_json(allocate_party_list(parse_votes_json(document), seat_count).as_json())
        return
    ledger_app = _open()
    aggregate = ledger_app.aggregates.view(view)
    if house:
        _print_json(aggregate.house())
        return
    _print_json(allocate_party_list(aggregate.party_votes(), seat_count).as_json())


@app.command(
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    add_help_option=False,
)
def bench(context: typer.Context) -> None:
    """Replay the national night through the real HTTP API and time every stage (the `bench`
    package, `python -m bench`; `tally bench --help` lists its options, `tally bench
    api|cid|merkle|anchor` runs the other benchmarks)."""
    import subprocess

    raise typer.Exit(subprocess.call([sys.executable, "-m", "bench", *context.args]))


@units_app.command("import")
def units_import(
    file: Annotated[
        Path,
        typer.Argument(
            help="CSV (with a header) or JSON array: unit (or constituency and number), latitude, longitude, name",
            exists=True,
            dir_okay=False,
        ),
    ],
) -> None:
    """Import the real list of polling units: their names and coordinates, against which
    photos are checked (photo_far). The whole file is checked first: unknown units, bad
    coordinates and duplicates are listed with their line numbers, and nothing is imported.
    Importing the same file again changes nothing."""
    from ledger.election.unit_list import InvalidUnitList, parse_unit_list

    ledger_app = _open()
    try:
        rows = parse_unit_list(file.read_text(encoding="utf-8"), election=ledger_app.election, source=str(file))
    except InvalidUnitList as exc:
        typer.echo(f"error: {file} was not imported; fix these lines and import it again:", err=True)
        for line, message in exc.problems:
            typer.echo(f"  {file}:{line}: {message}" if line else f"  {file}: {message}", err=True)
        raise typer.Exit(2) from None
    counts = ledger_app.review.import_unit_locations(rows)
    typer.echo(
        f"{len(rows)} units in {file}: {counts['added']} added, {counts['changed']} changed, "
        f"{counts['unchanged']} unchanged; {counts['rescreened']} reported units screened again"
    )


def main() -> None:
    try:
        app()
    except InvalidTally as exc:
        typer.echo("error: the tally was refused:", err=True)
        for error in exc.errors:
            typer.echo(f"  {error}", err=True)
        sys.exit(2)
    except LedgerError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
