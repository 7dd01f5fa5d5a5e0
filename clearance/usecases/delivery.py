"""Wiring for progressive delivery: the deployer and metric source an environment declares, the
service's run declaration, and the artifact bytes a local deployer starts.

The policy consulted is the one the artifact was classified against (frozen at registration), so
what a rollout does is exactly what was reviewed with the change.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from clearance.core.digests import Digest, hex_of
from clearance.core.policy import Policy
from clearance.core.rollout import Analysis, DeployTarget
from clearance.deploy import Deployer, ServiceSpec
from clearance.errors import InputError
from clearance.metrics import MetricSource
from clearance.usecases.instance import Instance


def target(policy: Policy, env: str) -> DeployTarget:
    """The environment's deploy target; an environment without one uses the local deployer."""
    return policy.model.deploy.get(env, DeployTarget())


def deploy_dir(instance: Instance, env: str) -> Path:
    path = instance.settings.home / "deploy" / env
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


def deployer_for(instance: Instance, policy: Policy, env: str) -> Deployer:
    t = target(policy, env)
    if t.deployer == "command":
        from clearance.deploy.command import CommandDeployer

        assert t.commands is not None  # the policy checker requires them
        return CommandDeployer(t.commands, deploy_dir(instance, env), t.timeout)
    from clearance.deploy.local.client import LocalDeployer

    return LocalDeployer(deploy_dir(instance, env), router=t.router, ports=t.ports)


def close(deployer: Deployer) -> None:
    """Release what a deployer holds open (an HTTP client), if anything."""
    closer = getattr(deployer, "close", None)
    if callable(closer):
        closer()


@contextmanager
def opened(deployer: Deployer) -> Iterator[Deployer]:
    try:
        yield deployer
    finally:
        close(deployer)


def service_spec(policy: Policy, env: str, service: str) -> ServiceSpec:
    declared = policy.model.services.get(service)
    if declared is None:
        raise InputError(
            f"unknown service {service!r}",
            hint=f"the policy's services are {', '.join(policy.model.services) or 'none'}",
        )
    if not declared.run:
        raise InputError(
            f"service {service!r} declares no run template, so it cannot be deployed",
            hint='add services.<name>.run, e.g. run: "python -m app --port {port}"',
        )
    return ServiceSpec(
        service,
        declared.run,
        declared.health,
        declared.ready_timeout,
        dict(target(policy, env).env.get(service, {})),
    )


def source_for(analysis: Analysis, deployer: Deployer) -> MetricSource:
    """The metric source an analysis declares, with its queries."""
    if analysis.source == "prometheus":
        from clearance.core.queries import PromQuery
        from clearance.metrics.prometheus import PrometheusSource

        assert analysis.url is not None  # the policy checker requires it
        return PrometheusSource(
            analysis.url, {n: PromQuery.model_validate(q) for n, q in analysis.queries.items()}
        )
    from clearance.core.queries import BuiltinQuery
    from clearance.metrics.builtin import BuiltinSource

    records: Any = getattr(deployer, "records", None)
    if records is None:
        raise InputError(
            "the builtin metric source reads the local router's records; this environment's "
            "deployer has none",
            hint="use source: prometheus for a command deployer",
        )
    return BuiltinSource(
        records, {n: BuiltinQuery.model_validate(q) for n, q in analysis.queries.items()}
    )


def artifact_file(instance: Instance, env: str, digest: Digest, name: str) -> Path:
    """The artifact's bytes as a file a deployer can start (copied once from the blob store)."""
    folder = deploy_dir(instance, env) / "artifacts" / hex_of(digest)[:16]
    path = folder / Path(name).name
    if not path.exists():
        folder.mkdir(parents=True, exist_ok=True)
        try:
            source = instance.blobs.open(digest)
        except InputError as exc:
            raise InputError(
                f"the bytes of {digest} are not in the blob store, so they cannot be deployed",
                hint="register the artifact from its file, not only by --digest",
            ) from exc
        tmp = path.with_name(path.name + ".tmp")
        with source, tmp.open("wb") as target:  # streamed: an artifact may be large
            shutil.copyfileobj(source, target)
        tmp.replace(path)
    return path
