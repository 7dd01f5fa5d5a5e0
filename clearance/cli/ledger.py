"""``clearance ledger ...``: verify the audit ledger, export checkpoints, prove entries."""

from __future__ import annotations

import base64
from pathlib import Path

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

from clearance.cli.common import JSON_OPTION, err, out, print_json, state
from clearance.errors import ExitCode
from clearance.usecases.ledger import consistency, export_checkpoint, inclusion, verify_ledger

app = typer.Typer(help="The tamper-evident audit ledger.", no_args_is_help=True)
proof_app = typer.Typer(help="RFC 9162 inclusion and consistency proofs.", no_args_is_help=True)
app.add_typer(proof_app, name="proof")


@app.command("verify")
def verify_command(
    ctx: typer.Context,
    against: Path | None = typer.Option(
        None, "--against", help="A checkpoint exported earlier: prove the log still extends it."
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Recompute every leaf, root, signature and blob; exit 0 and "OK <size> <root>" if intact."""
    with state(ctx).instance() as instance:
        total = instance.ledger.size()
        if as_json or not err.is_terminal or total < 5000:
            result = verify_ledger(instance, against=against)
        else:
            with Progress(
                "verifying", BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(), console=err
            ) as bar:
                task = bar.add_task("verify", total=total)
                result = verify_ledger(
                    instance, against=against, progress=lambda n: bar.update(task, completed=n)
                )
    if as_json:
        print_json(result.to_json())
    elif result.ok:
        suffix = f" (extends checkpoint {result.against.size})" if result.against else ""
        out.print(f"OK {result.size} {result.root.hex()}{suffix}")
    else:
        out.print(f"FAILED {result.size} entries; first bad: {result.problems[0]}", markup=False)
        for problem in result.problems[1:20]:
            out.print(f"  {problem}", markup=False)
        if len(result.problems) > 20:
            out.print(f"  ... and {len(result.problems) - 20} more problems")
    if not result.ok:
        raise typer.Exit(ExitCode.REFUSED)


@app.command("checkpoint")
def checkpoint_command(
    ctx: typer.Context,
    export: Path | None = typer.Option(
        None, "--export", help="Write the latest signed checkpoint to this file for a witness."
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Print (or export) the latest signed checkpoint, in the signed-note form."""
    with state(ctx).instance() as instance:
        if export is not None:
            cp = export_checkpoint(instance, export)
        else:
            latest = instance.ledger.latest_checkpoint()
            if latest is None:
                out.print("the ledger is empty")
                return
            cp = latest
    if as_json:
        print_json(
            {
                "origin": cp.origin,
                "size": cp.size,
                "root_hash": base64.b64encode(cp.root).decode(),
                "note": cp.note(),
            }
        )
    elif export is None:
        print(cp.note(), end="")
    else:
        out.print(f"wrote checkpoint of size {cp.size} to {export}", markup=False)


@proof_app.command("inclusion")
def inclusion_command(
    ctx: typer.Context,
    entry: int = typer.Argument(..., help="Ledger entry number (0-based)."),
    size: int | None = typer.Option(None, "--size", help="Tree size (default: latest)."),
) -> None:
    """Print an inclusion proof for one entry as JSON (hashes in base64)."""
    with state(ctx).instance() as instance:
        print_json(inclusion(instance, entry, size))


@proof_app.command("consistency")
def consistency_command(
    ctx: typer.Context,
    old_size: int = typer.Argument(..., help="The earlier tree size."),
    new_size: int | None = typer.Option(
        None, "--to", help="The later tree size (default: latest)."
    ),
) -> None:
    """Print a consistency proof between two tree sizes as JSON (hashes in base64)."""
    with state(ctx).instance() as instance:
        print_json(consistency(instance, old_size, new_size))
