"""``clearance key show``: the instance's public key, for third-party verifiers."""

from __future__ import annotations

from contextlib import closing

import typer

from clearance.cli.common import JSON_OPTION, print_json, state

app = typer.Typer(help="The instance's signing key.", no_args_is_help=True)


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="key")


@app.command("show")
def show_command(ctx: typer.Context, as_json: bool = JSON_OPTION) -> None:
    """Print the public key (PEM); --json adds the DSSE key id and the signed-note verifier key."""
    with closing(state(ctx).service()) as svc:
        info = svc.key()
    if as_json:
        print_json(info)
    else:
        print(info["public_key"], end="")
