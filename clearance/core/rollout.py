"""Progressive delivery as policy: strategies, tenants, analyses and deploy targets, and the plan
a rollout follows. Pure: no I/O, no clock.

In ``clearance.yaml`` (all optional; a policy without them still governs promotions)::

    services:
      orders:
        paths: ["services/orders/**"]
        run: "python {artifact} --port {port}"   # also {slot} and {version}
        health: /healthz
        ready_timeout: 20s
        requires: {config: [hl7_ack], interfaces: {hl7: ">=2.5"}}
    tenants:
      internal-qa:    {config: {hl7_ack: "on"}, interfaces: {hl7: "2.6"}}
      st-mary-clinic: {config: {hl7_ack: "on"}, interfaces: {hl7: "2.5"}, hold: "CAB pending"}
    analysis:
      clinical:
        source: builtin                # or prometheus, with url
        interval: 10s
        thresholds: {pass: 95, marginal: 75}
        metrics:  {order_errors: {kind: rate, critical: true}}      # the judge's metrics form
        queries:  {order_errors: {route: "POST /orders", measure: errors}}
        on_marginal: pause             # or abort
    deploy:
      staging: {deployer: local, ports: {orders: 8701}}
      prod:    {deployer: command, commands: {deploy: "...", route: "...", ...}, timeout: 60s}
    tiers:
      high:
        when: ...
        rollout:
          strategy: rings              # the default; `rollout start --strategy` picks another
          canary: [{weight: 5, bake: 10m}, {weight: 25, bake: 30m}, {weight: 100}]
          rings: [{name: pilot, tenants: [internal-qa]}, {name: all}]
          blue_green: {bake: 10m}
          analysis: clinical
          scale_down_delay: 30s

A tenant whose declared configuration or interface version does not meet the service's
``requires``, or that carries a ``hold``, is *held*: pinned to the version it runs at every step,
with the reason shown, never silently skipped. When the rollout completes, held tenants stay on
the previous version in the ``held`` slot; later rollouts leave them there until the hold ends.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Annotated, Any, Literal

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from clearance.core.judge import Kind
from clearance.core.queries import BuiltinQuery, PromQuery

STABLE, BASELINE, CANARY, HELD = "stable", "baseline", "canary", "held"
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}


def seconds(value: Any) -> Any:
    """``"10m"``, ``"30s"``, ``"2h"``, ``"500ms"`` or a number of seconds -> seconds."""
    if isinstance(value, bool):
        return value  # let pydantic refuse it
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        m = _DURATION.match(value)
        if m is None:
            raise ValueError(f"{value!r} is not a duration like 30s, 10m or 2h")
        return float(m.group(1)) * _UNITS[m.group(2)]
    return value


Duration = Annotated[float, BeforeValidator(seconds), Field(ge=0)]


def format_seconds(value: float) -> str:
    if value >= 3600 and value % 3600 == 0:
        return f"{value / 3600:g}h"
    if value >= 60 and value % 60 == 0:
        return f"{value / 60:g}m"
    return f"{value:g}s"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Strategy(StrEnum):
    CANARY = "canary"
    BLUE_GREEN = "blue-green"
    RINGS = "rings"


class CanaryStep(_Model):
    weight: int = Field(ge=1, le=100)
    bake: Duration = 0.0


class Ring(_Model):
    name: str
    tenants: tuple[str, ...] | None = None  # None: every tenant (the last ring)
    bake: Duration = 0.0


class BlueGreen(_Model):
    """Pre-promotion analysis: the ``preview`` tenants use the new version for ``preview_bake``
    (judged against stable) before anyone else; post-promotion analysis: after the switch, the
    new version is judged for ``bake`` against the old one's samples from before the switch."""

    preview: tuple[str, ...] = ()
    preview_bake: Duration = 0.0
    bake: Duration = 0.0


class RolloutRule(_Model):
    strategy: Strategy = Strategy.CANARY
    canary: tuple[CanaryStep, ...] = Field(default=(), min_length=0)
    rings: tuple[Ring, ...] = ()
    blue_green: BlueGreen | None = None
    analysis: str | None = None
    scale_down_delay: Duration = 30.0


