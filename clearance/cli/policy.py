"""``clearance policy check`` and ``clearance classify``."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from clearance.cli.common import JSON_OPTION, err, out, print_json
from clearance.core.policy import PolicyError
from clearance.errors import ExitCode
from clearance.usecases.classification import POLICY_FILE, classify_change, load_policy_file
from clearance.vcs.git import GitRepo

app = typer.Typer(help="Policy-as-code (clearance.yaml).", no_args_is_help=True)


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="policy")
    root.command("classify")(classify_command)


@app.command("check")
def check_command(
    file: Path = typer.Argument(Path(POLICY_FILE), help="The policy file."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Validate a policy: every problem with file, line and field; exit 2 if it is not usable."""
    try:
        policy, _ = load_policy_file(file)
    except PolicyError as exc:
        if as_json:
            print_json({"ok": False, "errors": [p.render(exc.name) for p in exc.problems]})
        else:
            err.print(exc.diagnostics(), markup=False, highlight=False)
        raise typer.Exit(ExitCode.INPUT) from exc
    warnings = [w.render(policy.name) for w in policy.warnings]
    if as_json:
        print_json(
            {
                "ok": True,
                "digest": policy.digest,
                "tiers": [t.name for t in policy.tiers],
                "environments": list(policy.environments),
                "warnings": warnings,
            }
        )
        return
    out.print(
        f"OK {file}: {len(policy.tiers)} tiers ({', '.join(t.name for t in policy.tiers)}), "
        f"{len(policy.signals)} signals, {len(policy.services)} services, environments "
        f"{' -> '.join(policy.environments)}",
        markup=False,
    )
    for warning in warnings:
        out.print(f"warning: {warning}", markup=False)


def classify_command(
    repo: Path = typer.Option(Path("."), "--repo", help="The governed git repository."),
    base: str = typer.Option(..., "--base", help="The revision the change starts from."),
    head: str = typer.Option("HEAD", "--head", help="The revision the change ends at."),
    policy: Path | None = typer.Option(
        None, "--policy", help="Policy file (default: clearance.yaml committed at --head)."
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Classify a change from its real git diff: tier, signals, services and why."""
    result = classify_change(GitRepo(repo), base, head, policy).classification
    if as_json:
        print_json(result.to_json())
        return
    out.print(f"tier [bold]{result.tier}[/]: {result.reason}")
    out.print(
        f"{result.files} files changed by {result.author or 'unknown'}; signals: "
        f"{', '.join(result.signals) or 'none'}; services: "
        f"{', '.join(result.services) or 'none'}",
        markup=False,
    )
    if result.matches:
        table = Table("rule", "pattern", "files")
        for m in result.matches:
            more = f" (+{m.count - len(m.files)} more)" if m.count > len(m.files) else ""
            table.add_row(f"{m.kind} {m.name}", m.pattern, ", ".join(m.files[:3]) + more)
        out.print(table)
    for checklist in result.checklists:
        out.print(
            f"checklist: {', '.join(e['type'] for e in checklist['evidence'])} "
            f"(because {checklist['when']})",
            markup=False,
        )
    for note in result.notes:
        out.print(f"note: {note}", markup=False)
