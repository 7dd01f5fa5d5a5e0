"""Rollback and rollback drills: the designed way back, exercised and timed before it is needed.

``rollback`` aborts an active rollout (traffic to stable at once), or, with nothing rolling out,
rolls the service back to the version that served before (or ``to``), through the rollout
controller: ``fast`` switches all traffic in one step without analysis (an incident), otherwise
the old version goes through the tier's steps like any release. The time to 100% on the old
version is measured and recorded.

``drill`` exercises that path in an environment: it starts the previous version (or, without
one, a fresh copy of the current one) in the canary slot, switches all traffic to it, switches
back, times both, and records the result as ``rollback-drill`` evidence on the current release,
which a high-tier policy can require before prod.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from clearance.core.digests import Digest
from clearance.core.rollout import CANARY, HELD, STABLE
from clearance.deploy import Deployer, DeployError, Routes, ServiceSpec, SlotSpec
from clearance.errors import NotFoundError
from clearance.store import rollouts as store
from clearance.store.ledger import Entry
from clearance.store.rollouts import Rollout
from clearance.usecases import delivery, rollouts
from clearance.usecases.artifacts import find_artifact
from clearance.usecases.controller import Controller
from clearance.usecases.evidence import attest
from clearance.usecases.instance import Instance
from clearance.usecases.releases import PROMOTED, release_facts

DRILL = "rollback-drill"


@dataclass(frozen=True)
class Rolledback:
    rollout: Rollout
    seconds: float
    aborted: bool  # an active rollout was aborted (else an earlier version was rolled out)


def served(instance: Instance, env: str, service: str) -> list[str]:
    """Digests promoted to ``env`` for ``service``, oldest first."""
    return [
        str(e.subject)
        for e in instance.ledger.find(kinds=[PROMOTED])
        if e.data.get("env") == env and e.data.get("service") == service
    ]


def previous(instance: Instance, env: str, service: str, current: str | None) -> str | None:
    for digest in reversed(served(instance, env, service)):
        if digest != current:
            return digest
    return None


def rollback(
    instance: Instance,
    *,
    env: str,
    actor: str,
    service: str,
    to: Digest | None = None,
    fast: bool = False,
    controller: Controller | None = None,
) -> Rolledback:
    controller = controller or Controller(instance)
    began = time.monotonic()
    live = store.find(instance.db, env=env, service=service, active=True)
    if live and to is None:
        r = rollouts.request(instance, live[0], "abort", actor=actor, reason="rollback")
        if rollouts.driven(r, time.time()):
            while (latest := store.load(instance.db, r.id)) and latest.phase.active:
                time.sleep(0.05)
            final = latest or r
        else:
            final = controller.drive(r.id)
        return Rolledback(final, time.monotonic() - began, aborted=True)
    serving = served(instance, env, service)
    current = serving[-1] if serving else None
    target = to or previous(instance, env, service, current)
    if target is None:
        raise NotFoundError(
            f"nothing to roll {service} in {env} back to: no earlier version served there"
        )
    r = rollouts.start(
        instance,
        Digest(target),
        env=env,
        actor=actor,
        service=service,
        deployer=controller.deployer,
        rollback=True,
        fast=fast,
    )
    final = controller.drive(r.id)
    return Rolledback(final, time.monotonic() - began, aborted=False)


def drill(
    instance: Instance,
    *,
    env: str,
    actor: str,
    service: str,
    deployer: Deployer | None = None,
) -> Entry:
    """Exercise and time the rollback path; the result is ``rollback-drill`` evidence."""
    serving = served(instance, env, service)
    if not serving:
        raise NotFoundError(f"{service} serves nothing in {env} yet: nothing to drill")
    current = serving[-1]
    _, policy = release_facts(instance, Digest(current), None)
    assert policy is not None
    spec = delivery.service_spec(policy, env, service)
    own = deployer is None
    deployer = deployer or delivery.deployer_for(instance, policy, env)
    if STABLE not in deployer.slots(service):
        raise NotFoundError(f"{service} has no stable version running in {env}: nothing to drill")
    back_to = previous(instance, env, service, current)
    path = "previous digest" if back_to else "traffic switch to a fresh copy"
    target = back_to or current
    reg = find_artifact(instance, Digest(target)).data
    report: dict[str, Any] = {
        "env": env,
        "service": service,
        "from": current,
        "to": target,
        "path": path,
    }
    try:
        _exercise(instance, deployer, spec, env, service, target, reg, report)
    finally:
        if own:
            delivery.close(deployer)
    with tempfile.TemporaryDirectory() as tmp:
        file = Path(tmp) / f"{DRILL}-{env}.json"
        file.write_text(json.dumps(report, indent=1, sort_keys=True))
        return attest(instance, Digest(current), DRILL, file, actor=actor)


def _exercise(
    instance: Instance,
    deployer: Deployer,
    spec: ServiceSpec,
    env: str,
    service: str,
    target: str,
    reg: Mapping[str, Any],
    report: dict[str, Any],
) -> None:
    """Start ``target`` in the canary slot, switch all traffic to it and back, timing both.
    Tenants held on a previous version stay where they are throughout."""
    before = deployer.routes(service) or Routes.only(STABLE)
    held = {t: s for t, s in before.tenants.items() if s == HELD}
    try:
        artifact = delivery.artifact_file(instance, env, Digest(target), reg["name"])
        version = rollouts.version_of(reg, target)
        deployer.deploy(spec, SlotSpec(CANARY, target, version, str(artifact)))
        t0 = time.monotonic()
        deployer.route(service, Routes({CANARY: 100}, held), lease=10.0)
        switched = time.monotonic() - t0
        t1 = time.monotonic()
        deployer.route(service, before, lease=None)
        restored = time.monotonic() - t1
        deployer.scale_down(service, CANARY)
        report.update(
            passed=True, switch_seconds=round(switched, 6), restore_seconds=round(restored, 6)
        )
    except DeployError as exc:
        report.update(passed=False, error=exc.message)
        try:
            deployer.route(service, before, lease=None)
        except DeployError as again:
            report["restore_error"] = again.message