class Analysis(_Model):
    source: Literal["builtin", "prometheus"] = "builtin"
    url: str | None = None
    interval: Duration = 10.0
    thresholds: dict[str, Any] | None = None
    groups: dict[str, Any] | None = None
    metrics: dict[str, Any]
    queries: dict[str, dict[str, Any]] = {}
    on_marginal: Literal["pause", "abort"] = "pause"
    #: A judged step bakes at least its ``bake``, then on until every rate metric has this many
    #: requests in both groups, for at most ``max_bake`` (default: 4 times the bake); a rate still
    #: short then is judged as no data, never on too few requests to see a change.
    min_requests: int = Field(0, ge=0)
    max_bake: Duration | None = None

    def judge_form(self) -> dict[str, Any]:
        """The part the judge reads, in its metrics-file form."""
        form: dict[str, Any] = {"metrics": self.metrics}
        if self.thresholds is not None:
            form["thresholds"] = self.thresholds
        if self.groups is not None:
            form["groups"] = self.groups
        return form


Scalar = str | int | float | bool


class Tenant(_Model):
    config: dict[str, Scalar] = {}
    interfaces: dict[str, str] = {}
    hold: str | None = None


class Requires(_Model):
    config: tuple[str, ...] = ()
    interfaces: dict[str, str] = {}


class Commands(_Model):
    """The user's own scripts, for the ``command`` deployer (placeholders documented there)."""

    deploy: str
    route: str
    scale_down: str
    promote: str | None = None


class DeployTarget(_Model):
    deployer: Literal["local", "command"] = "local"
    router: Literal["builtin", "nginx"] = "builtin"
    ports: dict[str, int] = {}
    env: dict[str, dict[str, str]] = {}
    commands: Commands | None = None
    timeout: Duration = 60.0


def query_problem(source: str, query: Mapping[str, Any], kind: Kind) -> str | None:
    """What is wrong with one metric's query for ``source`` (None: nothing)."""
    model: type[BuiltinQuery | PromQuery] = PromQuery if source == "prometheus" else BuiltinQuery
    try:
        parsed = model.model_validate(query)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        return f"{where + ': ' if where else ''}{first['msg']} (a {source} query)"
    if parsed.kind is not kind:
        return f"measures a {parsed.kind.value} but the metric is declared kind: {kind.value}"
    return None


# -- tenants -------------------------------------------------------------------------------------


def tenant_problems(name: str, tenant: Tenant, requires: Requires) -> list[str]:
    """Why ``tenant`` cannot take a new version of a service with ``requires`` (empty: it can)."""
    reasons: list[str] = []
    if tenant.hold:
        reasons.append(f"hold: {tenant.hold}")
    for key in requires.config:
        if key not in tenant.config:
            reasons.append(f"configuration key {key!r} is not set")
    for interface, spec in requires.interfaces.items():
        have = tenant.interfaces.get(interface)
        if have is None:
            reasons.append(f"no {interface} interface version declared (needs {spec})")
            continue
        try:
            ok = Version(have) in SpecifierSet(spec)
        except (InvalidVersion, InvalidSpecifier):
            ok = False
        if not ok:
            reasons.append(f"{interface} interface {have} does not meet {spec}")
    return reasons


def check_specifier(spec: str) -> str | None:
    try:
        SpecifierSet(spec)
    except InvalidSpecifier:
        return f"{spec!r} is not a version requirement like '>=2.5'"
    return None


# -- the plan ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    """One step of a rollout: a traffic split, held for ``bake`` seconds, then judged."""

    name: str
    weights: Mapping[str, int]
    tenants: Mapping[str, str] = field(default_factory=dict)
    bake: float = 0.0
    analyse: bool = False
    compare_before: bool = False  # judge against stable's samples from before this step

    @property
    def final(self) -> bool:
        return self.weights.get(CANARY) == 100

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "weights": dict(self.weights),
            "tenants": dict(self.tenants),
            "bake": self.bake,
            "analyse": self.analyse,
            "compare_before": self.compare_before,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Step:
        return cls(
            data["name"],
            dict(data["weights"]),
            dict(data.get("tenants", {})),
            float(data.get("bake", 0.0)),
            bool(data.get("analyse", False)),
            bool(data.get("compare_before", False)),
        )


