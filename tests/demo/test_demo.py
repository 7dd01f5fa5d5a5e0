"""`clearance demo`, the README's main job: three changes governed to prod, a clinic service
rolled out progressively, a state that verifies.

The story runs once per module (about 45 s, most of it the rollouts' bake times); each test checks
one thing a user relies on, both in what the story prints and in the state it leaves behind.
"""

from __future__ import annotations

import io
import os
import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from rich.console import Console

from clearance.core.policy import parse_policy
from clearance.core.rollout import Phase
from clearance.demo import sample
from clearance.demo.story import DemoResult, run_demo
from clearance.files import read_text
from clearance.settings import Settings
from clearance.store import rollouts as rollout_store
from clearance.store.ledger import Entry
from clearance.store.rollouts import Rollout
from clearance.usecases import rollouts
from clearance.usecases.evidence import list_evidence
from clearance.usecases.instance import Instance, open_instance
from clearance.usecases.ledger import verify_ledger
from clearance.usecases.releases import APPROVED, PROMOTED, gate, release_show, status

FIXTURES = Path(__file__).parent.parent / "fixtures"


@dataclass(frozen=True)
class Demo:
    result: DemoResult
    text: str


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Demo:
    buffer = io.StringIO()
    # Wide enough that no table cell wraps, so sentences can be matched whole.
    result = run_demo(tmp_path_factory.mktemp("demo") / "run", Console(file=buffer, width=1000))
    return Demo(result, buffer.getvalue())


@pytest.fixture
def instance(demo: Demo) -> Iterator[Instance]:
    with open_instance(Settings.from_env({}, home=demo.result.home)) as opened:
        yield opened


def test_demo_story_leaves_a_verifiable_ledger(demo: Demo, instance: Instance) -> None:
    result, text = demo.result, demo.text
    assert "registering the same bytes again is a no-op (created=False)" in text
    assert f"OK {result.ledger_size} " in text
    assert "FAILED first bad: entry 1: record bytes do not match their stored leaf hash" in text
    assert verify_ledger(instance, against=read_text(result.witness)).ok
    assert result.seconds < 60
    assert result.delivery.seconds < 45


class TestSample:
    def test_the_sample_commits_the_reference_policy_unchanged(self, demo: Demo) -> None:
        committed = sample.git(demo.result.repo, "show", "HEAD:clearance.yaml")
        reference = (FIXTURES / "clearance.yaml").read_text()
        assert committed + "\n" == reference == sample.POLICY
        assert [t.name for t in parse_policy(reference, "clearance.yaml").tiers] == [
            "high",
            "medium",
            "low",
        ]

    def test_every_change_is_by_the_sample_author(self, demo: Demo) -> None:
        authors = sample.git(demo.result.repo, "log", "--format=%ae").split()
        assert set(authors) == {sample.AUTHOR}
        assert len(authors) == 5  # initial, copy fix, infrastructure, its SAST fix, medication


class TestChanges:
    def test_three_releases_with_tiers_low_medium_high(
        self, demo: Demo, instance: Instance
    ) -> None:
        releases = demo.result.releases
        assert set(releases) == {"low", "medium", "high"}
        assert len(set(releases.values())) == 3
        for tier, digest in releases.items():
            assert gate(instance, digest, "prod").tier == tier
        assert "tier low: true holds" in demo.text
        assert 'tier medium: "infrastructure" in signals' in demo.text
        assert 'checklist: privacy-review (because "phi" in signals)' in demo.text

    def test_all_three_releases_reached_prod(self, demo: Demo, instance: Instance) -> None:
        for digest in demo.result.releases.values():
            items = {name: ok for name, ok, _ in release_show(instance, digest).items}
            assert items["deployment target"], digest
        running = {(row["env"], row["name"]): row["digest"] for row in status(instance)}
        assert running[("prod", "orders")] == demo.result.releases["high"]
        assert running[("prod", "portal")] == demo.result.releases["low"]

    def test_the_sast_finding_kept_the_first_infrastructure_build_in_dev(
        self, demo: Demo, instance: Instance
    ) -> None:
        blocked = demo.result.blocked
        evidence = {e.data["type"]: e.data["result"] for e in list_evidence(instance, blocked)}
        assert evidence["sast"] == "FAILED"
        decision = gate(instance, blocked, "staging")
        assert [c.control for c in decision.blockers] == ["evidence:sast"]
        assert not release_show(instance, blocked).complete
        assert "BLOCKED" in demo.text and "-> staging" in demo.text

    def test_a_clear_text_secret_in_a_configuration_is_refused(self, demo: Demo) -> None:
        assert re.search(
            r"orders-staging-draft\.json:\d+: db_password: looks like a secret", demo.text
        )


