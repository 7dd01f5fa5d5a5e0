"""The demo's CI/CD steps, each one library call narrated with the command a user would type.

:class:`Pipeline` commits to the sample, classifies, builds and registers, attests evidence,
approves, asks the gate and promotes, always through :mod:`clearance.usecases` (the functions the
CLI calls), and tells the story of each answer. Digests appear in commands as shell variables
(``$COPY``...), set when the artifact is registered.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from clearance.core.approvals import Meaning
from clearance.core.classify import Classification
from clearance.core.digests import Digest
from clearance.core.gates import Decision
from clearance.demo import sample
from clearance.demo.narrate import (
    Story,
    classification_table,
    decision_line,
    decision_table,
    evidence_line,
)
from clearance.demo.reports import Reports
from clearance.errors import InputError, RefusedError
from clearance.files import read_text
from clearance.store.ledger import Entry
from clearance.usecases.artifacts import BuildInfo, register_artifact
from clearance.usecases.classification import classify_change
from clearance.usecases.evidence import attest
from clearance.usecases.instance import Instance
from clearance.usecases.releases import GateBlocked, approve, gate, promote
from clearance.vcs.git import GitRepo

CI = "ci@example.org"
DEPLOYER = "deploy-bot@example.org"
BUILDER = "demo-ci"


class Pipeline:
    """One instance, one sample repository, and the steps CI and people take on them."""

    def __init__(self, story: Story, instance: Instance, workdir: Path, repo: Path) -> None:
        self.story = story
        self.instance = instance
        self.workdir = workdir
        self.repo = repo
        self.git = GitRepo(repo)
        self.reports = Reports(repo, workdir / "reports")
        self.build_number = 411
        self.names: dict[Digest, str] = {}

    def rel(self, path: Path) -> str:
        return str(path.relative_to(self.workdir))

    def var(self, digest: Digest) -> str:
        return f"${self.names[digest]}"

    # -- change and classification ---------------------------------------------------------

    def commit(self, change: sample.Change) -> str:
        files = " ".join(change.files)
        self.story.step(
            f"{sample.AUTHOR} commits: {change.message}",
            f'git -C {self.rel(self.repo)} commit -m "{change.message}" {files}',
        )
        head = sample.commit_change(self.repo, change)
        self.story.say(f"commit {head[:12]} touches {len(change.files)} file(s): {files}")
        return head

    def classify(self, base: str, head: str) -> Classification:
        self.story.step(
            "Classify the change from its git diff against clearance.yaml",
            f"clearance classify --repo {self.rel(self.repo)} --base {base[:12]} "
            f"--head {head[:12]}",
        )
        result = classify_change(self.git, base, head).classification
        classification_table(self.story, result)
        return result

    def register(
        self, service: str, var: str, base: str, head: str, *, retry: bool = False
    ) -> Digest:
        self.build_number += 1
        artifact = sample.build(
            self.repo, service, self.workdir / "dist" / f"{service}-{head[:7]}.zip"
        )
        paths = ", ".join(sample.BUILD_PATHS[service])
        self.story.step(
            f"Build once: package {service} ({paths}) and register it by digest",
            f"clearance artifact register {self.rel(artifact)} --name {service} "
            f"--repo {self.rel(self.repo)} --commit {head[:12]} --base {base[:12]} "
            f"--branch main --build-number {self.build_number} --builder {BUILDER} --actor {CI}",
        )
        build = BuildInfo(head, "main", str(self.build_number), BUILDER)
        registration = register_artifact(
            self.instance,
            build=build,
            actor=CI,
            path=artifact,
            name=service,
            repo=self.git,
            base=base,
        )
        digest = registration.digest
        self.names[digest] = var
        self.story.say(f"{var}={digest}")
        self.story.say(
            f"signed SLSA provenance: commit {head[:12]}, build {self.build_number}; the "
            f"classification and the policy it used are stored with it (entry "
            f"{registration.entry.seq})"
        )
        if retry:
            again = register_artifact(
                self.instance,
                build=build,
                actor=CI,
                path=artifact,
                name=service,
                repo=self.git,
                base=base,
            )
            self.story.say(
                "CI retried the job: registering the same bytes again is a no-op "
                f"(created={again.created})"
            )
        return digest

    # -- evidence ---------------------------------------------------------------------------

    def attest(self, digest: Digest, kind: str, report: Path, actor: str = CI) -> Entry:
        self.story.say(
            f"[dim]$ clearance attest {self.var(digest)} {self.rel(report)} --type {kind} "
            f"--actor {actor}[/]"
        )
        entry = attest(self.instance, digest, kind, report, actor=actor)
        evidence_line(self.story, entry)
        return entry

    def unit_tests(self, digest: Digest, service: str) -> Entry:
        suite = "web/portal/tests" if service == "portal" else "services/orders/tests/unit"
        name = f"{self.names[digest].lower()}-unit-tests"
        return self.attest(digest, "unit-tests", self.reports.pytest(name, suite))

    def integration_tests(self, digest: Digest, run: str = "") -> Entry:
        name = f"{self.names[digest].lower()}-integration-tests{run}"
        report = self.reports.pytest(name, "services/orders/tests/integration")
        return self.attest(digest, "integration-tests", report)

    def sast(self, digest: Digest) -> Entry:
        report = self.reports.bandit(f"{self.names[digest].lower()}-bandit", "services")
        return self.attest(digest, "sast", report)

    def generic(self, digest: Digest, kind: str, data: dict[str, Any], actor: str = CI) -> Entry:
        report = self.reports.generic(f"{self.names[digest].lower()}-{kind}", data)
        return self.attest(digest, kind, report, actor=actor)

    # -- configuration, gate, approvals, promotion ----------------------------------------

    def config(self, service: str, env: str, data: dict[str, Any], suffix: str = "") -> Path:
        path = self.workdir / "config" / f"{service}-{env}{suffix}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(data, indent=2) + "\n")
        return path

    def gate(self, digest: Digest, env: str) -> Decision:
        self.story.say(f"[dim]$ clearance gate {self.var(digest)} --env {env}[/]")
        decision = gate(self.instance, digest, env)
        decision_table(self.story, decision)
        return decision

    def promote(
        self, digest: Digest, env: str, config: Path | None = None, *, table: bool = False
    ) -> bool:
        """Promote through the gate; a refusal is shown, never raised. True if it happened."""
        option = f" --config {self.rel(config)}" if config is not None else ""
        self.story.say(
            f"[dim]$ clearance promote {self.var(digest)} --env {env}{option} --actor {DEPLOYER}[/]"
        )
        try:
            text = read_text(config, what="configuration") if config is not None else None
            result = promote(self.instance, digest, env=env, actor=DEPLOYER, config=text)
        except GateBlocked as blocked:
            decision_table(self.story, blocked.decision)
            return False
        except InputError as refused:
            self.story.bad(f"refused before the gate ran: {refused.diagnostics()}")
            return False
        if table:
            decision_table(self.story, result.decision)
        decision_line(self.story, result.decision, result.entry.seq)
        if config is not None:
            self.story.say(f"configuration recorded by digest {result.entry.data['config']}")
        return True

    def approve(self, digest: Digest, actor: str, reason: str, env: str = "prod") -> bool:
        """Sign an approval; a refusal (separation of duties) is shown, never raised."""
        self.story.say(
            f'[dim]$ clearance approve {self.var(digest)} --env {env} --reason "{reason}" '
            f"--actor {actor}[/]"
        )
        try:
            entry = approve(
                self.instance, digest, env=env, meaning=Meaning.APPROVAL, actor=actor, reason=reason
            )
        except RefusedError as refused:
            self.story.bad(f"refused: {refused.diagnostics()}")
            return False
        roles = ", ".join(entry.data["roles"]) or "no role"
        self.story.good(
            f"{actor} ({roles}) signed approval for {env} over evidence set "
            f"{entry.data['evidence_set'][:19]}… (entry {entry.seq})"
        )
        return True
