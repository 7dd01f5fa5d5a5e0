"""``clearance key show``: the instance's public key, for third-party verifiers."""

from __future__ import annotations

import typer

from clearance.attest.keys import public_key_pem, public_key_raw
from clearance.cli.common import JSON_OPTION, print_json, state
from clearance.core.ledger import note_verifier_key

app = typer.Typer(help="The instance's signing key.", no_args_is_help=True)


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="key")


@app.command("show")
def show_command(ctx: typer.Context, as_json: bool = JSON_OPTION) -> None:
    """Print the public key (PEM); --json adds the DSSE key id and the signed-note verifier key."""
    with state(ctx).instance() as instance:
        key = instance.signer.public_key
        info = {
            "keyid": instance.signer.keyid,
            "public_key": public_key_pem(key),
            "note_verifier_key": note_verifier_key(instance.origin, public_key_raw(key)),
            "origin": instance.origin,
        }
    if as_json:
        print_json(info)
    else:
        print(info["public_key"], end="")
