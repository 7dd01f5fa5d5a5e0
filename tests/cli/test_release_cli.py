"""policy check, classify, gate, approve, promote, status and release show as commands."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli.test_cli import Cli
from tests.conftest import portal_repo

FIXTURES = Path(__file__).parent.parent / "fixtures"


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return portal_repo(tmp_path / "clinic")


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    c = Cli(tmp_path / "home", tmp_path)
    c("init")
    return c


class TestPolicyCheck:
    def test_reference_policy_passes_with_warnings(self, cli: Cli) -> None:
        out = cli("policy", "check", str(FIXTURES / "clearance.yaml")).stdout
        assert out.startswith("OK ") and "3 tiers (high, medium, low)" in out
        assert "warning: " in out

    def test_broken_policy_lists_every_error_and_exits_2(self, cli: Cli, tmp_path: Path) -> None:
        bad = tmp_path / "clearance.yaml"
        bad.write_text(
            (FIXTURES / "clearance.yaml")
            .read_text()
            .replace("when: 'true'", "when: 'true &&'")
            .replace("roles: [release-manager]}", "roles: [release-manager], at: [qa]}")
        )
        err = cli("policy", "check", str(bad), code=2).stderr.splitlines()
        assert err == [
            f"error: {bad}:25: tiers.medium.require.approvals.at: unknown environment 'qa' "
            "(environments: dev, staging, prod)",
            f"error: {bad}:27: tiers.low.when: CEL syntax error at column 6 in 'true &&'",
        ]
        report = json.loads(cli("policy", "check", str(bad), "--json", code=2).stdout)
        assert report["ok"] is False and len(report["errors"]) == 2


class TestReleaseCommands:
    def test_low_risk_change_flows_to_prod(self, cli: Cli, repo: Path, tmp_path: Path) -> None:
        classified = json.loads(
            cli("classify", "--repo", str(repo), "--base", "HEAD~1", "--json").stdout
        )
        assert classified["tier"] == "low" and classified["signals"] == ["ui_copy"]
        assert classified["matches"][0] == {
            "signal": "ui_copy",
            "pattern": "web/**/*.md",
            "files": ["web/portal/help.md"],
            "count": 1,
        }
        artifact = tmp_path / "portal.zip"
        artifact.write_bytes(b"portal build")
        digest = cli(
            "artifact",
            "register",
            str(artifact),
            "--repo",
            str(repo),
            "--commit",
            "HEAD",
            "--base",
            "HEAD~1",
        ).stdout.strip()
        cli("promote", digest, "--env", "dev")
        gate = json.loads(cli("gate", digest, "--env", "staging", "--json", code=1).stdout)
        assert gate["allowed"] is False and gate["tier"] == "low"
        assert [c["control"] for c in gate["controls"] if not c["satisfied"]] == [
            "evidence:unit-tests"
        ]
        report = tmp_path / "tests.json"
        report.write_text('{"passed": true}')
        cli("attest", digest, "--type", "unit-tests", str(report))
        assert cli("gate", digest, "--env", "staging").stdout.count("ALLOWED") == 1
        cli("promote", digest, "--env", "staging")
        err = cli("approve", digest, "--env", "prod", "--actor", "dana@example.org", code=1).stderr
        assert "dana@example.org authored this change and cannot approve it" in err
        cli(
            "approve",
            digest,
            "--env",
            "prod",
            "--actor",
            "bob@example.org",
            "--meaning",
            "approval",
            "--reason",
            "copy reviewed",
        )
        promoted = json.loads(cli("promote", digest, "--env", "prod", "--json").stdout)
        assert promoted["promoted"] is True and promoted["allowed"] is True
        [row] = json.loads(cli("status", "--env", "prod", "--json").stdout)
        assert row["digest"] == digest and row["tier"] == "low"
        shown = json.loads(cli("release", "show", digest, "--json", code=1).stdout)
        assert shown["missing"] == ["post-deploy verification"]

    def test_blocked_promotion_exits_1_and_records_nothing(
        self, cli: Cli, repo: Path, tmp_path: Path
    ) -> None:
        artifact = tmp_path / "portal.zip"
        artifact.write_bytes(b"portal build 2")
        digest = cli(
            "artifact",
            "register",
            str(artifact),
            "--repo",
            str(repo),
            "--commit",
            "HEAD",
            "--base",
            "HEAD~1",
        ).stdout.strip()
        size = cli.size()
        out = cli("promote", digest, "--env", "prod", code=1).stdout
        assert "not yet promoted to staging" in out and "BLOCKED" in out
        assert cli.size() == size
        cli("promote", digest, "--env", "qa", code=2)
        cli("gate", "v1.2.3", "--env", "dev", code=2)
