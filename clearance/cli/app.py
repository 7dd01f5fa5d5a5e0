"""The ``clearance`` command: root options, sub-command groups, and the one error handler."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from clearance import __version__
from clearance.cli import (
    accounts,
    artifacts,
    evidence,
    judge,
    keys,
    ledger,
    policy,
    releases,
    rollouts,
    server,
    setup,
)
from clearance.cli.common import CliState, err
from clearance.errors import Error

app = typer.Typer(
    name="clearance",
    help="Release governance for regulated software: every change classified, evidenced, "
    "approved, reversible and provable.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def _version(value: bool) -> None:
    if value:
        print(f"clearance {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    home: Path | None = typer.Option(
        None,
        "--home",
        help="State directory (database, blobs, keys). Default: $CLEARANCE_HOME or ~/.clearance.",
        show_default=False,
    ),
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    ctx.obj = CliState(home=home)


setup.register(app)
policy.register(app)
rollouts.register(app)
artifacts.register(app)
releases.register(app)
server.register(app)
evidence.register(app)
keys.register(app)
accounts.register(app)
judge.register(app)
app.add_typer(ledger.app, name="ledger")


def main() -> None:
    try:
        app()
    except Error as exc:
        err.print(f"error: {exc.diagnostics()}", markup=False)
        sys.exit(exc.exit_code)
