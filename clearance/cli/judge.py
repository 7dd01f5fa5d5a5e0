"""``clearance judge``: the canary judge offline, on exported samples.

Exit codes: 0 pass; 1 marginal or fail (a control said no: a marginal verdict pauses for a
person, it never lets a pipeline go on by itself); 2 bad input (files, CSV, metrics YAML).
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich import box
from rich.table import Column, Table

from clearance.cli.common import JSON_OPTION, err, out, print_json
from clearance.core.judge import (
    Classification,
    GroupStats,
    Kind,
    MetricResult,
    Outcome,
    Verdict,
)
from clearance.errors import ExitCode
from clearance.judge.offline import judge_files


def register(root: typer.Typer) -> None:
    root.command("judge")(judge_command)


def judge_command(
    baseline: Path = typer.Option(
        ...,
        "--baseline",
        help="Baseline samples (CSV: timestamp,metric,value,numerator,denominator).",
    ),
    canary: Path = typer.Option(..., "--canary", help="Canary samples, same form."),
    metrics: Path | None = typer.Option(
        None,
        "--metrics",
        help="Metrics file (YAML): each metric's kind, direction, effects, thresholds. "
        "Default: every metric in the samples, direction increase.",
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Judge a canary against its baseline from sample files; exit 0 pass, 1 marginal or fail."""
    result = judge_files(baseline, canary, metrics)
    if as_json:
        print_json(result.to_json())
    else:
        for warning in result.warnings:
            err.print(f"warning: {warning}", markup=False)
        render(result.verdict)
    if result.verdict.verdict is not Outcome.PASS:
        raise typer.Exit(ExitCode.REFUSED)


_STYLE = {
    Classification.PASS: "green",
    Classification.HIGH: "red",
    Classification.LOW: "red",
    Classification.NODATA: "yellow",
    Classification.ERROR: "red",
}
_WORD = {
    Outcome.PASS: "[green]PASS[/]",
    Outcome.MARGINAL: "[yellow]MARGINAL[/] (pause: a person decides)",
    Outcome.FAIL: "[red]FAIL[/]",
}


def render(verdict: Verdict) -> None:
    alpha = "" if verdict.alpha_per_metric is None else f", alpha {verdict.alpha_per_metric:.2g}"
    table = Table(
        Column("metric", no_wrap=True),
        Column("baseline", overflow="fold"),
        Column("canary", overflow="fold"),
        Column("effect [CI]", overflow="fold"),
        Column("p", no_wrap=True),
        Column("result", no_wrap=True),
        title=f"canary judge ({len(verdict.metrics)} metrics{alpha} each)",
        title_justify="left",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
    )
    for m in verdict.metrics:
        table.add_row(
            m.name + ("\n(critical)" if m.spec.critical else ""),
            _group(m, m.baseline),
            _group(m, m.canary),
            _effect(m),
            "-" if m.p_value is None else f"{m.p_value:.2g}",
            f"[{_STYLE[m.classification]}]{m.classification.value}[/]",
        )
    out.print(table)
    for reason in verdict.reasons:
        out.print(f"- {reason}", markup=False)
    score = "no score" if verdict.score is None else f"score {verdict.score:.1f}"
    t = verdict.thresholds
    out.print(
        f"verdict: {_WORD[verdict.verdict]} {score} "
        f"(pass >= {t.pass_score:g}, marginal >= {t.marginal_score:g}, alpha {t.alpha:g})"
    )


def _group(m: MetricResult, g: GroupStats) -> str:
    if m.spec.kind is Kind.RATE:
        if not g.denominator:
            return "no requests" if g.denominator == 0 else "-"
        rate = "-" if g.rate is None else f"{100 * g.rate:.3g}%"
        return f"{g.numerator}/{g.denominator} {rate}"
    if not g.n:
        return "no samples" if g.n == 0 else "-"
    removed = f", {g.removed} dropped" if g.removed else ""
    median = "-" if g.median is None else f"{g.median:.4g}"
    return f"med {median} (n={g.n}{removed})"


def _effect(m: MetricResult) -> str:
    if m.p_value is None:
        return "-"
    effect = "unbounded" if m.effect is None else f"{100 * m.effect:+.3g}%"
    if not m.ci:
        return effect
    low, high = (
        ("-inf" if i == 0 else "+inf") if x is None else f"{100 * x:+.3g}%"
        for i, x in enumerate(m.ci)
    )
    return f"{effect} [{low}, {high}]"