class TestApprovals:
    def test_the_author_cannot_approve(self, demo: Demo, instance: Instance) -> None:
        assert f"refused: {sample.AUTHOR} authored this change and cannot approve it" in demo.text
        high = demo.result.releases["high"]
        approvers = [e.actor for e in instance.ledger.find(subject=high, kinds=[APPROVED])]
        assert sample.AUTHOR not in approvers
        assert approvers == ["alice@example.org", "alice@example.org", "carol@example.org"]

    def test_late_evidence_voids_an_approval_and_the_gate_says_so(
        self, demo: Demo, instance: Instance
    ) -> None:
        assert re.search(
            r"approvals +│ NO +│ 0 of 2 approvals for prod: none; .*alice@example\.org's "
            r"approval \(entry \d+\) is void: the evidence changed after they signed",
            demo.text,
        )
        assert re.search(r"BLOCKED sha256:\S+ -> prod", demo.text)
        high = demo.result.releases["high"]
        first, again, carol = instance.ledger.find(subject=high, kinds=[APPROVED])
        assert first.data["evidence_set"] != again.data["evidence_set"]
        assert again.data["evidence_set"] == carol.data["evidence_set"]
        (to_prod,) = [
            e
            for e in instance.ledger.find(subject=high, kinds=[PROMOTED])
            if e.data["env"] == "prod"
        ]
        recorded = {c["control"]: c for c in to_prod.data["decision"]["controls"]}
        assert recorded["approvals"]["satisfied"]
        assert f"approval (entry {first.seq}) is void" in recorded["approvals"]["detail"]

    def test_the_high_tier_release_is_complete(self, demo: Demo, instance: Instance) -> None:
        high = demo.result.releases["high"]
        assert release_show(instance, high).complete
        evidence = {e.data["type"]: e.data["result"] for e in list_evidence(instance, high)}
        assert evidence == dict.fromkeys(
            (
                "unit-tests",
                "integration-tests",
                "contract-tests",
                "sast",
                "sca",
                "sbom",
                "privacy-review",
                "post-deploy-verification",
            ),
            "PASSED",
        )
        assert "STANDS IN for a real `pip-audit" in demo.text


def _rollout(instance: Instance, demo: Demo, which: str) -> tuple[Rollout, dict[str, Entry]]:
    found = rollout_store.load(instance.db, demo.result.delivery.rollouts[which])
    assert found is not None
    history = rollouts.history(instance, found)
    return found, {e.kind: e for e in history}


