"""The ``tally`` command line."""

from __future__ import annotations

import json
import sys
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
app.add_typer(batch_app, name="batch")
app.add_typer(car_app, name="car")


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


@app.command()
def demo(
    units: Annotated[int, typer.Option(help="How many polling units to simulate")] = 200,
    reports: Annotated[int, typer.Option(help="Reports per unit (several organisations)")] = 2,
    seed: Annotated[int, typer.Option(help="Random seed; the same seed gives the same night")] = 2566,
) -> None:
    """Simulate election night on the real 2023 structure, then verify every proof."""
    from ledger.demo import run_demo

    run_demo(units=units, reports=reports, seed=seed)


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
