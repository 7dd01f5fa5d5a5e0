"""The CLI in server mode: `clearance serve` as a real process, the CLI pointed at it by URL."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli.test_cli import Cli
from tests.conftest import portal_repo
from tests.server.conftest import server_process


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, Cli]]:
    local = Cli(tmp_path / "home", tmp_path)
    local("init")
    env = {**os.environ, "CLEARANCE_HOME": str(tmp_path / "home")}
    env.pop("CLEARANCE_DATABASE_URL", None)
    with server_process(env) as url:
        yield url, local


def remote(local: Cli, url: str, token: str) -> Cli:
    cli = Cli(local.home.parent / "elsewhere", local.cwd)  # no local state at all
    cli.extra_env = {"CLEARANCE_URL": url, "CLEARANCE_TOKEN": token}
    return cli


def test_ci_deployer_and_approvers_through_the_server(
    server: tuple[str, Cli], tmp_path: Path
) -> None:
    url, local = server
    tokens = {
        name: local("token", "create", "--name", name, "--role", role).stdout.strip()
        for name, role in [
            ("ci-orders", "ci"),
            ("deploy-bot", "deployer"),
            ("bob@example.org", "approver"),
            ("dana@example.org", "approver"),
        ]
    }
    listed = json.loads(local("token", "list", "--json").stdout)
    assert {t["name"] for t in listed} == set(tokens)
    repo = portal_repo(tmp_path / "clinic")
    artifact = tmp_path / "portal.zip"
    artifact.write_bytes(b"portal build")
    report = tmp_path / "tests.json"
    report.write_text('{"passed": true}')

    ci = remote(local, url, tokens["ci-orders"])
    digest = ci(
        "artifact",
        "register",
        str(artifact),
        "--repo",
        str(repo),
        "--commit",
        "HEAD",
        "--base",
        "HEAD~1",
        "--change-request",
        "CR-7",
    ).stdout.strip()
    shown = json.loads(ci("artifact", "show", digest, "--json").stdout)
    assert shown["recorded_by"] == "ci-orders" and shown["classification"]["tier"] == "low"
    ci("attest", digest, "--type", "unit-tests", str(report))
    deploy = remote(local, url, tokens["deploy-bot"])
    deploy("promote", digest, "--env", "dev")
    deploy("promote", digest, "--env", "staging")
    blocked = deploy("promote", digest, "--env", "prod", code=1).stdout
    assert "approvals" in blocked and "BLOCKED" in blocked
    err = ci("approve", digest, "--env", "prod", code=1).stderr
    assert "role ci may not approve" in err
    err = remote(local, url, tokens["dana@example.org"])(
        "approve", digest, "--env", "prod", code=1
    ).stderr
    assert "dana@example.org authored this change and cannot approve it" in err
    remote(local, url, tokens["bob@example.org"])("approve", digest, "--env", "prod")
    deploy("promote", digest, "--env", "prod")
    [row] = json.loads(deploy("status", "--env", "prod", "--json").stdout)
    assert (row["digest"], row["by"]) == (digest, "deploy-bot")
    found = json.loads(ci("search", "--change-request", "CR-7", "--json").stdout)
    assert [f["digest"] for f in found] == [digest]
    assert ci("ledger", "verify").stdout.startswith("OK ")
    assert local("ledger", "verify").stdout == ci("ledger", "verify").stdout


def test_server_mode_needs_a_token(tmp_path: Path) -> None:
    cli = Cli(tmp_path / "home", tmp_path)
    cli.extra_env = {"CLEARANCE_URL": "http://127.0.0.1:9"}
    err = cli("status", code=2).stderr
    assert "CLEARANCE_URL is set but CLEARANCE_TOKEN is not" in err
    cli.extra_env["CLEARANCE_TOKEN"] = "clr_x"
    err = cli("status", code=3).stderr
    assert "cannot reach the server" in err
