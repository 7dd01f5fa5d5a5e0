"""``clearance attest``, ``clearance evidence list`` and ``clearance attestations``."""

from __future__ import annotations

import json
import sys
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
from clearance.core.evidence import ReportFormat, headline

app = typer.Typer(help="Evidence recorded for an artifact.", no_args_is_help=True)


def register(root: typer.Typer) -> None:
    root.command("attest")(attest_command)
    root.command("attestations")(attestations_command)
    root.add_typer(app, name="evidence")


def attest_command(
    ctx: typer.Context,
    digest: str = DIGEST_ARGUMENT,
    report: Path = typer.Argument(
        ...,
        help="The report file (JUnit XML, SARIF, CycloneDX, "
        'pip-audit JSON, or JSON with a boolean "passed").',
    ),
    evidence_type: str = typer.Option(
        ..., "--type", help="What this evidence is: unit-tests, sast, sbom, sca, contract-tests..."
    ),
    fmt: ReportFormat | None = typer.Option(
        None, "--format", help="Insist on this format instead of detecting it from the content."
    ),
    actor: str | None = ACTOR_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Attach a report to an artifact as a signed in-toto attestation."""
    cli = state(ctx)
    who = resolve_actor(actor, cli.settings())
    with closing(cli.service()) as svc:
        info = svc.attest(digest_arg(digest), evidence_type, report, actor=who, fmt=fmt)
    if as_json:
        print_json(info)
        return
    out.print(
        f"{info['type']}: {info['format']} {info['result']} ({headline(info['summary'])}) "
        f"recorded as ledger entry {info['entry']}",
        markup=False,
    )


@app.command("list")
def list_command(
    ctx: typer.Context,
    digest: str = DIGEST_ARGUMENT,
    as_json: bool = JSON_OPTION,
) -> None:
    """List the evidence recorded for an artifact: type, format, result, summary, who and when."""
    with closing(state(ctx).service()) as svc:
        rows = svc.evidence(digest_arg(digest))
    if as_json:
        print_json(rows)
        return
    if not rows:
        out.print("no evidence recorded yet")
        return
    table = Table("entry", "type", "format", "result", "summary", "recorded", "by")
    for r in rows:
        table.add_row(
            str(r["entry"]),
            r["type"],
            r["format"],
            r["result"],
            headline(r["summary"]),
            r["recorded_at"],
            r["recorded_by"],
        )
    out.print(table)


def attestations_command(
    ctx: typer.Context,
    digest: str = DIGEST_ARGUMENT,
) -> None:
    """Print the artifact's DSSE envelopes as JSON Lines (.intoto.jsonl), provenance first."""
    with closing(state(ctx).service()) as svc:
        for envelope in svc.attestations(digest_arg(digest)):
            sys.stdout.write(json.dumps(envelope, separators=(",", ":")) + "\n")
