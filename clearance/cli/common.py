"""What every command shares: settings from the root options, the actor, and output."""

from __future__ import annotations

import getpass
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import typer
from rich.console import Console

from clearance.core.digests import Digest, parse_digest
from clearance.errors import InputError
from clearance.settings import Settings
from clearance.usecases.instance import Instance, open_instance
from clearance.usecases.service import LocalService, Service

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)

JSON_OPTION = typer.Option(False, "--json", help="Print machine-readable JSON instead of text.")
DIGEST_ARGUMENT = typer.Argument(..., help="sha256:<hex> of the artifact.")
ACTOR_OPTION = typer.Option(
    None, "--actor", help="Who is acting (else CLEARANCE_ACTOR, else git's user.email)."
)


@dataclass
class CliState:
    home: Path | None = None

    def settings(self) -> Settings:
        return Settings.from_env(os.environ, home=self.home)

    def instance(self) -> Instance:
        return open_instance(self.settings())

    def service(self) -> Service:
        """The server named by CLEARANCE_URL (with CLEARANCE_TOKEN), else the local instance."""
        url = os.environ.get("CLEARANCE_URL")
        if url:
            token = os.environ.get("CLEARANCE_TOKEN")
            if not token:
                raise InputError(
                    "CLEARANCE_URL is set but CLEARANCE_TOKEN is not",
                    hint="create one with `clearance token create` on the server",
                )
            from clearance.client import RemoteService

            return RemoteService(url, token)
        return LocalService(self.instance())

    @property
    def remote(self) -> bool:
        return bool(os.environ.get("CLEARANCE_URL"))


def state(ctx: typer.Context) -> CliState:
    obj = ctx.find_root().obj
    return obj if isinstance(obj, CliState) else CliState()


def digest_arg(value: str) -> Digest:
    return parse_digest(value, where="DIGEST")


def resolve_actor(explicit: str | None, settings: Settings, repo: Path | None = None) -> str:
    """``--actor``, else CLEARANCE_ACTOR, else git's user.email, else the login name."""
    if explicit:
        return explicit.strip()
    if settings.actor:
        return settings.actor
    cmd = ["git", "config", "--get", "user.email"]
    if repo is not None:
        cmd[1:1] = ["-C", str(repo)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=10, check=False)
        if proc.returncode == 0 and proc.stdout.strip():
            return proc.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    return getpass.getuser()


def print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, indent=2, sort_keys=True, default=str) + "\n")
