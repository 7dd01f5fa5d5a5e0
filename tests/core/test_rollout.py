"""Rollout policy: strategies, tenants, analyses and deploy targets, and the plans they make."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from clearance.core.judge import Kind
from clearance.core.policy import PolicyError, parse_policy
from clearance.core.rollout import (
    BASELINE,
    CANARY,
    INITIAL,
    STABLE,
    CanaryStep,
    Next,
    Plan,
    PlanError,
    Requires,
    RolloutRule,
    Strategy,
    Tenant,
    after_verdict,
    plan_rollout,
    query_problem,
    seconds,
    tenant_problems,
)

POLICY = """
version: 1
environments: [staging, prod]
services:
  orders:
    paths: ["services/orders/**"]
    run: "python {artifact} --port {port}"
    health: /healthz
    ready_timeout: 20s
    requires: {config: [hl7_ack], interfaces: {hl7: ">=2.5"}}
tenants:
  internal-qa:    {config: {hl7_ack: "on"}, interfaces: {hl7: "2.6"}}
  st-mary-clinic: {config: {hl7_ack: "on"}, interfaces: {hl7: "2.5"}}
  old-valley:     {config: {hl7_ack: "on"}, interfaces: {hl7: "2.3"}}
  north-ridge:    {config: {hl7_ack: "on"}, interfaces: {hl7: "2.6"}, hold: "regulator hold"}
analysis:
  clinical:
    interval: 10s
    thresholds: {pass: 95, marginal: 75}
    metrics:
      order_errors: {kind: rate, critical: true}
      chart_save_p95: {kind: continuous}
    queries:
      order_errors: {route: "POST /orders", measure: errors}
      chart_save_p95: {route: "PUT /charts/*", measure: p95}
deploy:
  staging: {deployer: local, ports: {orders: 8701}}
tiers:
  high:
    when: 'true'
    rollout:
      strategy: rings
      canary: [{weight: 5, bake: 10m}, {weight: 25, bake: 30m}, {weight: 100}]
      rings:
        - {name: pilot, tenants: [internal-qa], bake: 1h}
        - {name: early, tenants: [st-mary-clinic, old-valley, north-ridge], bake: 2h}
        - {name: all}
      blue_green: {bake: 5m}
      analysis: clinical
