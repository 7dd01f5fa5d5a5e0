"""``clearance init``: create or upgrade an instance."""

from __future__ import annotations

import tempfile
from pathlib import Path

import typer

from clearance.cli.common import ACTOR_OPTION, JSON_OPTION, out, print_json, resolve_actor, state
from clearance.demo.story import run_demo
from clearance.errors import InputError
from clearance.usecases.instance import init


def register(app: typer.Typer) -> None:
    app.command("init")(init_command)
    app.command("demo")(demo_command)


def init_command(
    ctx: typer.Context,
    origin: str | None = typer.Option(
        None,
        "--origin",
        help="Name of this ledger in signed checkpoints, e.g. clearance.example.org/prod "
        "(no spaces). Default: clearance.local/<random>.",
    ),
    actor: str | None = ACTOR_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Create CLEARANCE_HOME: database schema, blob store and Ed25519 signing key (idempotent)."""
    settings = state(ctx).settings()
    with init(settings, origin=origin, actor=resolve_actor(actor, settings)) as instance:
        info = {
            "home": str(settings.home),
            "database": instance.db.describe(),
            "blobs": settings.blob_url,
            "origin": instance.origin,
            "keyid": instance.signer.keyid,
            "ledger_size": instance.ledger.size(),
        }
    if as_json:
        print_json(info)
        return
    out.print(f"Clearance is ready in {info['home']}")
    for key in ("database", "blobs", "origin", "keyid", "ledger_size"):
        out.print(f"  {key:<12} {info[key]}")


def demo_command(
    directory: Path | None = typer.Option(
        None, "--dir", help="Work in this (new or empty) directory instead of a temporary one."
    ),
) -> None:
    """Run the walk-through: a sample clinical repo, a governed release, a verified ledger."""
    if directory is None:
        directory = Path(tempfile.mkdtemp(prefix="clearance-demo-"))
    elif directory.exists() and any(directory.iterdir()):
        raise InputError("the demo directory must be new or empty", where=str(directory))
    run_demo(directory.resolve(), out)
