"""Rich renderings shared by the CLI and the demo, so both show a decision the same way."""

from __future__ import annotations

from rich.table import Table

from clearance.core.gates import Decision


def decision_table(decision: Decision) -> Table:
    """Every control of a gate decision, met or not, and why."""
    table = Table(
        "control",
        "",
        "detail",
        title=f"{decision.env} gate, tier {decision.tier}",
        title_justify="left",
    )
    for c in decision.controls:
        mark = (
            "[green]ok[/]"
            if c.satisfied
            else ("[yellow]warn[/]" if not c.blocking else "[red]NO[/]")
        )
        table.add_row(c.control, mark, c.detail)
    return table


def verdict(decision: Decision) -> str:
    word = "[green]ALLOWED[/]" if decision.allowed else "[red]BLOCKED[/]"
    return f"{word} {decision.digest} -> {decision.env}"
