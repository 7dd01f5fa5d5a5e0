"""Rollouts: a gated release reaching an environment step by step, judged, and pulled back on
its own when it hurts.

``start`` runs the gate (under the ledger's write lock, like ``promote``), plans the steps from
the release's tier and records the rollout; ``controller.Controller`` drives it. People act
through requests (pause, resume, promote, abort) that the driving controller picks up; with
nobody driving, the command that made the request drives it itself. This module also reads
rollouts back: their history in the ledger and their judged samples, for ``clearance judge``.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from clearance.core.classify import Classification
from clearance.core.digests import Digest
from clearance.core.gates import decide
from clearance.core.policy import Policy
from clearance.core.rollout import (
    CANARY,
    HELD,
    STABLE,
    Phase,
    Plan,
    PlanError,
    Requires,
    Step,
    Strategy,
    format_seconds,
    plan_rollout,
)
from clearance.deploy import Deployer, SlotState
from clearance.errors import ConflictError, InputError, NotFoundError, RefusedError
from clearance.files import write_text
from clearance.store import rollouts as store
from clearance.store.ledger import Entry
from clearance.store.rollouts import Rollout
from clearance.usecases import delivery
from clearance.usecases.artifacts import find_artifact
from clearance.usecases.instance import Instance
from clearance.usecases.releases import (
    GateBlocked,
    check_promoter,
    known_env,
    release_facts,
)

STARTED = "rollout.started"
STEP = "rollout.step"
VERDICT = "rollout.verdict"
REQUESTED = "rollout.requested"
PAUSED = "rollout.paused"
RESUMED = "rollout.resumed"
TAKEN_OVER = "rollout.taken-over"
ABORTED = "rollout.aborted"
COMPLETED = "rollout.completed"
SCALED_DOWN = "rollout.scaled-down"
KINDS = (STARTED, STEP, VERDICT, REQUESTED, PAUSED, RESUMED, TAKEN_OVER, ABORTED, COMPLETED)
ACTIONS = ("pause", "resume", "promote", "abort")
ROLLBACK = "rollback"


def version_of(registration: Mapping[str, Any], digest: str) -> str:
    """What ``{version}`` means: the build number, else the short commit, else the digest."""
    if registration.get("build_number"):
        return str(registration["build_number"])
    if registration.get("commit"):
        return str(registration["commit"])[:12]
    return digest.split(":", 1)[-1][:12]


# -- starting ------------------------------------------------------------------------------------


def start(
    instance: Instance,
    digest: Digest,
    *,
    env: str,
    actor: str,
    strategy: Strategy | None = None,
    service: str | None = None,
    deployer: Deployer | None = None,
    rollback: bool = False,
    fast: bool = False,
) -> Rollout:
    """Gate, plan and record a rollout; nothing is deployed until a controller drives it.

    ``rollback``: the digest served this environment before, so it needs no new gate decision
    (it passed one there); ``fast`` skips every step and its analysis (an incident)."""
    facts, policy = release_facts(instance, digest, None)
    if policy is None or facts.classification is None:
        raise InputError(
            f"{digest} has no classification, so no tier says how to roll it out",
            hint="register it with --repo and --base",
        )
    known_env(policy, env)  # before any deployer (and its agent) is started for it
    svc = _service_of(policy, facts.classification, service)
    spec = delivery.service_spec(policy, env, svc)  # refuses a service that cannot run
    if deployer is None:
        with delivery.opened(delivery.deployer_for(instance, policy, env)) as own:
            running, current = own.slots(svc), own.routes(svc)
    else:
        running, current = deployer.slots(svc), deployer.routes(svc)
    serving = running.get(STABLE)
    held_on = {t: s for t, s in (current.tenants if current else {}).items() if s == HELD}
    with instance.ledger.appending() as appender:
        facts, policy = release_facts(instance, digest, appender)
        assert policy is not None  # the same registration: its policy, checked above
        check_promoter(facts, actor, env)
        decision = decide(policy, facts, env)
        if rollback and facts.promoted_to(env) is None:
            raise RefusedError(
                f"{digest} never served {env}, so it is not a version to roll back to",
                hint="roll back to a digest promoted to this environment before",
            )
        if not decision.allowed and not rollback:
            raise GateBlocked(decision)
        assert decision.tier is not None
        if serving is not None and serving.digest == digest:
            raise ConflictError(f"{digest} already serves {svc} in {env}")
        declared = policy.model.services[svc]
        rule = policy.model.tiers[decision.tier].rollout
        try:
            plan = plan_rollout(
                rule,
                strategy,
                policy.model.tenants,
                declared.requires,
                has_stable=serving is not None,
                held_on=held_on,
            )
        except PlanError as exc:
            raise InputError(str(exc), hint=f"tier {decision.tier} in {policy.name}") from exc
        _one_held_version(plan, running, serving.digest if serving else None)
        if fast:
            final = plan.steps[-1]
            plan = Plan(
                ROLLBACK,
                (Step("switch", {CANARY: 100}, final.tenants),),
                plan.held,
                resting=plan.resting,
            )
        if plan.analysis is None and any(s.analyse for s in plan.steps):
            raise InputError("steps that bake need an analysis to judge them")
        reg = find_artifact(instance, digest, appender).data
        now = appender.at
        rollout = Rollout(
            id="r-" + secrets.token_hex(6),
            env=env,
            service=svc,
            digest=digest,
            name=facts.name,
            version=version_of(reg, digest),
            stable_digest=serving.digest if serving is not None else None,
            plan=plan,
            step=0,
            phase=Phase.RUNNING,
            step_started=None,
            reason=None,
            request=None,
            owner=None,
            lease_until=None,
            actor=actor,
            created_at=now,
            updated_at=now,
        )
        store.insert(instance.db, appender.raw, rollout)
        appender.add(
            STARTED,
            digest,
            actor,
            {
                "rollout": rollout.id,
                "env": env,
                "service": svc,
                "stable": rollout.stable_digest,
                "strategy": plan.strategy,
                "plan": plan.to_json(),
                "run": spec.run,
                "decision": decision.to_json(),
                "rollback": rollback,
            },
        )
    return rollout


def _one_held_version(plan: Plan, running: Mapping[str, SlotState], stable: str | None) -> None:
    """Held tenants share one previous version: newly held ones would need stable's version
    kept, while the held slot already keeps an older one for others."""
    newly = sorted(t for t, s in plan.steps[-1].tenants.items() if s == STABLE)
    kept = running.get(HELD)
    if newly and kept is not None and plan.resting and kept.digest != stable:
        raise ConflictError(
            f"{', '.join(newly)} would be held on the current version while "
            f"{', '.join(sorted(plan.resting))} are held on an older one ({kept.version})",
            hint="one held version at a time: end a hold, or meet the prerequisite, first",
        )


def _service_of(policy: Policy, cls: Classification, service: str | None) -> str:
    if service is not None:
        return service
    runnable = [s for s in cls.services if (d := policy.model.services.get(s)) and d.run]
    if len(runnable) == 1:
        return runnable[0]
    every = [n for n, d in policy.model.services.items() if d.run]
    if not runnable and len(every) == 1:
        return every[0]
    raise InputError(
        "cannot tell which service this artifact is"
        + (f" (it touches {', '.join(runnable)})" if runnable else ""),
        hint="pass --service NAME",
    )


# -- people's requests ---------------------------------------------------------------------------


def active(instance: Instance, env: str, service: str | None = None) -> Rollout:
    found = store.find(instance.db, env=env, service=service, active=True)
    if not found:
        raise NotFoundError(f"no active rollout in {env}" + (f" for {service}" if service else ""))
    if len(found) > 1:
        raise InputError(
            f"{len(found)} rollouts are active in {env} ({', '.join(r.service for r in found)})",
            hint="pass --service NAME",
        )
    return found[0]


def request(
    instance: Instance, rollout: Rollout, action: str, *, actor: str, reason: str | None = None
) -> Rollout:
    """Record a person's request; the controller driving the rollout acts on it."""
    if action not in ACTIONS:
        raise InputError(f"unknown action {action!r} (one of {', '.join(ACTIONS)})")
    if action == "resume" and rollout.phase is not Phase.PAUSED:
        raise ConflictError(f"rollout {rollout.id} is {rollout.phase.value}, not paused")
    with instance.ledger.appending() as appender:
        current = store.load(instance.db, rollout.id, appender.raw)
        if current is None or not current.phase.active:
            raise ConflictError(f"rollout {rollout.id} is no longer active")
        wanted = {"action": action, "by": actor, "reason": reason}
        store.change(instance.db, appender.raw, rollout.id, request=wanted, updated_at=appender.at)
        appender.add(REQUESTED, rollout.digest, actor, {"rollout": rollout.id, **wanted})
    loaded = store.load(instance.db, rollout.id)
    assert loaded is not None
    return loaded


