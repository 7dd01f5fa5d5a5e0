"""Rollouts end to end: a real clinic service run by the local deployer behind the router, real
traffic, the judge on the router's records, and the ledger saying what happened."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from clearance.core.rollout import Phase
from clearance.demo.traffic import Traffic
from clearance.deploy.local.client import LocalDeployer
from clearance.errors import ConflictError, InputError
from clearance.judge import judge_files
from clearance.settings import Settings
from clearance.store import rollouts as store
from clearance.usecases import rollouts
from clearance.usecases.controller import Controller
from clearance.usecases.instance import Instance, init
from clearance.usecases.ledger import verify_ledger
from clearance.usecases.releases import status
from clearance.usecases.rollback import drill, rollback
from tests.usecases.clinic import TENANTS, UNREACHABLE_PROMETHEUS, ClinicRepo


@pytest.fixture
def home(tmp_path: Path) -> Iterator[Instance]:
    instance = init(Settings.from_env({}, home=tmp_path / "home"), actor="admin")
    try:
        yield instance
    finally:
        for env in (instance.settings.home / "deploy").glob("*"):
            LocalDeployer(env, ports={}).stop()  # whatever agent a test left, in any env
        instance.close()


def _controller(instance: Instance) -> Controller:
    def fail_on_errors(what: str, _: object, data: dict[str, object]) -> None:
        assert what != "error", data

    return Controller(instance, tick=0.25, route_lease=3.0, listener=fail_on_errors)


def _serving(repo: ClinicRepo) -> str:
    return str(httpx.get(repo.url + "/healthz", timeout=5).json()["version"])


def test_a_bad_canary_is_aborted_on_its_own_and_a_good_one_completes(
    home: Instance, tmp_path: Path
) -> None:
    # 150 orders per group at least: enough to see 7% failing orders, whatever the machine's load
    repo = ClinicRepo(tmp_path / "repo", bake="8s", min_requests=150)
    v1 = repo.release(home, "1.4.2")
    first = rollouts.start(home, v1, env="staging", actor="deployer@example.org")
    assert first.plan.strategy == "initial"
    done = _controller(home).drive(first.id)
    assert done.phase is Phase.COMPLETED
    assert _serving(repo) == "1.4.2"

    bad = repo.release(home, "1.4.3", faulty=True)
    r = rollouts.start(home, bad, env="staging", actor="deployer@example.org")
    assert r.stable_digest == v1 and [s.name for s in r.plan.steps] == ["50%", "100%"]
    with Traffic(repo.url, rate=150, tenants=TENANTS, seed=6) as traffic:
        aborted = _controller(home).drive(r.id)
        switched = time.time()  # the abort has switched traffic by now
        time.sleep(1.0)
        assert traffic.counts(slot="stable")["requests"] > 0
    with LocalDeployer(home.settings.home / "deploy" / "staging") as router:
        sent = [  # start times of the requests the router sent to the canary
            rec["t"] - rec["ms"] / 1000
            for rec in router.records("clinic", 0, time.time(), slot="canary")
            if "ms" in rec
        ]
    assert len(sent) > 100, "the canary took its share while it baked"
    assert [t for t in sent if t > switched] == [], "the canary got traffic after the abort"
    verdicts = [e.data for e in rollouts.history(home, aborted) if e.kind == rollouts.VERDICT]
    assert aborted.phase is Phase.ABORTED, [
        (
            v["verdict"]["reasons"],
            [(m["name"], m["classification"], m["reason"]) for m in v["verdict"]["metrics"]],
        )
        for v in verdicts
    ]
    assert "fail" in (aborted.reason or "")
    assert _serving(repo) == "1.4.2"
    entries = {e.kind: e for e in rollouts.history(home, aborted)}
    verdict = entries[rollouts.VERDICT].data["verdict"]
    assert verdict["verdict"] == "fail"
    (order_errors,) = verdict["metrics"]
    assert order_errors["classification"] == "high" and order_errors["p_value"] < 0.01
    assert order_errors["baseline"]["denominator"] >= 150 <= order_errors["canary"]["denominator"]
    abort = entries[rollouts.ABORTED].data
    assert abort["severity"] == "incident" and abort["traffic"] == "100% stable"
    assert 0 <= abort["rollback_seconds"] < 1.0
    assert entries[rollouts.ABORTED].actor.startswith("controller:")
    exported = tmp_path / "export"
    rollouts.export_samples(home, aborted, exported)
    replay = judge_files(
        exported / "step1-baseline.csv", exported / "step1-canary.csv", exported / "metrics.yaml"
    )
    assert replay.verdict.to_json() == verdict, "the exported samples replay the same verdict"

    good = repo.release(home, "1.4.4")
    r = rollouts.start(home, good, env="staging", actor="deployer@example.org")
    with Traffic(repo.url, rate=150, tenants=TENANTS, seed=6):
        done = _controller(home).drive(r.id)
    assert done.phase is Phase.COMPLETED, done.reason
    assert _serving(repo) == "1.4.4"
    row = next(s for s in status(home, "staging") if s["digest"] == good)
    assert row["by"] == "deployer@example.org"
    assert verify_ledger(home).ok


def test_rings_hold_an_incompatible_tenant_on_the_previous_version(
    home: Instance, tmp_path: Path
) -> None:
    repo = ClinicRepo(tmp_path / "repo", bake="2s")
    v1 = repo.release(home, "1.4.2")
    _controller(home).drive(rollouts.start(home, v1, env="staging", actor="d").id)
    v2 = repo.release(home, "1.5.0")
    held = "old-valley (hl7 interface 2.3 does not meet >=2.5)"
    assert rollouts.rollout_scope(home, v2) == [
        f"planned (tier standard): canary: 50% (2s) → 100%; would hold: {held}"
    ]
    r = rollouts.start(home, v2, env="staging", actor="d", strategy=rollouts.Strategy.RINGS)
    assert r.plan.held == {"old-valley": "hl7 interface 2.3 does not meet >=2.5"}
    with Traffic(repo.url, rate=60, tenants=TENANTS, seed=6):
        done = _controller(home).drive(r.id)
    assert done.phase is Phase.COMPLETED
    assert _by_tenant(repo) == {
        "internal-qa": "1.5.0",
        "st-mary-clinic": "1.5.0",
        "old-valley": "1.4.2",
        None: "1.5.0",
    }
    assert rollouts.rollout_scope(home, v2) == [
        f"staging: rings: ring pilot [internal-qa] (2s) → 100%; completed; held: {held}"
    ]

    # The held tenant stays on its version through a drill and through the next rollout.
    drilled = drill(home, env="staging", actor="sre", service="clinic")
    assert drilled.subject == v2 and drilled.data["passed"]
    assert _by_tenant(repo)["old-valley"] == "1.4.2" and _by_tenant(repo)[None] == "1.5.0"
    v3 = repo.release(home, "1.5.1")
    r3 = rollouts.start(home, v3, env="staging", actor="d", strategy=rollouts.Strategy.RINGS)
    assert r3.stable_digest == v2 and r3.plan.resting == {"old-valley": "held"}
    with Traffic(repo.url, rate=60, tenants=TENANTS, seed=6):
        assert _controller(home).drive(r3.id).phase is Phase.COMPLETED
    assert _by_tenant(repo) == {
        "internal-qa": "1.5.1",
        "st-mary-clinic": "1.5.1",
        "old-valley": "1.4.2",
        None: "1.5.1",
    }


def _by_tenant(repo: ClinicRepo) -> dict[str | None, str]:
    found: dict[str | None, str] = {}
    for tenant in (*TENANTS, None):
        headers = {"X-Tenant": tenant} if tenant else {}
        answer = httpx.get(repo.url + "/healthz", headers=headers, timeout=5)
        found[tenant] = answer.json()["version"]
    return found


def test_a_killed_controller_leaves_traffic_on_stable_and_is_taken_over(
    home: Instance, tmp_path: Path
) -> None:
    repo = ClinicRepo(tmp_path / "repo", bake="30s")
    v1 = repo.release(home, "1.4.2")
    _controller(home).drive(rollouts.start(home, v1, env="staging", actor="d").id)
    v2 = repo.release(home, "1.4.3")
    r = rollouts.start(home, v2, env="staging", actor="d")

    class Killed(Exception):
        pass

    def die(_: float) -> None:
        raise Killed  # the process dies in its sleep, holding its leases

    crashing = Controller(home, tick=0.25, route_lease=1.0, lease=2.0, sleep=die)
    with pytest.raises(Killed):
        crashing.drive(r.id)
    store.claim(home.db, r.id, crashing.owner, time.time(), 2.0)  # as if it never released
    seen = {httpx.get(repo.url + "/healthz", timeout=5).json()["version"] for _ in range(20)}
    assert seen == {"1.4.2", "1.4.3"}, "the split is live while its lease runs"
    with pytest.raises(ConflictError, match="driven by"):
        _controller(home).drive(r.id)
    time.sleep(2.2)
    seen = {httpx.get(repo.url + "/healthz", timeout=5).json()["version"] for _ in range(20)}
    assert seen == {"1.4.2"}, "nobody renewed the split: the router went back to stable"

    aborting = rollouts.request(home, r, "abort", actor="oncall@example.org", reason="drill")
    assert not rollouts.driven(aborting, time.time())
    done = _controller(home).drive(r.id)
    assert done.phase is Phase.ABORTED
    kinds = [e.kind for e in rollouts.history(home, done)]
    assert rollouts.TAKEN_OVER in kinds
    assert kinds[-2:] == [rollouts.ABORTED, rollouts.SCALED_DOWN]


def test_rollback_and_a_drill_are_timed_and_recorded(home: Instance, tmp_path: Path) -> None:
    repo = ClinicRepo(tmp_path / "repo", bake="1s", old_valley_hl7="2.6")  # nobody held
    v1 = repo.release(home, "1.4.2")
    _controller(home).drive(rollouts.start(home, v1, env="staging", actor="d").id)
    v2 = repo.release(home, "1.4.4")
    with Traffic(repo.url, rate=60, tenants=TENANTS, seed=6):
        time.sleep(1.5)  # blue-green judges the new version against the window before the switch
        r2 = rollouts.start(
            home, v2, env="staging", actor="d", strategy=rollouts.Strategy.BLUE_GREEN
        )
        assert _controller(home).drive(r2.id).phase is Phase.COMPLETED
    assert _serving(repo) == "1.4.4"

    entry = drill(home, env="staging", actor="sre@example.org", service="clinic")
    assert entry.subject == v2 and entry.data["type"] == "rollback-drill" and entry.data["passed"]
    assert _serving(repo) == "1.4.4"

    done = rollback(
        home,
        env="staging",
        actor="oncall@example.org",
        service="clinic",
        fast=True,
        controller=_controller(home),
    )
    assert done.rollout.phase is Phase.COMPLETED and not done.aborted
    assert _serving(repo) == "1.4.2"
    assert done.seconds < 15


def test_a_metric_source_that_fails_pauses_the_rollout_on_stable_and_says_why(
    home: Instance, tmp_path: Path
) -> None:
    repo = ClinicRepo(tmp_path / "repo", bake="2s", queries=UNREACHABLE_PROMETHEUS)
    v1 = repo.release(home, "1.4.2")
    _controller(home).drive(rollouts.start(home, v1, env="staging", actor="d").id)
    v2 = repo.release(home, "1.4.3")
    r = rollouts.start(home, v2, env="staging", actor="d")
    paused = _controller(home).drive(r.id)
    assert paused.phase is Phase.PAUSED and "marginal" in (paused.reason or "")
    assert {_serving(repo) for _ in range(10)} == {"1.4.2"}, "paused: all traffic on stable"
    verdict = next(e for e in rollouts.history(home, paused) if e.kind == rollouts.VERDICT)
    (metric,) = verdict.data["verdict"]["metrics"]
    assert metric["classification"] == "error" and "127.0.0.1:9" in metric["reason"]
    aborted = rollouts.request(home, paused, "abort", actor="oncall", reason="no metrics")
    assert _controller(home).drive(aborted.id).phase is Phase.ABORTED


def test_too_few_requests_bake_on_then_count_as_no_data_never_a_pass(
    home: Instance, tmp_path: Path
) -> None:
    repo = ClinicRepo(tmp_path / "repo", bake="1s", min_requests=50, max_bake="3s")
    v1 = repo.release(home, "1.4.2")
    _controller(home).drive(rollouts.start(home, v1, env="staging", actor="d").id)
    r = rollouts.start(home, repo.release(home, "1.4.3", faulty=True), env="staging", actor="d")
    began = time.monotonic()
    with Traffic(repo.url, rate=4, tenants=TENANTS, seed=6):  # a quiet night at a small clinic
        paused = _controller(home).drive(r.id)
    assert time.monotonic() - began >= 3, "it baked on, up to max_bake"
    assert paused.phase is Phase.PAUSED and "nodata" in (paused.reason or "")
    verdict = next(e for e in rollouts.history(home, paused) if e.kind == rollouts.VERDICT)
    assert verdict.data["short_of_requests"] == ["order_errors"]
    assert verdict.data["verdict"]["metrics"][0]["classification"] == "nodata"


def test_a_rollout_the_gate_refuses_or_cannot_plan_never_starts(
    home: Instance, tmp_path: Path
) -> None:
    repo = ClinicRepo(tmp_path / "repo")
    v1 = repo.release(home, "1.4.2")
    with pytest.raises(InputError, match="unknown environment"):
        rollouts.start(home, v1, env="qa", actor="d")
    with pytest.raises(InputError, match="unknown service"):
        rollouts.start(home, v1, env="staging", actor="d", service="billing")
    r = rollouts.start(home, v1, env="staging", actor="d", deployer=None)
    with pytest.raises(ConflictError, match="still active"):
        rollouts.start(home, v1, env="staging", actor="d")
    assert [x.id for x in store.find(home.db, active=True)] == [r.id]
