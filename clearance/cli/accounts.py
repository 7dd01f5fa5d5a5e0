"""``clearance account ...``: the people who sign in to the web UI and sign approvals there."""

from __future__ import annotations

import sys
from contextlib import closing

import typer
from rich.table import Table

from clearance.cli.common import (
    ACTOR_OPTION,
    JSON_OPTION,
    CliState,
    out,
    print_json,
    resolve_actor,
    state,
)
from clearance.core.roles import Role
from clearance.errors import InputError
from clearance.usecases import accounts

account_app = typer.Typer(
    help="Web UI accounts: printed name, role, argon2id-hashed password.", no_args_is_help=True
)


def register(root: typer.Typer) -> None:
    root.add_typer(account_app, name="account")


def _local(cli: CliState) -> None:
    if cli.remote:
        raise InputError(
            "account commands run on the instance itself, not through CLEARANCE_URL",
            hint="run them where `clearance serve` runs (unset CLEARANCE_URL)",
        )


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        line = sys.stdin.readline()
        return line[:-1] if line.endswith("\n") else line
    value: str = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    return value


@account_app.command("create")
def account_create(
    ctx: typer.Context,
    email: str = typer.Option(..., "--email", help="Sign-in name; the actor in the ledger."),
    name: str = typer.Option(..., "--name", help="Printed name shown with signatures."),
    role: Role = typer.Option(..., "--role", help="What the account may do."),
    password_stdin: bool = typer.Option(
        False, "--password-stdin", help="Read the password from the first line of stdin."
    ),
    actor: str | None = ACTOR_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Create an account; the password is prompted for twice (or read from stdin)."""
    cli = state(ctx)
    _local(cli)
    who = resolve_actor(actor, cli.settings())
    password = _read_password(password_stdin)
    with closing(cli.instance()) as instance:
        account = accounts.create_account(
            instance, email=email, name=name, role=role, password=password, actor=who
        )
    if as_json:
        print_json(account.to_json())
        return
    out.print(
        f"created {account.display_name} <{account.email}> ({account.role.value})", markup=False
    )


@account_app.command("list")
def account_list(ctx: typer.Context, as_json: bool = JSON_OPTION) -> None:
    """List accounts: email, printed name, role, created, disabled (never passwords)."""
    cli = state(ctx)
    _local(cli)
    with closing(cli.instance()) as instance:
        rows = accounts.list_accounts(instance)
    if as_json:
        print_json([a.to_json() for a in rows])
        return
    table = Table("email", "name", "role", "created", "disabled")
    for a in rows:
        table.add_row(a.email, a.display_name, a.role.value, a.created_at, a.disabled_at or "")
    out.print(table)


@account_app.command("disable")
def account_disable(
    ctx: typer.Context,
    email: str = typer.Argument(..., help="The account's email."),
    actor: str | None = ACTOR_OPTION,
) -> None:
    """Disable an account: it can no longer sign in or sign (recorded in the ledger)."""
    cli = state(ctx)
    _local(cli)
    with closing(cli.instance()) as instance:
        account = accounts.disable_account(
            instance, email=email, actor=resolve_actor(actor, cli.settings())
        )
    out.print(f"disabled {account.email}", markup=False)