def driven(rollout: Rollout, now: float) -> bool:
    """Whether a live controller holds the rollout's lease."""
    return rollout.owner is not None and (rollout.lease_until or 0) > now


# -- the controller ------------------------------------------------------------------------------


def rollouts_started(instance: Instance, rollout: Rollout) -> list[Entry]:
    return [
        e
        for e in instance.ledger.find(subject=rollout.digest, kinds=[STARTED])
        if e.data.get("rollout") == rollout.id
    ]


def find_rollout(instance: Instance, rollout_id: str) -> Rollout:
    found = store.load(instance.db, rollout_id)
    if found is None:
        raise NotFoundError(
            f"no rollout {rollout_id!r}", hint="clearance rollout status lists them with their ids"
        )
    return found


def export_samples(instance: Instance, rollout: Rollout, directory: Path) -> list[Path]:
    """Each judged step's samples, as the judge read them, in the sample-file form, with the
    metrics file it judged them by: ``clearance judge`` replays any verdict from them."""
    verdicts = [e for e in history(instance, rollout) if e.kind == VERDICT]
    if not verdicts:
        raise NotFoundError(f"rollout {rollout.id} has no judged step yet: nothing to export")
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for e in verdicts:
        for group in ("baseline", "canary"):
            path = directory / f"step{e.data['step'] + 1}-{group}.csv"
            write_text(path, instance.blobs.read_bytes(Digest(e.data["blobs"][group])).decode())
            written.append(path)
    _, policy = release_facts(instance, Digest(rollout.digest), None)
    analysis = policy.model.analysis.get(rollout.plan.analysis or "") if policy else None
    if analysis is not None:
        path = directory / "metrics.yaml"
        write_text(path, yaml.safe_dump(analysis.judge_form(), sort_keys=False))
        written.append(path)
    return written


