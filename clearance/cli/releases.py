"""``clearance approve``, ``gate``, ``promote``, ``status``, ``release show`` and ``search``."""

from __future__ import annotations

from contextlib import closing
from pathlib import Path

import typer
from rich.table import Table

from clearance.cli.common import (
    ACTOR_OPTION,
    DIGEST_ARGUMENT,
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
from clearance.files import read_text
from clearance.usecases.releases import GateBlocked

release_app = typer.Typer(
    help="A release's record and its definition of done.", no_args_is_help=True
)
ENV_OPTION = typer.Option(..., "--env", help="Target environment, e.g. staging or prod.")


def register(root: typer.Typer) -> None:
    root.command("approve")(approve_command)
    root.command("gate")(gate_command)
    root.command("promote")(promote_command)
    root.command("status")(status_command)
    root.command("search")(search_command)
    root.add_typer(release_app, name="release")


def render_decision(decision: Decision) -> None:
    out.print(decision_table(decision))
    out.print(verdict(decision))


def approve_command(
    ctx: typer.Context,
    digest: str = DIGEST_ARGUMENT,
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
    with closing(cli.service()) as svc:
        info = svc.approve(digest_arg(digest), env=env, meaning=meaning, reason=reason, actor=who)
    if as_json:
        print_json(info)
        return
    out.print(
        f"{info['actor']} signed {info['meaning']} for {env} at {info['at']} over evidence set "
        f"{info['evidence_set'][:19]}… (ledger entry {info['entry']})",
        markup=False,
    )


def gate_command(
    ctx: typer.Context,
    digest: str = DIGEST_ARGUMENT,
    env: str = ENV_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """May this artifact go to --env? Every required control and why; exit 0 yes, 1 no."""
    with closing(state(ctx).service()) as svc:
        decision = svc.gate(digest_arg(digest), env)
    if as_json:
        print_json(decision)
    else:
        render_decision(Decision.from_json(decision))
    if not decision["allowed"]:
        raise typer.Exit(ExitCode.REFUSED)


def promote_command(
    ctx: typer.Context,
    digest: str = typer.Argument(..., help="sha256:<hex> of the artifact (never a tag)."),
    env: str = ENV_OPTION,
    config: Path | None = typer.Option(
        None, "--config", help="Environment configuration (YAML/JSON); secrets as references."
    ),
    break_glass: bool = typer.Option(
        False,
        "--break-glass",
        help="Emergency: waive missing approvals (release managers); "
        "flagged everywhere and awaiting retro-approval until approved.",
    ),
    reason: str | None = typer.Option(None, "--reason", help="Why (required with --break-glass)."),
    actor: str | None = ACTOR_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Run the gate and, if it allows, record the deployment of the digest to --env."""
    cli = state(ctx)
    who = resolve_actor(actor, cli.settings())
    text = read_text(config, what="configuration") if config is not None else None
    with closing(cli.service()) as svc:
        try:
            result = svc.promote(
                digest_arg(digest),
                env=env,
                actor=who,
                config=text,
                break_glass=(reason or "") if break_glass else None,
            )
        except GateBlocked as blocked:
            if as_json:
                print_json({"promoted": False, **blocked.decision.to_json()})
            else:
                render_decision(blocked.decision)
            raise typer.Exit(ExitCode.REFUSED) from blocked
    if as_json:
        print_json(result)
        return
    out.print(
        f"promoted {result['digest']} to {env} (tier {result['tier']}), ledger entry "
        f"{result['entry']}",
        markup=False,
    )
    if result.get("break_glass") is not None:
        out.print(
            f"[red]BREAK-GLASS[/]: approvals waived ({result['break_glass']}); awaiting "
            "retro-approval until they are given"
        )


def status_command(
    ctx: typer.Context,
    env: str | None = typer.Option(None, "--env", help="Only this environment."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Which digest runs where, since when, promoted by whom."""
    with closing(state(ctx).service()) as svc:
        rows = svc.status(env)
    if as_json:
        print_json(rows)
        return
    if not rows:
        out.print("nothing promoted yet")
        return
    table = Table("env", "digest", "name", "tier", "since", "by", "flags")
    for r in rows:
        flag = ""
        if r.get("break_glass") is not None:
            retro = "retro-approved" if r["retro_approval"] == "done" else "awaiting retro-approval"
            flag = f"[red]break-glass[/] ({retro})"
        table.add_row(
            r["env"],
            r["digest"][:19] + "…",
            r["name"] or "",
            r["tier"] or "",
            r["since"],
            r["by"],
            flag,
        )
    out.print(table)


def search_command(
    ctx: typer.Context,
    change_request: str | None = typer.Option(None, "--change-request", help="e.g. CR-1042."),
    version: str | None = typer.Option(
        None, "--version", help="A build number, a commit (7+ hex) or part of the name."
    ),
    tenant: str | None = typer.Option(None, "--tenant", help="Releases rolled out to a tenant."),
    since: str | None = typer.Option(None, "--since", help="Registered on or after (RFC 3339)."),
    until: str | None = typer.Option(None, "--until", help="Registered on or before."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Find releases by change request, version, tenant or date (an auditor's search)."""
    with closing(state(ctx).service()) as svc:
        rows = svc.search(
            change_request=change_request, version=version, tenant=tenant, since=since, until=until
        )
    if as_json:
        print_json(rows)
        return
    table = Table("digest", "name", "build", "commit", "change request", "registered")
    for r in rows:
        table.add_row(
            r["digest"][:19] + "…",
            r.get("name") or "",
            r.get("build_number") or "",
            (r.get("commit") or "")[:12],
            r.get("change_request") or "",
            r["recorded_at"],
        )
    out.print(table if rows else "no release matches")


@release_app.command("show")
def release_show_command(
    ctx: typer.Context,
    digest: str = DIGEST_ARGUMENT,
    as_json: bool = JSON_OPTION,
) -> None:
    """Is the release record complete? Manifest, tests, approvals, hash, target, verification."""
    with closing(state(ctx).service()) as svc:
        result = svc.release(digest_arg(digest))
    if as_json:
        print_json(result)
    else:
        table = Table("item", "", "detail")
        for item in result["items"]:
            mark = "[green]yes[/]" if item["present"] else "[red]missing[/]"
            table.add_row(item["item"], mark, item["detail"])
        out.print(table)
        out.print("[green]COMPLETE[/]" if result["complete"] else "[red]INCOMPLETE[/]")
    if not result["complete"]:
        raise typer.Exit(ExitCode.REFUSED)
