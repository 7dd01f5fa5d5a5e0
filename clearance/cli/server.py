"""``clearance serve`` and ``clearance token ...``: the shared server and its identities."""

from __future__ import annotations

from contextlib import closing

import typer
from rich.table import Table

from clearance.cli.common import (
    ACTOR_OPTION,
    JSON_OPTION,
    err,
    out,
    print_json,
    resolve_actor,
    state,
)
from clearance.core.roles import Role

token_app = typer.Typer(
    help="API tokens for the server (shown once, stored hashed).", no_args_is_help=True
)


def register(root: typer.Typer) -> None:
    root.command("serve")(serve_command)
    root.add_typer(token_app, name="token")


def serve_command(
    ctx: typer.Context,
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
    port: int = typer.Option(8080, "--port", help="Port to listen on."),
    workers: int = typer.Option(
        1, "--workers", min=1, max=64, help="Server processes sharing the port (about one a core)."
    ),
) -> None:
    """Run the REST API (OpenAPI at /docs and /openapi.json) on this instance."""
    from clearance.server.app import serve

    settings = state(ctx).settings()
    err.print(
        f"clearance serving {settings.database_url.split('@')[-1]} on http://{host}:{port}"
        + (f" with {workers} worker processes" if workers > 1 else ""),
        markup=False,
    )
    serve(settings, host=host, port=port, workers=workers)


@token_app.command("create")
def token_create(
    ctx: typer.Context,
    name: str = typer.Option(..., "--name", help="Who the token is for: ci-orders, alice@..."),
    role: Role = typer.Option(..., "--role", help="What the token may do."),
    expires: str | None = typer.Option(None, "--expires", help="Lifetime, e.g. 90d, 12h."),
    actor: str | None = ACTOR_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Create a token; it is printed once and only its hash is kept."""
    cli = state(ctx)
    who = resolve_actor(actor, cli.settings())
    with closing(cli.service()) as svc:
        issued = svc.create_token(name=name, role=role, expires=expires, actor=who)
    if as_json:
        print_json(issued)
        return
    print(issued["token"])
    err.print(
        f"token for {issued['name']} ({issued['role']}), expires "
        f"{issued['expires_at'] or 'never'}: store it now, it is not shown again",
        markup=False,
    )


@token_app.command("list")
def token_list(ctx: typer.Context, as_json: bool = JSON_OPTION) -> None:
    """List tokens: name, role, created, expiry, revoked (never the tokens)."""
    with closing(state(ctx).service()) as svc:
        rows = svc.tokens()
    if as_json:
        print_json(rows)
        return
    table = Table("name", "role", "created", "by", "expires", "revoked")
    for r in rows:
        table.add_row(
            r["name"],
            r["role"],
            r["created_at"],
            r["created_by"],
            r["expires_at"] or "never",
            r["revoked_at"] or "",
        )
    out.print(table)


@token_app.command("revoke")
def token_revoke(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="The token's name."),
    actor: str | None = ACTOR_OPTION,
) -> None:
    """Revoke the active token with this name (recorded in the ledger)."""
    cli = state(ctx)
    with closing(cli.service()) as svc:
        svc.revoke_token(name=name, actor=resolve_actor(actor, cli.settings()))
    out.print(f"revoked {name}", markup=False)
