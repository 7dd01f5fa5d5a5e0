"""A governed clinic service for rollout tests: a real git repository whose policy declares how
the demo clinic runs, releases built from it (good or faulty), and real traffic through the
router."""

from __future__ import annotations

import socket
import sys
from pathlib import Path

from clearance.core.digests import Digest
from clearance.demo.builds import build_clinic
from clearance.usecases.artifacts import BuildInfo, register_artifact
from clearance.usecases.instance import Instance
from clearance.vcs.git import GitRepo
from tests.conftest import git

TENANTS = ("internal-qa", "st-mary-clinic", "old-valley")

POLICY = """\
version: 1
environments: [staging, prod]
services:
  clinic:
    paths: ["services/clinic/**"]
    run: "{python} {{artifact}} --port {{port}}"
    health: /healthz
    ready_timeout: 15s
    requires: {{interfaces: {{hl7: ">=2.5"}}}}
tenants:
  internal-qa:    {{interfaces: {{hl7: "2.6"}}}}
  st-mary-clinic: {{interfaces: {{hl7: "2.5"}}}}
  old-valley:     {{interfaces: {{hl7: "{old_valley_hl7}"}}}}
analysis:
  clinical:
    interval: 1s
    thresholds: {{pass: 95, marginal: 75}}
    metrics:
      order_errors: {{kind: rate, direction: increase, critical: true}}
    on_marginal: {on_marginal}
    min_requests: {min_requests}
    max_bake: {max_bake}
{queries}
deploy:
  staging:
    deployer: local
    router: {router}
    ports: {{clinic: {port}}}
    env: {{clinic: {{CLINIC_TIMEOUT_RATE: "0.002"}}}}
tiers:
  standard:
    when: 'true'
    rollout:
      strategy: canary
      canary: [{{weight: 50, bake: {bake}}}, {{weight: 100}}]
      rings: [{{name: pilot, tenants: [internal-qa], bake: {bake}}}, {{name: all}}]
      blue_green: {{bake: {bake}}}
      analysis: clinical
      scale_down_delay: 0.5s
"""


BUILTIN = """\
    queries:
      order_errors: {route: "POST /orders", measure: errors}"""

#: A Prometheus nobody runs: every query fails.
UNREACHABLE_PROMETHEUS = """\
    source: prometheus
    url: http://127.0.0.1:9
    queries:
      order_errors:
        numerator: 'sum(increase(orders_failed_total{version="$version"}[$interval]))'
        denominator: 'sum(increase(orders_total{version="$version"}[$interval]))'"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ClinicRepo:
    def __init__(
        self,
        root: Path,
        *,
        bake: str = "4s",
        router: str = "builtin",
        on_marginal: str = "pause",
        old_valley_hl7: str = "2.3",
        queries: str = BUILTIN,
        min_requests: int = 0,
        max_bake: str = "60s",
    ) -> None:
        self.root = root
        self.port = free_port()
        self.dist = root.parent / "dist"
        self.dist.mkdir(parents=True, exist_ok=True)
        root.mkdir(parents=True)
        git(root, "init", "-q", "-b", "main")
        (root / "clearance.yaml").write_text(
            POLICY.format(
                python=sys.executable,
                port=self.port,
                bake=bake,
                router=router,
                on_marginal=on_marginal,
                old_valley_hl7=old_valley_hl7,
                queries=queries,
                min_requests=min_requests,
                max_bake=max_bake,
            )
        )
        (root / "README.md").write_text("clinic\n")
        git(root, "add", ".")
        git(root, "commit", "-q", "-m", "policy")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def release(self, instance: Instance, version: str, *, faulty: bool = False) -> Digest:
        """Commit the clinic at ``version`` and register its build, classified."""
        built = build_clinic(version, faulty=faulty, dest_dir=self.dist)
        target = self.root / "services" / "clinic" / "clinic.py"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(built.read_bytes())
        git(self.root, "add", ".")
        git(self.root, "commit", "-q", "-m", f"clinic {version}")
        head = git(self.root, "rev-parse", "HEAD")
        reg = register_artifact(
            instance,
            build=BuildInfo(commit=head, build_number=version, builder="ci"),
            actor="ci",
            path=built,
            repo=GitRepo(self.root),
            base="HEAD~1",
        )
        return reg.digest
