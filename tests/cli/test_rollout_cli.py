"""``clearance rollout``, ``rollback`` and ``drill`` as commands, driving the command deployer:
real scripts that log what they were asked to do, fail, or hang."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from tests.cli.test_cli import Cli
from tests.conftest import git

POLICY = """\
version: 1
environments: [staging, prod]
services:
  clinic: {{paths: ["services/clinic/**"], run: "unused {{artifact}}"}}
deploy:
  staging:
    deployer: command
    timeout: {timeout}
    commands:
      deploy: "{scripts}/deploy.sh {{service}} {{slot}} {{version}} {{artifact}}"
      route: "{scripts}/route.sh {{weights}} {{tenants}}"
      scale_down: "{scripts}/down.sh {{slot}}"
      promote: "{scripts}/promote.sh {{slot}}"
tiers:
  standard:
    when: 'true'
    require: {require}
    rollout:
      strategy: canary
      canary: [{{weight: 30}}, {{weight: 100}}]
      scale_down_delay: 0s
"""

LOGGING = '#!/bin/sh\necho "$(basename "$0") $* weight=$CLEARANCE_WEIGHT" >> "{log}"\n'


class Setup:
    def __init__(self, tmp_path: Path, *, timeout: str = "10s", require: str = "{}") -> None:
        self.cli = Cli(tmp_path / "home", tmp_path)
        self.cli("init")
        self.scripts = tmp_path / "scripts"
        self.scripts.mkdir()
        self.log = tmp_path / "deploy.log"
        for name in ("deploy", "route", "down", "promote"):
            self.script(name, LOGGING.format(log=self.log))
        self.repo = tmp_path / "repo"
        self.repo.mkdir()
        git(self.repo, "init", "-q", "-b", "main")
        (self.repo / "clearance.yaml").write_text(
            POLICY.format(scripts=self.scripts, timeout=timeout, require=require)
        )
        git(self.repo, "add", ".")
        git(self.repo, "commit", "-q", "-m", "policy")
        self.dist = tmp_path / "dist"
        self.dist.mkdir()

    def script(self, name: str, text: str) -> None:
        path = self.scripts / f"{name}.sh"
        path.write_text(text)
        path.chmod(path.stat().st_mode | stat.S_IEXEC)

    def release(self, version: str) -> str:
        source = self.repo / "services" / "clinic" / "app.py"
        source.parent.mkdir(parents=True, exist_ok=True)
        source.write_text(f"VERSION = {version!r}\n")
        git(self.repo, "add", ".")
        git(self.repo, "commit", "-q", "-m", version)
        artifact = self.dist / f"clinic-{version}.py"
        artifact.write_text(source.read_text())
        return self.cli(
            "artifact",
            "register",
            str(artifact),
            "--repo",
            str(self.repo),
            "--commit",
            "HEAD",
            "--base",
            "HEAD~1",
            "--build-number",
            version,
        ).stdout.strip()

    def calls(self) -> list[str]:
        return self.log.read_text().splitlines() if self.log.exists() else []


def test_rollouts_drive_the_users_scripts_and_are_reversible(tmp_path: Path) -> None:
    s = Setup(tmp_path)
    assert s.cli("rollout", "status").stdout.strip() == "no rollouts"
    v1 = s.release("1.0.0")
    out = s.cli("rollout", "start", v1, "--env", "staging").stdout
    assert "initial, 1 steps" in out and "COMPLETED" in out
    deploy, route, promote = s.calls()
    assert deploy.startswith("deploy.sh clinic canary 1.0.0 ") and deploy.endswith(".py weight=")
    assert route == 'route.sh {"canary": 100} {} weight=100'
    assert promote == "promote.sh canary weight="

    v2 = s.release("1.1.0")
    result = json.loads(s.cli("rollout", "start", v2, "--env", "staging", "--json").stdout)
    assert result["phase"] == "completed" and result["strategy"] == "canary"
    assert result["stable_digest"] == v1
    calls = s.calls()[3:]
    assert calls[0].startswith("deploy.sh clinic canary 1.1.0")
    assert calls[1].startswith("deploy.sh clinic baseline 1.0.0")
    assert 'route.sh {"baseline": 30, "canary": 30, "stable": 40} {} weight=30' in calls
    assert "down.sh baseline weight=" in calls

    rows = json.loads(s.cli("rollout", "status", "--env", "staging", "--json").stdout)
    assert [r["version"] for r in rows] == ["1.1.0", "1.0.0"]
    assert all(r["phase"] == "completed" and not r["driven"] for r in rows)

    back = json.loads(s.cli("rollback", "--env", "staging", "--fast", "--json").stdout)
    assert back["version"] == "1.0.0" and back["phase"] == "completed" and not back["aborted"]
    assert [c for c in s.calls() if c.startswith("deploy.sh")][-1].startswith(
        "deploy.sh clinic canary 1.0.0"
    )
    assert s.calls()[-1] == "promote.sh canary weight="

    drilled = s.cli("drill", "--env", "staging").stdout
    assert "rollback drill in staging: PASSED" in drilled and "rollback-drill" in drilled
    evidence = json.loads(s.cli("evidence", "list", v1, "--json").stdout)
    assert [e["type"] for e in evidence] == ["rollback-drill"]
    assert "OK" in s.cli("ledger", "verify").stdout


def test_a_detached_rollout_is_driven_by_rollout_run(tmp_path: Path) -> None:
    s = Setup(tmp_path)
    v1 = s.release("1.0.0")
    detached = json.loads(
        s.cli("rollout", "start", v1, "--env", "staging", "--detach", "--json").stdout
    )
    assert detached["phase"] == "running" and s.calls() == []
    rows = json.loads(s.cli("rollout", "status", "--json").stdout)
    assert rows[0]["id"] == detached["id"] and not rows[0]["driven"]
    out = s.cli("rollout", "run", "--env", "staging").stdout
    assert f"rollout {detached['id']} (clinic 1.0.0 to staging): completed" in out
    assert s.calls()[-1] == "promote.sh canary weight="
    assert "no rollout needed a controller" in s.cli("rollout", "run").stdout
    assert json.loads(s.cli("rollout", "run", "--json").stdout) == []


def test_a_failing_deploy_script_stops_the_rollout_safely_and_says_why(tmp_path: Path) -> None:
    s = Setup(tmp_path)
    v1 = s.release("1.0.0")
    s.cli("rollout", "start", v1, "--env", "staging")
    s.script("deploy", "#!/bin/sh\necho 'registry refused the image' >&2\nexit 3\n")
    v2 = s.release("1.1.0")
    proc = s.cli("rollout", "start", v2, "--env", "staging", code=1)
    assert "ABORTED" in proc.stdout and "exited with 3: registry refused the image" in proc.stdout
    assert s.calls()[-1] == 'route.sh {"stable": 100} {} weight=0'  # all traffic to stable
    rows = json.loads(s.cli("rollout", "status", "--json").stdout)
    assert rows[0]["phase"] == "aborted" and "registry refused" in rows[0]["reason"]
    status = json.loads(s.cli("status", "--json").stdout)
    assert [r["digest"] for r in status] == [v1]


def test_a_hanging_deploy_script_is_killed_at_its_time_limit(tmp_path: Path) -> None:
    s = Setup(tmp_path, timeout="1s")
    v1 = s.release("1.0.0")
    s.script("deploy", "#!/bin/sh\nsleep 30\n")
    proc = s.cli("rollout", "start", v1, "--env", "staging", code=1)
    assert "did not finish within 1s and was killed" in proc.stdout


def test_a_rollout_the_gate_refuses_never_starts(tmp_path: Path) -> None:
    s = Setup(tmp_path, require="{evidence: [{type: unit-tests, at: [staging]}]}")
    v1 = s.release("1.0.0")
    proc = s.cli("rollout", "start", v1, "--env", "staging", code=1)
    assert "evidence:unit-tests" in proc.stdout and "BLOCKED" in proc.stdout
    assert s.cli("rollout", "status").stdout.strip() == "no rollouts"
    assert s.calls() == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("rollout", "abort", "--env", "staging"), "no active rollout in staging"),
        (("rollout", "pause", "--env", "prod"), "no active rollout in prod"),
        (
            ("rollout", "start", "sha256:" + "ab" * 32, "--env", "staging"),
            "no artifact sha256:abab",
        ),
        (("rollback", "--env", "staging", "--service", "clinic"), "nothing to roll clinic"),
        (("rollout", "export", "r-nope", "--dir", "out"), "no rollout 'r-nope'"),
    ],
)
def test_bad_requests_exit_2_naming_what_is_wrong(
    tmp_path: Path, args: tuple[str, ...], message: str
) -> None:
    s = Setup(tmp_path)
    assert message in s.cli(*args, code=2).stderr


def test_rollouts_are_not_driven_through_a_server(tmp_path: Path) -> None:
    s = Setup(tmp_path)
    s.cli.extra_env = {"CLEARANCE_URL": "http://127.0.0.1:9", "CLEARANCE_TOKEN": "clr_x"}
    assert "not through CLEARANCE_URL" in s.cli("rollout", "status", code=2).stderr
    assert os.environ.get("CLEARANCE_URL") is None