class TestDelivery:
    def test_the_faulty_canary_fails_on_order_errors_and_the_controller_aborts_it(
        self, demo: Demo, instance: Instance
    ) -> None:
        bad = demo.result.delivery.releases["1.4.3"]
        rollout, entries = _rollout(instance, demo, "canary")
        assert (rollout.digest, rollout.plan.strategy, rollout.phase) == (
            bad,
            "canary",
            Phase.ABORTED,
        )
        verdict = entries[rollouts.VERDICT].data["verdict"]
        assert verdict["verdict"] == "fail"
        order_errors = next(m for m in verdict["metrics"] if m["name"] == "order_errors")
        assert order_errors["critical"] and order_errors["classification"] == "high"
        assert order_errors["p_value"] <= order_errors["alpha"]
        assert order_errors["canary"]["rate"] > 0.03 > order_errors["baseline"]["rate"]
        aborted = entries[rollouts.ABORTED]
        assert aborted.actor.startswith("controller:")
        assert aborted.data["severity"] == "incident"
        assert aborted.data["traffic"] == "100% stable"
        assert "order_errors" in aborted.data["failed_metrics"]
        assert 0 <= aborted.data["rollback_seconds"] < 1.0
        assert rollouts.COMPLETED not in entries
        assert bad not in {e.subject for e in instance.ledger.find(kinds=[PROMOTED])}
        assert "judge: FAIL" in demo.text
        assert re.search(r"ABORTED: the judge says fail; traffic 100% stable in \d+ ms", demo.text)

    def test_no_request_reached_the_canary_after_the_abort(self, demo: Demo) -> None:
        assert demo.result.delivery.canary_after_abort == 0
        # Under load a request may time out (counted, answered by nobody); none reach the canary.
        assert re.search(
            r"in the 1 s after the abort: [1-9]\d* requests, [1-9]\d* answered by 1\.4\.2 "
            r"\(stable\), 0 by the canary",
            demo.text,
        )

    def test_the_fixed_version_goes_ring_by_ring_with_old_valley_held(
        self, demo: Demo, instance: Instance
    ) -> None:
        delivered = demo.result.delivery
        rollout, entries = _rollout(instance, demo, "rings")
        assert rollout.digest == delivered.releases["1.4.4"]
        assert (rollout.plan.strategy, rollout.phase) == ("rings", Phase.COMPLETED)
        held = {"old-valley": "hl7 interface 2.3 does not meet >=2.5"}
        assert dict(rollout.plan.held) == held
        assert entries[rollouts.COMPLETED].data["held"] == held
        verdicts = [
            e.data["verdict"]["verdict"]
            for e in rollouts.history(instance, rollout)
            if e.kind == rollouts.VERDICT
        ]
        assert verdicts == ["pass", "pass"]  # rings pilot and early
        running = {(row["env"], row["name"]): row["digest"] for row in status(instance, "prod")}
        assert running[("prod", "clinic")] == delivered.releases["1.4.4"]
        assert "held: old-valley (hl7 interface 2.3 does not meet >=2.5)" in demo.text
        versions = dict(re.findall(r"│ ([a-z-]+) +│ \d\.\d +│ (\d\.\d\.\d) +│", demo.text))
        assert versions == {
            "internal-qa": "1.4.4",
            "st-mary-clinic": "1.4.4",
            "mercy-general": "1.4.4",
            "old-valley": "1.4.2",
        }

    def test_the_rollback_drill_is_recorded_as_evidence(
        self, demo: Demo, instance: Instance
    ) -> None:
        delivered = demo.result.delivery
        (drill,) = [
            e
            for e in list_evidence(instance, delivered.releases["1.4.2"])
            if e.data["type"] == "rollback-drill"
        ]
        assert drill.seq == delivered.drill_entry and drill.data["passed"]
        assert drill.actor == "sre@example.org"
        report = drill.data["summary"]
        assert report["env"] == "prod" and report["service"] == "clinic"
        assert 0 <= report["switch_seconds"] < 1 and 0 <= report["restore_seconds"] < 1

    def test_the_verified_ledger_covers_every_rollout(self, demo: Demo, instance: Instance) -> None:
        result = demo.result
        last = max(
            e.seq
            for which in ("initial", "canary", "rings")
            for e in _rollout(instance, demo, which)[1].values()
        )
        assert last <= result.ledger_size
        assert verify_ledger(instance, against=read_text(result.witness)).ok

    @pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads processes from /proc")
    def test_nothing_is_left_running(self, demo: Demo) -> None:
        home = str(demo.result.home)
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    cmdline = f.read().decode(errors="replace")
            except OSError:
                continue
            assert home not in cmdline, f"process {pid} still runs: {cmdline!r}"
        with socket.socket() as s, pytest.raises(OSError):
            s.settimeout(2)
            s.connect(("127.0.0.1", int(demo.result.delivery.url.rsplit(":", 1)[1])))


def test_demo_command_refuses_a_non_empty_directory(tmp_path: Path) -> None:
    (tmp_path / "precious.txt").write_text("keep me")
    proc = subprocess.run(
        [sys.executable, "-m", "clearance", "demo", "--dir", str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 2
    assert "the demo directory must be new or empty" in proc.stderr
    assert (tmp_path / "precious.txt").read_text() == "keep me"
