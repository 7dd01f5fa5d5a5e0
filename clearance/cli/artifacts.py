"""``clearance artifact ...``: register a built artifact by digest, and look one up."""

from __future__ import annotations

from contextlib import closing
from pathlib import Path

import typer

from clearance.cli.common import (
    ACTOR_OPTION,
    DIGEST_ARGUMENT,
    JSON_OPTION,
    digest_arg,
    err,
    out,
    print_json,
    resolve_actor,
    state,
)
from clearance.errors import InputError
from clearance.usecases.artifacts import BuildInfo, Source, read_source
from clearance.vcs.git import GitRepo

app = typer.Typer(
    help="Register artifacts (by content digest) and show them.", no_args_is_help=True
)


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="artifact")


@app.command("register")
def register_command(
    ctx: typer.Context,
    path: Path | None = typer.Argument(None, help="The built file (omit with --digest)."),
    commit: str = typer.Option(..., "--commit", help="Commit the artifact was built from."),
    branch: str | None = typer.Option(None, "--branch", help="Branch that was built."),
    build_number: str | None = typer.Option(None, "--build-number", help="CI build number."),
    builder: str = typer.Option("unknown", "--builder", help="Builder id, e.g. github-actions."),
    repo: Path | None = typer.Option(
        None,
        "--repo",
        help="The git repository: the commit is resolved in it and dependency "
        "hashes are read from its lock/requirements files.",
    ),
    change_request: str | None = typer.Option(None, "--change-request", help="e.g. CR-1042."),
    base: str | None = typer.Option(
        None, "--base", help="Classify the change from this revision to --commit (needs --repo)."
    ),
    policy: Path | None = typer.Option(
        None, "--policy", help="Policy file (default: clearance.yaml committed at --commit)."
    ),
    digest: str | None = typer.Option(
        None, "--digest", help="Register an artifact that lives elsewhere (e.g. an image digest)."
    ),
    name: str | None = typer.Option(None, "--name", help="Display name (default: file name)."),
    actor: str | None = ACTOR_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Register an artifact; prints its sha256 digest. Same bytes + same provenance: no-op."""
    cli = state(ctx)
    who = resolve_actor(actor, cli.settings(), repo)
    if repo is not None:
        source = read_source(GitRepo(repo), commit, base, policy)
    elif base is not None:
        raise InputError("--base needs --repo: the change is read from the git repository")
    else:
        source = Source(commit.strip().lower())
    with closing(cli.service()) as svc:
        info = svc.register(
            build=BuildInfo(source.commit, branch, build_number, builder, change_request),
            source=source,
            actor=who,
            path=path,
            digest=digest_arg(digest) if digest else None,
            name=name,
        )
    if as_json:
        print_json(info)
        return
    print(info["digest"])
    classification = info.get("classification")
    if classification:
        err.print(
            f"classified as tier {classification['tier']}: {classification['reason']}",
            markup=False,
        )


@app.command("show")
def show_command(
    ctx: typer.Context,
    digest: str = DIGEST_ARGUMENT,
    as_json: bool = JSON_OPTION,
) -> None:
    """Show an artifact's recorded provenance."""
    with closing(state(ctx).service()) as svc:
        info = svc.artifact(digest_arg(digest))
    if as_json:
        print_json(info)
        return
    for key, value in info.items():
        if value is not None:
            out.print(f"{key:<15} {value}", markup=False)
