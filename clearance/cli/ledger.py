"""``clearance ledger ...``: verify the audit ledger, export checkpoints, prove entries."""

from __future__ import annotations

from contextlib import closing
from pathlib import Path
from typing import Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

from clearance.cli.common import JSON_OPTION, err, out, print_json, state
from clearance.errors import ExitCode
from clearance.files import read_text, write_text
from clearance.usecases.ledger import verify_ledger
from clearance.usecases.service import LocalService

app = typer.Typer(help="The tamper-evident audit ledger.", no_args_is_help=True)
proof_app = typer.Typer(help="RFC 9162 inclusion and consistency proofs.", no_args_is_help=True)
app.add_typer(proof_app, name="proof")


def _problem(p: dict[str, Any]) -> str:
    return f"entry {p['entry']}: {p['problem']}" if p["entry"] is not None else p["problem"]


@app.command("verify")
def verify_command(
    ctx: typer.Context,
    against: Path | None = typer.Option(
        None, "--against", help="A checkpoint exported earlier: prove the log still extends it."
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Recompute every leaf, root, signature and blob; exit 0 and "OK <size> <root>" if intact."""
    witness = read_text(against, limit=64 * 1024, what="checkpoint") if against else None
    with closing(state(ctx).service()) as svc:
        if isinstance(svc, LocalService) and err.is_terminal and not as_json:
            instance = svc.instance
            with Progress(
                "verifying",
                BarColumn(),
                MofNCompleteColumn(),
                TimeRemainingColumn(),
                console=err,
                transient=True,
            ) as bar:
                task = bar.add_task("verify", total=instance.ledger.size())
                result = verify_ledger(
                    instance, against=witness, progress=lambda n: bar.update(task, completed=n)
                ).to_json()
        else:
            result = svc.verify(witness)
    if as_json:
        print_json(result)
    elif result["ok"]:
        suffix = f" (extends checkpoint {result['against']['size']})" if result["against"] else ""
        out.print(f"OK {result['size']} {result['root']}{suffix}")
    else:
        problems = result["problems"]
        out.print(
            f"FAILED {result['size']} entries; first bad: {_problem(problems[0])}", markup=False
        )
        for problem in problems[1:20]:
            out.print(f"  {_problem(problem)}", markup=False)
        if len(problems) > 20:
            out.print(f"  ... and {len(problems) - 20} more problems")
    if not result["ok"]:
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
    with closing(state(ctx).service()) as svc:
        cp = svc.checkpoint()
    if export is not None:
        write_text(export, cp["note"])
    if as_json:
        print_json(cp)
    elif export is None:
        print(cp["note"], end="")
    else:
        out.print(f"wrote checkpoint of size {cp['size']} to {export}", markup=False)


@proof_app.command("inclusion")
def inclusion_command(
    ctx: typer.Context,
    entry: int = typer.Argument(..., help="Ledger entry number (0-based)."),
    size: int | None = typer.Option(None, "--size", help="Tree size (default: latest)."),
) -> None:
    """Print an inclusion proof for one entry as JSON (hashes in base64)."""
    with closing(state(ctx).service()) as svc:
        print_json(svc.inclusion(entry, size))


@proof_app.command("consistency")
def consistency_command(
    ctx: typer.Context,
    old_size: int = typer.Argument(..., help="The earlier tree size."),
    new_size: int | None = typer.Option(
        None, "--to", help="The later tree size (default: latest)."
    ),
) -> None:
    """Print a consistency proof between two tree sizes as JSON (hashes in base64)."""
    with closing(state(ctx).service()) as svc:
        print_json(svc.consistency(old_size, new_size))
