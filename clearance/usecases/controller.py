"""The rollout controller: drives one rollout step by step until it completes, aborts or pauses.

Deploy the canary (and a fresh baseline beside it), shift traffic step by step, let each step
bake, judge the canary against the baseline on the policy's metrics, and advance, pause for a
person (marginal) or abort (fail: all traffic back to stable at once, the time to 100% stable
measured, an incident-grade ledger entry, the aborted version scaled down after a delay). The last
step records the promotion, after the gate is checked again. See docs/decisions/0007 for how its
state survives a crash and why two controllers never drive one rollout.
"""

from __future__ import annotations

import os
import secrets
import socket
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from clearance.core.digests import Digest
from clearance.core.gates import Decision, decide
from clearance.core.judge import Kind, Series, Verdict, judge, series_from_samples
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
    Step,
    after_verdict,
)
from clearance.deploy import Deployer, DeployError, Routes, ServiceSpec, SlotSpec
from clearance.errors import ConflictError, Error, NotFoundError
from clearance.judge.samples import format_samples
from clearance.metrics import Collected, MetricSource, Target, Window
from clearance.store import rollouts as store
from clearance.store.ledger import Appender, Entry
from clearance.store.rollouts import Rollout
from clearance.usecases import delivery
from clearance.usecases.artifacts import find_artifact
from clearance.usecases.instance import Instance
from clearance.usecases.releases import (
    record_promotion,
    release_facts,
)
from clearance.usecases.rollouts import (
    ABORTED,
    COMPLETED,
    PAUSED,
    RESUMED,
    SCALED_DOWN,
    STEP,
    TAKEN_OVER,
    VERDICT,
    driven,
    rollouts_started,
    version_of,
)


@dataclass
class _Context:
    policy: Policy
    deployer: Deployer
    spec: ServiceSpec
    analysis: Analysis | None
    judge: JudgeConfig | None
    source: MetricSource | None


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

    # -- the service -----------------------------------------------------------------------------

    def run(
        self,
        *,
        env: str | None = None,
        follow: bool = False,
        poll: float = 2.0,
        stop: Callable[[], bool] = lambda: False,
    ) -> list[Rollout]:
        """Drive every running rollout nobody drives (a controller died, or it was started with
        ``--detach``), each in its own thread; paused ones wait for a person. Returns when none
        is left, or with ``follow`` keeps watching until ``stop()`` says so."""
        finished: list[Rollout] = []
        driving: dict[str, Future[Rollout]] = {}
        with ThreadPoolExecutor(max_workers=8, thread_name_prefix="rollout") as pool:
            while True:
                for rollout_id, future in list(driving.items()):
                    if future.done():
                        del driving[rollout_id]
                        try:
                            finished.append(future.result())
                        except Error as exc:
                            self._emit("error", self._load(rollout_id), {"message": exc.message})
                orphans = [
                    r
                    for r in store.find(self.instance.db, env=env, active=True)
                    if r.phase is Phase.RUNNING
                    and r.id not in driving
                    and not driven(r, self.now())
                ]
                for r in orphans:
                    driving[r.id] = pool.submit(self.drive, r.id)
                if stop() or (not follow and not driving):
                    break
                self.sleep(poll)
        return finished

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
            if ctx.deployer.leases:
                self._route(ctx, r, step)  # renews the split's lease
        except DeployError as exc:
            return self._abort(ctx, r, f"the deployer failed: {exc.message}", self.now())
        elapsed = self.now() - r.step_started
        if elapsed < step.bake:
            self._emit("baking", r, {"elapsed": elapsed, "bake": step.bake, "step": r.step})
            return r
        verdict = None
        if step.analyse:
            sampled = self._sample(ctx, r, step, r.step_started, self.now())
            assert ctx.analysis is not None
            limit = ctx.analysis.max_bake or 4 * step.bake
            if sampled.short and elapsed < limit:  # too few requests yet: bake on
                self._emit(
                    "baking",
                    r,
                    {"elapsed": elapsed, "bake": limit, "step": r.step, "short": sampled.short},
                )
                return r
            verdict = self._judge(ctx, r, step, sampled)
        decided_at = self.now()  # the verdict is known (and recorded): the rollback clock starts
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
                reason="marginal verdict ("
                + "; ".join(verdict.reasons if verdict else ())
                + "): resume or abort",
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
        lasting = step.final and step.bake == 0  # nothing left to watch after it
        lease = self.route_lease if ctx.deployer.leases and not lasting else None
        ctx.deployer.route(r.service, Routes(step.weights, step.tenants), lease=lease)

    def _sample(self, ctx: _Context, r: Rollout, step: Step, start: float, end: float) -> _Sampled:
        """Both groups' samples over the step so far, and the rate metrics still short of
        ``min_requests`` in either group."""
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
        need = ctx.analysis.min_requests
        short = tuple(
            s.name
            for s in ctx.judge.specs
            if s.kind is Kind.RATE
            and need
            and min(_requests(canary, s.name), _requests(baseline, s.name)) < need
        )
        return _Sampled(canary, baseline, base_slot, start, end, short)

    def _judge(self, ctx: _Context, r: Rollout, step: Step, sampled: _Sampled) -> Verdict:
        assert ctx.judge is not None
        canary, baseline = sampled.canary, sampled.baseline
        base_slot, start, end = sampled.base_slot, sampled.start, sampled.end
        canary_series, baseline_series = _series(canary), _series(baseline)
        for name in sampled.short:  # too few requests to see a change: no data, not a pass
            canary_series[name] = baseline_series[name] = Series()
        verdict = judge(
            ctx.judge.specs,
            ctx.judge.thresholds,
            baseline_series,
            canary_series,
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
                "short_of_requests": list(sampled.short),
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
            if keep or (ctx.deployer.leases and final.bake > 0):  # lasting, without a lease
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
        return _Context(
            policy=policy,
            deployer=deployer,
            spec=delivery.service_spec(policy, r.env, r.service),
            analysis=analysis,
            judge=policy.judges.get(r.plan.analysis) if r.plan.analysis else None,
            source=source,
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


@dataclass(frozen=True)
class _Sampled:
    canary: Collected
    baseline: Collected
    base_slot: str
    start: float
    end: float
    short: tuple[str, ...]


def _requests(collected: Collected, metric: str) -> int:
    return sum(s.denominator or 0 for s in collected.samples if s.metric == metric)


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