@dataclass(frozen=True)
class Plan:
    strategy: str
    steps: tuple[Step, ...]
    held: Mapping[str, str] = field(default_factory=dict)  # tenant -> why it is held
    analysis: str | None = None
    scale_down_delay: float = 30.0
    resting: Mapping[str, str] = field(default_factory=dict)  # pins kept when all goes to stable

    def to_json(self) -> dict[str, Any]:
        return {
            "strategy": self.strategy,
            "steps": [s.to_json() for s in self.steps],
            "held": dict(self.held),
            "analysis": self.analysis,
            "scale_down_delay": self.scale_down_delay,
            "resting": dict(self.resting),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Plan:
        return cls(
            data["strategy"],
            tuple(Step.from_json(s) for s in data["steps"]),
            dict(data.get("held", {})),
            data.get("analysis"),
            float(data.get("scale_down_delay", 30.0)),
            dict(data.get("resting", {})),
        )


INITIAL = "initial"


class PlanError(ValueError):
    """A rollout that cannot be planned; the message says why and what to change."""


def plan_rollout(
    rule: RolloutRule | None,
    strategy: Strategy | None,
    tenants: Mapping[str, Tenant],
    requires: Requires,
    *,
    has_stable: bool,
    held_on: Mapping[str, str] | None = None,
) -> Plan:
    """The steps a rollout takes. Without a version already serving there is nothing to compare
    against: the first deployment is one step straight to 100%.

    ``held_on`` says which tenants already run the ``held`` slot (a previous version); a tenant
    still held stays there, one newly held stays on stable."""
    if not has_stable:
        return Plan(INITIAL, (Step("initial deployment", {CANARY: 100}),))
    if rule is None:
        raise PlanError("this release's tier declares no rollout: add `rollout:` to the tier")
    chosen = strategy or rule.strategy
    held = {
        name: "; ".join(problems)
        for name, tenant in tenants.items()
        if (problems := tenant_problems(name, tenant, requires))
    }
    pins = {t: (HELD if (held_on or {}).get(t) == HELD else STABLE) for t in held}
    resting = {t: s for t, s in pins.items() if s == HELD}
    analyse = rule.analysis is not None
    steps: list[Step] = []
    if chosen is Strategy.CANARY:
        if not rule.canary:
            raise PlanError("the tier's rollout declares no canary steps (rollout.canary)")
        for s in rule.canary:
            if s.weight == 100:
                break
            w = s.weight
            weights = {CANARY: w, BASELINE: min(w, 100 - w), STABLE: 100 - w - min(w, 100 - w)}
            steps.append(Step(f"{w}%", _nonzero(weights), pins, s.bake, analyse and s.bake > 0))
    elif chosen is Strategy.RINGS:
        if not rule.rings:
            raise PlanError("the tier's rollout declares no rings (rollout.rings)")
        reached: dict[str, str] = {}
        for ring in rule.rings:
            if ring.tenants is None:
                break
            for t in ring.tenants:
                if t not in held:
                    reached[t] = CANARY
            steps.append(
                Step(
                    f"ring {ring.name}",
                    {STABLE: 100},
                    {**reached, **pins},
                    ring.bake,
                    analyse and ring.bake > 0,
                )
            )
    else:
        bg = rule.blue_green or BlueGreen()
        preview = {t: CANARY for t in bg.preview if t not in held}
        if preview:
            steps.append(
                Step(
                    "preview",
                    {STABLE: 100},
                    {**preview, **pins},
                    bg.preview_bake,
                    analyse and bg.preview_bake > 0,
                )
            )
        steps.append(
            Step(
                "switch",
                {CANARY: 100},
                pins,
                bg.bake,
                analyse and bg.bake > 0,
                compare_before=True,
            )
        )
    if not steps or not steps[-1].final:
        steps.append(Step("100%", {CANARY: 100}, pins))
    return Plan(chosen.value, tuple(steps), held, rule.analysis, rule.scale_down_delay, resting)


def _nonzero(weights: Mapping[str, int]) -> dict[str, int]:
    return {k: v for k, v in weights.items() if v > 0}


# -- what the controller does next -----------------------------------------------------------------


class Phase(StrEnum):
    RUNNING = "running"
    PAUSED = "paused"
    COMPLETED = "completed"
    ABORTED = "aborted"

    @property
    def active(self) -> bool:
        return self in (Phase.RUNNING, Phase.PAUSED)


class Next(StrEnum):
    ADVANCE = "advance"
    COMPLETE = "complete"
    PAUSE = "pause"
    ABORT = "abort"


def after_verdict(plan: Plan, step: int, verdict: str | None, on_marginal: str) -> Next:
    """What follows a step's bake: its verdict (None when the step is not judged) decides."""
    if verdict == "fail":
        return Next.ABORT
    if verdict == "marginal":
        return Next.PAUSE if on_marginal == "pause" else Next.ABORT
    return Next.COMPLETE if step + 1 >= len(plan.steps) else Next.ADVANCE