def history(instance: Instance, rollout: Rollout) -> list[Entry]:
    """The rollout's ledger entries, oldest first."""
    return [
        e
        for e in instance.ledger.find(subject=rollout.digest)
        if e.kind.startswith("rollout.") and e.data.get("rollout") == rollout.id
    ]


def describe(plan: Plan) -> str:
    """A plan in one line: ``canary: 5% (10m) → 25% (30m) → 100%``."""
    steps = []
    for step in plan.steps:
        reached = sorted(t for t, s in step.tenants.items() if s == CANARY)
        who = f" [{', '.join(reached)}]" if reached and step.weights.get(CANARY) != 100 else ""
        bake = f" ({format_seconds(step.bake)})" if step.bake else ""
        steps.append(f"{step.name}{who}{bake}")
    return f"{plan.strategy}: {' → '.join(steps)}"


def rollout_scope(instance: Instance, digest: Digest) -> list[str]:
    """What a reviewer should know about how a release reaches people: its rollouts so far, or
    the plan its tier declares, with the tenants that would be held and why."""
    lines = []
    for r in reversed([r for r in store.find(instance.db) if r.digest == digest]):
        held = f"; held: {_held_text(r.plan.held)}" if r.plan.held else ""
        lines.append(f"{r.env}: {describe(r.plan)}; {r.phase.value}{held}")
    if lines:
        return lines
    facts, policy = release_facts(instance, digest, None)
    if policy is None or facts.classification is None:
        return ["not classified: no tier says how it rolls out"]
    tier = facts.classification.tier
    rule = policy.model.tiers[tier].rollout
    if rule is None:
        return [f"tier {tier} declares no rollout: each environment switches in one step"]
    runnable = [s for s in facts.classification.services if s in policy.model.services]
    requires = policy.model.services[runnable[0]].requires if runnable else Requires()
    try:
        plan = plan_rollout(rule, None, policy.model.tenants, requires, has_stable=True)
    except PlanError as exc:
        return [f"tier {tier}: {exc}"]
    held = f"; would hold: {_held_text(plan.held)}" if plan.held else ""
    return [f"planned (tier {tier}): {describe(plan)}{held}"]


def _held_text(held: Mapping[str, str]) -> str:
    return "; ".join(f"{t} ({why})" for t, why in held.items())