"""


def test_the_documented_rollout_policy_is_accepted() -> None:
    policy = parse_policy(POLICY)
    rule = policy.model.tiers["high"].rollout
    assert rule is not None and rule.strategy is Strategy.RINGS
    assert rule.canary[0].bake == 600.0
    assert policy.model.services["orders"].ready_timeout == 20.0
    assert [s.name for s in policy.judges["clinical"].specs] == ["order_errors", "chart_save_p95"]


def _problems(text: str) -> str:
    with pytest.raises(PolicyError) as caught:
        parse_policy(text)
    return "\n".join(p.render("clearance.yaml") for p in caught.value.problems)


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            "tenants: [internal-qa], bake: 1h",
            "tenants: [nobody], bake: 1h",
            "unknown tenant 'nobody'",
        ),
        ("analysis: clinical\n", "analysis: clinic\n", "unknown analysis 'clinic'"),
        (
            '      chart_save_p95: {route: "PUT /charts/*", measure: p95}\n',
            "",
            "chart_save_p95: has no query",
        ),
        ("measure: p95}", "measure: errors}", "measures a rate but the metric is declared"),
        ("measure: p95}", "measure: p42}", "(a builtin query)"),
        ("{kind: rate, critical: true}", "{kind: rate, critcal: true}", "critcal: unknown key"),
        ("staging: {deployer: local", "qa: {deployer: local", "unknown environment 'qa'"),
        ("deployer: local", "deployer: command", "needs its commands"),
        ("orders: 8701", "orders: 80", "must be a port from 1024"),
        ('hl7: ">=2.5"', 'hl7: "at least 2.5"', "is not a version requirement"),
        ("bake: 10m}, {weight: 25", "bake: 10m}, {weight: 3", "canary weights must increase"),
        ("bake: 10m}", "bake: ten minutes}", "is not a duration"),
        ("      blue_green: {bake: 5m}\n", "", None),
        ("strategy: rings", "strategy: blue-green", None),
    ],
)
def test_rollout_policy_errors_name_the_field_and_line(
    old: str, new: str, expected: str | None
) -> None:
    assert old in POLICY
    text = POLICY.replace(old, new, 1)
    if expected is None:
        parse_policy(text)
        return
    problems = _problems(text)
    assert expected in problems
    assert "clearance.yaml:" in problems


def test_a_declared_strategy_needs_its_steps() -> None:
    text = POLICY.replace("      blue_green: {bake: 5m}\n", "").replace(
        "strategy: rings", "strategy: blue-green"
    )
    assert "is blue-green but blue_green is not declared" in _problems(text)


def test_tenants_failing_prerequisites_or_on_hold_are_held_with_the_reason() -> None:
    policy = parse_policy(POLICY)
    requires = policy.model.services["orders"].requires
    tenants = policy.model.tenants
    assert tenant_problems("internal-qa", tenants["internal-qa"], requires) == []
    assert tenant_problems("old-valley", tenants["old-valley"], requires) == [
        "hl7 interface 2.3 does not meet >=2.5"
    ]
    assert tenant_problems("north-ridge", tenants["north-ridge"], requires) == [
        "hold: regulator hold"
    ]
    missing = Tenant(interfaces={"hl7": "2.6"})
    assert tenant_problems("x", missing, requires) == ["configuration key 'hl7_ack' is not set"]
    assert "no hl7 interface" in tenant_problems("y", Tenant(config={"hl7_ack": 1}), requires)[0]


def test_rings_pin_reached_tenants_to_the_canary_and_held_ones_to_stable() -> None:
    policy = parse_policy(POLICY)
    rule = policy.model.tiers["high"].rollout
    plan = plan_rollout(
        rule,
        None,
        policy.model.tenants,
        policy.model.services["orders"].requires,
        has_stable=True,
    )
    assert plan.strategy == "rings"
    assert [s.name for s in plan.steps] == ["ring pilot", "ring early", "100%"]
    pilot, early, final = plan.steps
    assert pilot.weights == {STABLE: 100}
    assert pilot.tenants == {"internal-qa": CANARY, "old-valley": STABLE, "north-ridge": STABLE}
    assert early.tenants["st-mary-clinic"] == CANARY and early.tenants["old-valley"] == STABLE
    assert pilot.bake == 3600 and pilot.analyse
    assert final.final and final.tenants == {"old-valley": STABLE, "north-ridge": STABLE}
    assert set(plan.held) == {"old-valley", "north-ridge"}
    assert Plan.from_json(plan.to_json()) == plan


def test_canary_steps_run_a_baseline_of_the_same_size_beside_the_canary() -> None:
    rule = RolloutRule(
        strategy=Strategy.CANARY,
        canary=(CanaryStep(weight=5, bake=60), CanaryStep(weight=60, bake=60)),
        analysis="clinical",
    )
    plan = plan_rollout(rule, None, {}, Requires(), has_stable=True)
    assert [dict(s.weights) for s in plan.steps] == [
        {CANARY: 5, BASELINE: 5, STABLE: 90},
        {CANARY: 60, BASELINE: 40},
        {CANARY: 100},
    ]
    assert [s.analyse for s in plan.steps] == [True, True, False]


def test_blue_green_is_one_switch_judged_against_the_window_before() -> None:
    policy = parse_policy(POLICY)
    rule = policy.model.tiers["high"].rollout
    plan = plan_rollout(rule, Strategy.BLUE_GREEN, {}, Requires(), has_stable=True)
    (switch,) = plan.steps
    assert switch.weights == {CANARY: 100} and switch.compare_before and switch.bake == 300


def test_blue_green_previews_to_its_tenants_before_the_switch() -> None:
    text = POLICY.replace(
        "blue_green: {bake: 5m}",
        "blue_green: {preview: [internal-qa, old-valley], preview_bake: 2m, bake: 5m}",
    )
    policy = parse_policy(text)
    rule = policy.model.tiers["high"].rollout
    plan = plan_rollout(
        rule,
        Strategy.BLUE_GREEN,
        policy.model.tenants,
        policy.model.services["orders"].requires,
        has_stable=True,
    )
    preview, switch = plan.steps
    assert preview.weights == {STABLE: 100} and preview.bake == 120 and preview.analyse
    assert preview.tenants["internal-qa"] == CANARY and preview.tenants["old-valley"] == STABLE
    assert switch.final and switch.compare_before
    bad = POLICY.replace("blue_green: {bake: 5m}", "blue_green: {preview: [nobody]}")
    assert "blue_green.preview: unknown tenant 'nobody'" in _problems(bad)


def test_a_first_deployment_has_nothing_to_compare_with() -> None:
    plan = plan_rollout(None, None, {}, Requires(), has_stable=False)
    assert plan.strategy == INITIAL and len(plan.steps) == 1 and plan.steps[0].final
    with pytest.raises(PlanError, match="declares no rollout"):
        plan_rollout(None, None, {}, Requires(), has_stable=True)
    with pytest.raises(PlanError, match="no canary steps"):
        plan_rollout(RolloutRule(), None, {}, Requires(), has_stable=True)


@given(st.lists(st.integers(1, 99), min_size=1, max_size=6, unique=True).map(sorted))
def test_every_canary_split_is_whole_and_complete(weights: list[int]) -> None:
    rule = RolloutRule(canary=tuple(CanaryStep(weight=w, bake=1) for w in weights))
    plan = plan_rollout(rule, None, {}, Requires(), has_stable=True)
    for step, w in zip(plan.steps, [*weights, 100], strict=True):
        assert sum(step.weights.values()) == 100
        assert step.weights.get(CANARY) == w
        assert all(v > 0 for v in step.weights.values())
        assert step.weights.get(BASELINE, 0) <= w


def test_what_follows_a_verdict() -> None:
    plan = plan_rollout(
        RolloutRule(canary=(CanaryStep(weight=5, bake=1),)), None, {}, Requires(), has_stable=True
    )
    assert after_verdict(plan, 0, "pass", "pause") is Next.ADVANCE
    assert after_verdict(plan, 0, None, "pause") is Next.ADVANCE
    assert after_verdict(plan, 1, "pass", "pause") is Next.COMPLETE
    assert after_verdict(plan, 0, "fail", "pause") is Next.ABORT
    assert after_verdict(plan, 0, "marginal", "pause") is Next.PAUSE
    assert after_verdict(plan, 0, "marginal", "abort") is Next.ABORT


@pytest.mark.parametrize(
    ("text", "value"),
    [("30s", 30.0), ("10m", 600.0), ("2h", 7200.0), ("500ms", 0.5), (12, 12.0), ("1.5m", 90.0)],
)
def test_durations(text: str | int, value: float) -> None:
    assert seconds(text) == value


def test_queries_are_checked_against_the_source_and_the_metric_kind() -> None:
    assert (
        query_problem("builtin", {"route": "POST /orders", "measure": "errors"}, Kind.RATE) is None
    )
    assert "continuous" in str(
        query_problem("builtin", {"route": "POST /orders", "measure": "errors"}, Kind.CONTINUOUS)
    )
    assert query_problem("prometheus", {"query": "up"}, Kind.CONTINUOUS) is None
    assert "prometheus" in str(query_problem("prometheus", {"route": "/x"}, Kind.RATE))
