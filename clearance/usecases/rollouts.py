"""Rollouts: a gated release reaching an environment step by step, judged, and pulled back on
its own when it hurts.

``start`` runs the gate (under the ledger's write lock, like ``promote``), plans the steps from
the release's tier and records the rollout. A :class:`Controller` then drives it: deploy the
canary (and a fresh baseline beside it), shift traffic step by step, let each step bake, judge
the canary against the baseline on the policy's metrics, and advance, pause for a person
(marginal) or abort (fail: all traffic back to stable at once, the time to 100% stable measured,
an incident-grade ledger entry, the aborted version scaled down after a delay). The last step
records the promotion, after the gate is checked again.

Every state change is one ledger transaction that also updates the rollout's row, so the state
survives the controller being killed at any point: the router's traffic split carries a lease
that sends everything back to stable when nobody renews it, and a restarted controller takes the
rollout over (its database lease expired) and restarts the interrupted step. People act through
requests (pause, resume, promote, abort) that the driving controller picks up; with nobody
driving, the command that made the request drives it itself.
"""

from __future__ import annotations

import os
import secrets
import socket
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from clearance.clock import rfc3339
from clearance.core.classify import Classification
from clearance.core.digests import Digest
from clearance.core.gates import Decision, decide
from clearance.core.judge import Series, Verdict, judge, series_from_samples
from clearance.core.judgeconfig import JudgeConfig
from clearance.core.policy import Policy
from clearance.core.rollout import (
    BASELINE,
    CANARY,
    HELD,
    STABLE,
    Analysis,
    Next,
    Phase,
    Plan,
    PlanError,
    Step,
    Strategy,
    after_verdict,
    plan_rollout,
)
from clearance.deploy import Deployer, DeployError, Routes, ServiceSpec, SlotSpec, SlotState
from clearance.errors import ConflictError, Error, InputError, NotFoundError, RefusedError
from clearance.files import write_text
from clearance.judge.samples import format_samples
from clearance.metrics import Collected, MetricSource, Target, Window
from clearance.store import rollouts as store
from clearance.store.ledger import Appender, Entry
from clearance.store.rollouts import Rollout
from clearance.usecases import delivery
from clearance.usecases.artifacts import find_artifact
from clearance.usecases.instance import Instance
from clearance.usecases.releases import (
    GateBlocked,
    check_promoter,
    record_promotion,
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
    if env not in policy.environments:
        raise InputError(
            f"unknown environment {env!r}",
            hint=f"the policy's environments are {', '.join(policy.environments)}",
        )
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
        assert policy is not None
        if env not in policy.environments:
            raise InputError(f"unknown environment {env!r}")
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


@dataclass
class _Context:
    policy: Policy
    deployer: Deployer
    spec: ServiceSpec
    analysis: Analysis | None
    judge: JudgeConfig | None
    source: MetricSource | None
    leases: bool  # whether the router can take a lease on a split


Listener = Callable[[str, Rollout, dict[str, Any]], None]


@dataclass
class Controller:
    """Drives rollouts. ``tick`` is how often it looks; ``lease`` how long its claim on a
    rollout lasts without renewal; ``route_lease`` how long a traffic split survives it."""

    instance: Instance
    owner: str = field(
        default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"
    )
    tick: float = 1.0
    lease: float = 10.0
    route_lease: float = 5.0
    deployer: Deployer | None = None
    listener: Listener | None = None
    now: Callable[[], float] = time.time
    sleep: Callable[[float], None] = time.sleep

    # -- the loop --------------------------------------------------------------------------------

    def drive(self, rollout_id: str) -> Rollout:
        """Drive one rollout until it completes, aborts or pauses; returns its last state."""
        r = self._load(rollout_id)
        if not r.phase.active:
            return r
        if not store.claim(self.instance.db, r.id, self.owner, self.now(), self.lease):
            raise ConflictError(
                f"rollout {r.id} is driven by {r.owner} (lease until "
                f"{time.strftime('%H:%M:%S', time.localtime(r.lease_until or 0))})",
                hint="two controllers never drive one rollout; wait or ask it via a request",
            )
        try:
            ctx = self._context(r)
            if r.owner not in (None, self.owner) and r.step_started is not None:
                r = self._transition(
                    r,
                    TAKEN_OVER,
                    self.owner,
                    {"from": r.owner},
                    step_started=None,
                )
            while True:
                r = self._load(rollout_id)
                if not r.phase.active:
                    return r
                if not store.claim(self.instance.db, r.id, self.owner, self.now(), self.lease):
                    raise ConflictError(f"rollout {r.id} was taken over by another controller")
                if r.request is not None:
                    r = self._handle(ctx, r)
                    if not r.phase.active:
                        return r
                if r.phase is Phase.PAUSED:
                    self._park(ctx, r)
                    return self._load(rollout_id)
                r = self._advance(ctx, r)
                if r.phase.active:
                    self.sleep(self.tick)
        finally:
            store.release(self.instance.db, rollout_id, self.owner)
            if self.deployer is None and "ctx" in locals():
                delivery.close(ctx.deployer)

    def _advance(self, ctx: _Context, r: Rollout) -> Rollout:
        step = r.plan.steps[r.step]
        try:
            if r.step_started is None:
                if r.step == 0 or not self._deployed(ctx, r):
                    self._deploy(ctx, r)
                self._route(ctx, r, step)
                r = self._transition(
                    r,
                    STEP,
                    self.actor,
                    {"step": r.step, **step.to_json()},
                    step_started=self.now(),
                )
                if step.final and step.bake == 0:
                    return self._complete(ctx, r)
                return r
            if ctx.leases:
                self._route(ctx, r, step)  # renews the split's lease
        except DeployError as exc:
            return self._abort(ctx, r, f"the deployer failed: {exc.message}", self.now())
        if self.now() - r.step_started < step.bake:
            return r
        decided_at = self.now()
        verdict = self._judge(ctx, r, step, r.step_started, decided_at) if step.analyse else None
        on_marginal = ctx.analysis.on_marginal if ctx.analysis else "pause"
        nxt = after_verdict(r.plan, r.step, verdict.verdict if verdict else None, on_marginal)
        if nxt is Next.ABORT:
            assert verdict is not None
            return self._abort(ctx, r, f"the judge says {verdict.verdict}", decided_at, verdict)
        if nxt is Next.PAUSE:
            r = self._transition(
                r,
                PAUSED,
                self.actor,
                {"reason": "marginal verdict: a person decides"},
                phase=Phase.PAUSED,
                reason="marginal verdict: resume or abort",
            )
            self._park(ctx, r)
            return self._load(r.id)
        if nxt is Next.COMPLETE:
            return self._complete(ctx, r)
        return self._transition(r, None, self.actor, {}, step=r.step + 1, step_started=None)

    # -- people ----------------------------------------------------------------------------------

    def _handle(self, ctx: _Context, r: Rollout) -> Rollout:
        assert r.request is not None
        action, by, reason = r.request["action"], r.request["by"], r.request.get("reason")
        data = {"reason": reason, "requested_by": by}
        if action == "abort":
            r = self._transition(r, None, by, {}, request=None)
            return self._abort(
                ctx, r, f"aborted by {by}" + (f": {reason}" if reason else ""), self.now(), by=by
            )
        if action == "pause":
            return self._transition(
                r,
                PAUSED,
                by,
                data,
                request=None,
                phase=Phase.PAUSED,
                reason=f"paused by {by}" + (f": {reason}" if reason else ""),
            )
        if action == "resume":
            return self._transition(
                r,
                RESUMED,
                by,
                data,
                request=None,
                phase=Phase.RUNNING,
                reason=None,
                step_started=None,
            )
        # promote: skip what remains, straight to the last step (the gate is checked there)
        return self._transition(
            r,
            RESUMED,
            by,
            {**data, "promote": True},
            request=None,
            phase=Phase.RUNNING,
            step=len(r.plan.steps) - 1,
            step_started=None,
            reason=None,
        )

    def _park(self, ctx: _Context, r: Rollout) -> None:
        """A paused rollout's traffic goes back to stable: nobody watches a paused split."""
        if r.stable_digest is not None:
            try:
                ctx.deployer.route(r.service, _resting(r), lease=None)
            except DeployError as exc:
                self._emit("error", r, {"message": exc.message})

    # -- steps -----------------------------------------------------------------------------------

    def _deploy(self, ctx: _Context, r: Rollout) -> None:
        self._emit("deploying", r, {"slot": CANARY, "version": r.version})
        ctx.deployer.deploy(ctx.spec, self._slot(r, CANARY, r.digest, r.name, r.version))
        if r.stable_digest and any(BASELINE in s.weights for s in r.plan.steps):
            reg = find_artifact(self.instance, Digest(r.stable_digest)).data
            version = version_of(reg, r.stable_digest)
            self._emit("deploying", r, {"slot": BASELINE, "version": version})
            ctx.deployer.deploy(
                ctx.spec, self._slot(r, BASELINE, r.stable_digest, reg["name"], version)
            )

    def _deployed(self, ctx: _Context, r: Rollout) -> bool:
        slots = ctx.deployer.slots(r.service)
        canary = slots.get(CANARY)
        return canary is not None and canary.digest == r.digest and canary.healthy

    def _slot(self, r: Rollout, slot: str, digest: str, name: str, version: str) -> SlotSpec:
        path = delivery.artifact_file(self.instance, r.env, Digest(digest), name)
        return SlotSpec(slot, digest, version, str(path))

    def _route(self, ctx: _Context, r: Rollout, step: Step) -> None:
        lease = self.route_lease if ctx.leases and not (step.final and step.bake == 0) else None
        ctx.deployer.route(r.service, Routes(step.weights, step.tenants), lease=lease)

    def _judge(self, ctx: _Context, r: Rollout, step: Step, start: float, end: float) -> Verdict:
        assert ctx.analysis is not None and ctx.judge is not None and ctx.source is not None
        names = tuple(s.name for s in ctx.judge.specs)
        window = Window(start, end, ctx.analysis.interval)
        canary_target = Target(r.service, CANARY, r.version, r.digest)
        stable = r.stable_digest or r.digest
        if step.compare_before:
            base_slot, base_window = STABLE, Window(start - (end - start), start, window.interval)
        else:
            base_slot = BASELINE if BASELINE in step.weights else STABLE
            base_window = window
        stable_version = version_of(find_artifact(self.instance, Digest(stable)).data, stable)
        base_target = Target(r.service, base_slot, stable_version, stable)
        canary = _collect(ctx.source, canary_target, window, names)
        baseline = _collect(ctx.source, base_target, base_window, names)
        verdict = judge(
            ctx.judge.specs,
            ctx.judge.thresholds,
            _series(baseline),
            _series(canary),
            group_weights=ctx.judge.group_weights,
        )
        blobs = {
            "canary": self.instance.blobs.put_bytes(format_samples(canary.samples).encode()),
            "baseline": self.instance.blobs.put_bytes(format_samples(baseline.samples).encode()),
        }
        self._transition(
            r,
            VERDICT,
            self.actor,
            {
                "step": r.step,
                "name": step.name,
                "baseline_slot": base_slot,
                "window": [start, end],
                "verdict": verdict.to_json(),
                "blobs": blobs,
            },
        )
        return verdict

    def _abort(
        self,
        ctx: _Context,
        r: Rollout,
        reason: str,
        decided_at: float,
        verdict: Verdict | None = None,
        by: str | None = None,
    ) -> Rollout:
        """All traffic back to stable now; the time from the decision to 100% stable is kept."""
        switched, problem = None, None
        try:
            if r.stable_digest is not None:
                ctx.deployer.route(r.service, _resting(r), lease=None)
                switched = self.now() - decided_at
        except DeployError as exc:
            problem = exc.message
        data: dict[str, Any] = {
            "severity": "incident" if problem is None else "critical",
            "reason": reason,
            "step": r.step,
            "rollback_seconds": switched,
            "traffic": "100% stable" if problem is None else f"NOT switched: {problem}",
            "verdict": verdict.verdict if verdict else None,
            "failed_metrics": [m.name for m in verdict.metrics if m.failed] if verdict else [],
        }
        r = self._transition(r, ABORTED, by or self.actor, data, phase=Phase.ABORTED, reason=reason)
        self._emit("aborted", r, data)
        self.sleep(r.plan.scale_down_delay)
        self._scale_down(ctx, r, (CANARY, BASELINE))
        return r

    def _complete(self, ctx: _Context, r: Rollout) -> Rollout:
        held = dict(r.plan.held)
        with self.instance.ledger.appending() as appender:
            facts, policy = release_facts(self.instance, Digest(r.digest), appender)
            decision = decide(policy, facts, r.env)
            rollback = self._rollback(r)
            if not decision.allowed and not rollback:
                blocked: Decision | None = decision
            else:
                blocked = None
                record_promotion(
                    self.instance,
                    appender,
                    facts,
                    policy,
                    decision,
                    actor=r.actor,
                    extra={
                        "service": r.service,
                        "rollout": r.id,
                        "held": held,
                        "rollback": rollback,
                    },
                )
                self._change(appender, r, COMPLETED, r.actor, {"held": held}, phase=Phase.COMPLETED)
        if blocked is not None:
            reasons = "; ".join(f"{c.control}: {c.detail}" for c in blocked.blockers)
            return self._abort(ctx, r, f"the gate no longer allows it: {reasons}", self.now())
        final = r.plan.steps[-1]
        try:
            # All traffic is on the canary; tenants held on stable must keep that version, so
            # it is started in the held slot and they move there before the canary is promoted.
            pins = dict(final.tenants)
            keep = [t for t, s in pins.items() if s == STABLE]
            if keep and r.stable_digest is not None:
                self._hold(ctx, r, Digest(r.stable_digest))
                pins.update(dict.fromkeys(keep, HELD))
            if keep or (ctx.leases and final.bake > 0):  # lasting, without a lease
                ctx.deployer.route(r.service, Routes(final.weights, pins), lease=None)
            ctx.deployer.promote(r.service, CANARY)
        except DeployError as exc:
            self._emit("error", r, {"message": exc.message})
        done = self._load(r.id)
        self._emit("completed", done, {"held": held})
        unused = (BASELINE,) if held else (BASELINE, HELD)
        self._scale_down(ctx, done, unused)
        return done

    def _hold(self, ctx: _Context, r: Rollout, digest: Digest) -> None:
        """Run ``digest`` in the held slot (unless it already does)."""
        kept = ctx.deployer.slots(r.service).get(HELD)
        if kept is not None and kept.digest == digest and kept.healthy:
            return
        reg = find_artifact(self.instance, digest).data
        version = version_of(reg, digest)
        self._emit("deploying", r, {"slot": HELD, "version": version})
        ctx.deployer.deploy(ctx.spec, self._slot(r, HELD, digest, reg["name"], version))

    def _scale_down(self, ctx: _Context, r: Rollout, slots: tuple[str, ...]) -> None:
        running = ctx.deployer.slots(r.service)
        stopped = []
        for slot in slots:
            if slot in running:
                try:
                    ctx.deployer.scale_down(r.service, slot)
                    stopped.append(slot)
                except DeployError as exc:
                    self._emit("error", r, {"message": exc.message})
        if stopped:
            self.instance.ledger.append(
                SCALED_DOWN, r.digest, self.actor, {"rollout": r.id, "slots": stopped}
            )

    def _rollback(self, r: Rollout) -> bool:
        started = rollouts_started(self.instance, r)
        return bool(started and started[0].data.get("rollback"))

    # -- plumbing --------------------------------------------------------------------------------

    @property
    def actor(self) -> str:
        return f"controller:{self.owner}"

    def _context(self, r: Rollout) -> _Context:
        _, policy = release_facts(self.instance, Digest(r.digest), None)
        assert policy is not None
        deployer = self.deployer or delivery.deployer_for(self.instance, policy, r.env)
        analysis = policy.model.analysis.get(r.plan.analysis) if r.plan.analysis else None
        source = delivery.source_for(analysis, deployer) if analysis is not None else None
        from clearance.deploy.command import CommandDeployer

        return _Context(
            policy=policy,
            deployer=deployer,
            spec=delivery.service_spec(policy, r.env, r.service),
            analysis=analysis,
            judge=policy.judges.get(r.plan.analysis) if r.plan.analysis else None,
            source=source,
            leases=not isinstance(deployer, CommandDeployer),
        )

    def _load(self, rollout_id: str) -> Rollout:
        found = store.load(self.instance.db, rollout_id)
        if found is None:
            raise NotFoundError(f"no rollout {rollout_id}")
        return found

    def _transition(
        self, r: Rollout, kind: str | None, actor: str, data: dict[str, Any], **values: Any
    ) -> Rollout:
        with self.instance.ledger.appending() as appender:
            self._change(appender, r, kind, actor, data, **values)
        if kind is not None:
            self._emit(kind, r, data)
        return self._load(r.id)

    def _change(
        self,
        appender: Appender,
        r: Rollout,
        kind: str | None,
        actor: str,
        data: dict[str, Any],
        **values: Any,
    ) -> Entry | None:
        store.change(self.instance.db, appender.raw, r.id, updated_at=appender.at, **values)
        if kind is None:
            return None
        return appender.add(kind, r.digest, actor, {"rollout": r.id, "env": r.env, **data})

    def _emit(self, what: str, r: Rollout, data: dict[str, Any]) -> None:
        if self.listener is not None:
            self.listener(what, r, data)


def _resting(r: Rollout) -> Routes:
    """All traffic to stable, but held tenants stay on the held (previous) version."""
    return Routes({STABLE: 100}, r.plan.resting)


def _collect(
    source: MetricSource, target: Target, window: Window, names: tuple[str, ...]
) -> Collected:
    try:
        return source.collect(target, window, names)
    except Error as exc:
        return Collected((), dict.fromkeys(names, exc.message))
    except Exception as exc:  # a source must never crash the controller mid-rollout
        return Collected((), dict.fromkeys(names, f"{type(exc).__name__}: {exc}"))


def _series(collected: Collected) -> dict[str, Series]:
    series = series_from_samples(collected.samples)
    for name, error in collected.errors.items():
        series[name] = Series(error=error)
    return series


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


def now_text(instance: Instance) -> str:
    return rfc3339(instance.clock.now())
