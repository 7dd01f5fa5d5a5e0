"""``clearance approve``, ``gate``, ``promote``, ``status`` and ``release show``."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from clearance.cli.common import (
    ACTOR_OPTION,
    JSON_OPTION,
    digest_arg,
    out,
    print_json,
    resolve_actor,
    state,
)
from clearance.cli.render import decision_table, verdict
from clearance.core.approvals import Meaning
from clearance.core.gates import Decision
from clearance.errors import ExitCode
from clearance.usecases.releases import GateBlocked, approve, gate, promote, release_show, status

release_app = typer.Typer(
    help="A release's record and its definition of done.", no_args_is_help=True
)
ENV_OPTION = typer.Option(..., "--env", help="Target environment, e.g. staging or prod.")


def register(root: typer.Typer) -> None:
    root.command("approve")(approve_command)
    root.command("gate")(gate_command)
    root.command("promote")(promote_command)
    root.command("status")(status_command)
    root.add_typer(release_app, name="release")


def render_decision(decision: Decision) -> None:
    out.print(decision_table(decision))
    out.print(verdict(decision))


def approve_command(
    ctx: typer.Context,
    digest: str = typer.Argument(..., help="sha256:<hex> of the artifact."),
    env: str = ENV_OPTION,
    meaning: Meaning = typer.Option(
        Meaning.APPROVAL, "--meaning", help="What the signature means (review does not count)."
    ),
    reason: str | None = typer.Option(None, "--reason", help="Why, in the approver's words."),
    actor: str | None = ACTOR_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Sign an approval over the artifact's evidence as it stands now."""
    cli = state(ctx)
    who = resolve_actor(actor, cli.settings())
    with cli.instance() as instance:
        entry = approve(
            instance, digest_arg(digest), env=env, meaning=meaning, actor=who, reason=reason
        )
    if as_json:
        print_json({"entry": entry.seq, "actor": entry.actor, "at": entry.at, **entry.data})
        return
    out.print(
        f"{who} signed {meaning.value} for {env} at {entry.at} over evidence set "
        f"{entry.data['evidence_set'][:19]}… (ledger entry {entry.seq})",
        markup=False,
    )


def gate_command(
    ctx: typer.Context,
    digest: str = typer.Argument(..., help="sha256:<hex> of the artifact."),
    env: str = ENV_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """May this artifact go to --env? Every required control and why; exit 0 yes, 1 no."""
    with state(ctx).instance() as instance:
        decision = gate(instance, digest_arg(digest), env)
    if as_json:
        print_json(decision.to_json())
    else:
        render_decision(decision)
    if not decision.allowed:
        raise typer.Exit(ExitCode.REFUSED)


def promote_command(
    ctx: typer.Context,
    digest: str = typer.Argument(..., help="sha256:<hex> of the artifact (never a tag)."),
    env: str = ENV_OPTION,
    config: Path | None = typer.Option(
        None, "--config", help="Environment configuration (YAML/JSON); secrets as references."
    ),
    actor: str | None = ACTOR_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Run the gate and, if it allows, record the deployment of the digest to --env."""
    cli = state(ctx)
    who = resolve_actor(actor, cli.settings())
    with cli.instance() as instance:
        try:
            result = promote(instance, digest_arg(digest), env=env, actor=who, config=config)
        except GateBlocked as blocked:
            if as_json:
                print_json({"promoted": False, **blocked.decision.to_json()})
            else:
                render_decision(blocked.decision)
            raise typer.Exit(ExitCode.REFUSED) from blocked
    if as_json:
        print_json(
            {
                "promoted": True,
                "entry": result.entry.seq,
                "at": result.entry.at,
                "config": result.entry.data["config"],
                **result.decision.to_json(),
            }
        )
        return
    out.print(
        f"promoted {result.decision.digest} to {env} (tier {result.decision.tier}) by "
        f"{who}, ledger entry {result.entry.seq}",
        markup=False,
    )


def status_command(
    ctx: typer.Context,
    env: str | None = typer.Option(None, "--env", help="Only this environment."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Which digest runs where, since when, promoted by whom."""
    with state(ctx).instance() as instance:
        rows = status(instance, env)
    if as_json:
        print_json(rows)
        return
    if not rows:
        out.print("nothing promoted yet")
        return
    table = Table("env", "digest", "name", "tier", "since", "by")
    for r in rows:
        table.add_row(
            r["env"], r["digest"][:19] + "…", r["name"] or "", r["tier"] or "", r["since"], r["by"]
        )
    out.print(table)


@release_app.command("show")
def release_show_command(
    ctx: typer.Context,
    digest: str = typer.Argument(..., help="sha256:<hex> of the artifact."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Is the release record complete? Manifest, tests, approvals, hash, target, verification."""
    with state(ctx).instance() as instance:
        result = release_show(instance, digest_arg(digest))
    if as_json:
        print_json(result.to_json())
    else:
        table = Table("item", "", "detail")
        for name, ok, detail in result.items:
            table.add_row(name, "[green]yes[/]" if ok else "[red]missing[/]", detail)
        out.print(table)
        out.print("[green]COMPLETE[/]" if result.complete else "[red]INCOMPLETE[/]")
    if not result.complete:
        raise typer.Exit(ExitCode.REFUSED)
