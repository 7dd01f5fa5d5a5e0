"""Meta-tests: every command, flag and setting a user can reach is documented."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from clearance.cli.app import app
from clearance.settings import SETTINGS

ROOT = Path(__file__).parent.parent
DOCS = "\n".join(
    p.read_text() for p in [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
)


def walk(command: Any, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Any]]:
    found = [(path, command)]
    if hasattr(command, "commands"):
        for name, sub in command.commands.items():
            found.extend(walk(sub, (*path, name)))
    return found


COMMANDS = walk(typer.main.get_command(app))


def test_every_command_is_documented() -> None:
    for path, _ in COMMANDS:
        if path:
            assert f"clearance {' '.join(path)}" in DOCS, (
                f"`clearance {' '.join(path)}` undocumented"
            )


def test_every_flag_is_documented() -> None:
    for path, command in COMMANDS:
        for param in command.params:
            for opt in getattr(param, "opts", []):
                if opt.startswith("--") and opt != "--help":
                    assert opt in DOCS, f"{opt} of `clearance {' '.join(path)}` is undocumented"


def test_every_setting_is_documented() -> None:
    configuration = (ROOT / "docs" / "configuration.md").read_text()
    for name in SETTINGS:
        assert name in configuration and name in (ROOT / "README.md").read_text()


def test_every_command_has_help() -> None:
    for path, command in COMMANDS:
        assert command.help or command.short_help, f"`clearance {' '.join(path)}` has no help"
