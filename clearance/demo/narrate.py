"""How the demo tells its story with Rich: sections, numbered steps, the command a user would
type for each step, and the library's values (decisions, classifications, evidence) as tables.

Rendering only: every verdict shown here was computed by the library.
"""

from __future__ import annotations

from collections.abc import Iterable

from rich.console import Console
from rich.table import Table

from clearance.cli import render
from clearance.core.classify import Classification
from clearance.core.evidence import headline
from clearance.core.gates import Decision
from clearance.store.ledger import Entry
from clearance.usecases.releases import Completeness


class Story:
    """A console that numbers steps within sections and shows each step's CLI command."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.step_no = 0

    def section(self, title: str) -> None:
        self.step_no = 0
        self.console.print()
        self.console.rule(f"[bold]{title}")

    def step(self, title: str, *commands: str) -> None:
        self.step_no += 1
        self.console.print(f"\n[bold cyan]{self.step_no}. {title}[/]")
        for command in commands:
            self.console.print(f"   [dim]$ {command}[/]", highlight=False)

    def say(self, text: str) -> None:
        self.console.print(f"   {text}", highlight=False)

    def good(self, text: str) -> None:
        self.say(f"[green]{text}[/]")

    def bad(self, text: str) -> None:
        self.say(f"[red]{text}[/]")

    def why(self, text: str) -> None:
        self.say(f"[italic]{text}[/]")

    def table(self, table: Table) -> None:
        self.console.print(table)


def short(digest: str) -> str:
    return f"{digest[:19]}…"


def decision_table(story: Story, decision: Decision) -> None:
    """The gate's answer as ``clearance gate`` prints it: every control, met or not, and why."""
    story.table(render.decision_table(decision))
    verdict = "[green]ALLOWED[/]" if decision.allowed else "[red]BLOCKED[/]"
    story.say(f"{verdict} {short(decision.digest)} -> {decision.env}")


def decision_line(story: Story, decision: Decision, entry: int) -> None:
    """A compact account of an allowed promotion: which controls were checked."""
    checked = ", ".join(c.control for c in decision.controls)
    story.good(f"ALLOWED -> {decision.env} (ledger entry {entry}); checked: {checked}")
    for c in decision.controls:
        if c.control == "approvals":
            story.say(f"approvals: {c.detail}")


def classification_table(story: Story, result: Classification) -> None:
    """What ``clearance classify`` prints: the tier, the rule that chose it and the matches."""
    story.say(f"tier [bold]{result.tier}[/]: {result.reason}")
    story.say(
        f"{result.files} file(s) changed by {result.author}; signals: "
        f"{', '.join(result.signals) or 'none'}; services: {', '.join(result.services) or 'none'}"
    )
    if result.matches:
        table = Table("rule", "pattern", "files")
        for m in result.matches:
            table.add_row(f"{m.kind} {m.name}", m.pattern, ", ".join(m.files))
        story.table(table)
    for checklist in result.checklists:
        kinds = ", ".join(e["type"] for e in checklist["evidence"])
        story.say(f"checklist: {kinds} (because {checklist['when']})")


def evidence_line(story: Story, entry: Entry) -> None:
    data = entry.data
    colour = "green" if data["passed"] else "red"
    story.say(
        f"{data['type']:<18} {data['format']:<13} [{colour}]{data['result']:<7}[/] "
        f"{headline(data['summary'])} (entry {entry.seq}, by {entry.actor})"
    )


def completeness_table(story: Story, result: Completeness) -> None:
    """What ``clearance release show`` prints: the definition of done, item by item."""
    table = Table("item", "", "detail")
    for name, ok, detail in result.items:
        table.add_row(name, "[green]yes[/]" if ok else "[red]missing[/]", detail)
    story.table(table)
    story.say("[green]COMPLETE[/]" if result.complete else "[red]INCOMPLETE[/]")


def commands(story: Story, title: str, lines: Iterable[str]) -> None:
    story.console.print(title)
    for line in lines:
        story.console.print(f"  {line}", highlight=False, markup=False)
