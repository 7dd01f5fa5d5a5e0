"""The demo's story: one release of the sample service, evidenced and verified end to end.

Every step calls the same library functions the CLI commands call, and prints the command a
user would type for it. Real tools produce the evidence: pytest (JUnit), bandit (SARIF) and
cyclonedx-py (CycloneDX SBOM).
"""

from __future__ import annotations

import importlib.util
import json
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

from rich.console import Console
from rich.table import Table

from clearance.core.digests import Digest
from clearance.core.evidence import headline
from clearance.demo import sample
from clearance.settings import Settings
from clearance.usecases.artifacts import BuildInfo, register_artifact
from clearance.usecases.evidence import attest, list_evidence
from clearance.usecases.instance import Instance, init, open_instance
from clearance.usecases.ledger import export_checkpoint, verify_ledger
from clearance.vcs.git import GitRepo

CI_ACTOR = "ci@example.org"


@dataclass(frozen=True)
class DemoResult:
    home: Path
    repo: Path
    digest: Digest
    ledger_size: int
    seconds: float


class Story:
    def __init__(self, console: Console) -> None:
        self.console = console
        self.step_no = 0

    def step(self, title: str, command: str | None = None) -> None:
        self.step_no += 1
        self.console.print(f"\n[bold cyan]{self.step_no}. {title}[/]")
        if command:
            self.console.print(f"   [dim]$ {command}[/]", markup=True, highlight=False)

    def say(self, text: str) -> None:
        self.console.print(f"   {text}", highlight=False)


def _tool(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=300, check=False)


def run_demo(workdir: Path, console: Console) -> DemoResult:
    started = time.monotonic()
    story = Story(console)
    home = workdir / "home"
    repo_dir = workdir / "clinic-repo"
    reports = workdir / "reports"
    reports.mkdir(parents=True, exist_ok=True)
    settings = Settings.from_env({}, home=home)
    console.rule("[bold]Clearance demo: one governed release, evidenced and provable")

    story.step(
        "Create the instance: database, blob store and Ed25519 signing key",
        f"clearance --home {home} init",
    )
    instance = init(settings, actor="admin@example.org", origin="clearance.demo/ledger")
    story.say(f"ledger origin [bold]{instance.origin}[/], key {instance.signer.keyid[:23]}…")

    story.step("A sample clinical repository (orders service, patient portal), committed in git")
    commit = sample.create_repository(repo_dir)
    story.say(f"{repo_dir} at commit {commit[:12]}")

    story.step(
        "Build once: package the orders service and register it by digest",
        "clearance artifact register dist/orders.zip --repo clinic-repo --commit HEAD "
        "--branch main --build-number 412 --builder demo-ci --change-request CR-1042",
    )
    artifact = sample.build(repo_dir, workdir / "dist" / "orders.zip")
    registration = register_artifact(
        instance,
        build=BuildInfo(commit, "main", "412", "demo-ci", "CR-1042"),
        actor=CI_ACTOR,
        path=artifact,
        repo=GitRepo(repo_dir),
    )
    digest = registration.digest
    story.say(f"artifact [bold]{digest}[/]")
    story.say(
        "signed SLSA v1 provenance: commit, branch, build 412, builder, requirements.txt hash"
    )
    again = register_artifact(
        instance,
        build=BuildInfo(commit, "main", "412", "demo-ci", "CR-1042"),
        actor=CI_ACTOR,
        path=artifact,
        repo=GitRepo(repo_dir),
    )
    story.say(f"registering the same bytes again is a no-op (created={again.created})")

    _evidence(story, instance, digest, repo_dir, reports)

    story.step("Evidence on record", f"clearance evidence list {digest[:19]}…")
    table = Table("type", "format", "result", "summary", "by")
    for entry in list_evidence(instance, digest):
        brief = headline(entry.data["summary"])
        style = "green" if entry.data["passed"] else "red"
        table.add_row(
            entry.data["type"],
            entry.data["format"],
            f"[{style}]{entry.data['result']}[/]",
            brief,
            entry.actor,
        )
    console.print(table)

    witness = workdir / "witness-checkpoint.txt"
    story.step(
        "Hand the latest signed checkpoint to a witness",
        f"clearance ledger checkpoint --export {witness.name}",
    )
    cp = export_checkpoint(instance, witness)
    story.say(f"checkpoint: size {cp.size}, root {cp.root_hex[:16]}… (signed note form)")

    story.step(
        "Verify the ledger: every leaf, root, signature, blob and envelope",
        f"clearance ledger verify --against {witness.name}",
    )
    result = verify_ledger(instance, against=witness)
    colour = "green" if result.ok else "red"
    story.say(f"[{colour}]{'OK' if result.ok else 'FAILED'} {result.size} {result.root.hex()}[/]")

    _tamper(story, instance, settings, workdir)
    size = instance.ledger.size()
    instance.close()

    seconds = time.monotonic() - started
    console.rule(f"[bold]Done in {seconds:.1f} s")
    console.print(f"State lives in [bold]{home}[/] (SQLite ledger, blobs, keys). Explore it:")
    for cmd in (
        f"clearance --home {home} evidence list {digest}",
        f"clearance --home {home} attestations {digest}",
        f"clearance --home {home} ledger verify --against {witness}",
        f"clearance --home {home} ledger proof inclusion 2",
        f"clearance --home {home} key show",
    ):
        console.print(f"  {cmd}", highlight=False, markup=False)
    return DemoResult(home, repo_dir, digest, size, seconds)


def _evidence(story: Story, instance: Instance, digest: Digest, repo: Path, reports: Path) -> None:
    junit = reports / "unit-tests.xml"
    story.step(
        "Run the service's real tests (pytest) and attest the JUnit report",
        f"clearance attest {digest[:19]}… --type unit-tests {junit.name}",
    )
    _run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            f"--junitxml={junit}",
            "services/orders/tests",
        ],
        repo,
    )
    entry = attest(instance, digest, "unit-tests", junit, actor=CI_ACTOR)
    story.say(
        f"{entry.data['result']}: {entry.data['summary'].get('tests')} tests, "
        "in-toto test-result attestation signed"
    )

    if _tool("bandit"):
        sarif = reports / "bandit.sarif"
        story.step(
            "Scan with bandit (SAST) and attest the SARIF",
            f"clearance attest {digest[:19]}… --type sast {sarif.name}",
        )
        _run(
            [
                sys.executable,
                "-m",
                "bandit",
                "-q",
                "-r",
                "services",
                "-f",
                "sarif",
                "-o",
                str(sarif),
            ],
            repo,
        )
        entry = attest(instance, digest, "sast", sarif, actor=CI_ACTOR)
        story.say(f"{entry.data['result']}: {headline(entry.data['summary'])}")
    else:
        story.say("bandit is not installed (pip install 'clearance[demo]'): no SAST evidence")

    if _tool("cyclonedx_py"):
        bom = reports / "bom.cdx.json"
        story.step(
            "Generate a CycloneDX SBOM and attest it",
            f"clearance attest {digest[:19]}… --type sbom {bom.name}",
        )
        _run(
            [
                sys.executable,
                "-m",
                "cyclonedx_py",
                "requirements",
                "requirements.txt",
                "--of",
                "JSON",
                "--sv",
                "1.6",
                "--output-reproducible",
                "-o",
                str(bom),
            ],
            repo,
        )
        entry = attest(instance, digest, "sbom", bom, actor=CI_ACTOR)
        story.say(f"{entry.data['summary'].get('components')} components recorded")
    else:
        story.say("cyclonedx-bom is not installed (pip install 'clearance[demo]'): no SBOM")

    contract = reports / "contract-tests.json"
    story.step(
        "A contract check of the order API, as generic JSON evidence",
        f"clearance attest {digest[:19]}… --type contract-tests {contract.name}",
    )
    contract.write_text(json.dumps({"passed": True, "suite": "orders-api-v1", "checks": 3}))
    entry = attest(instance, digest, "contract-tests", contract, actor=CI_ACTOR)
    story.say(f"{entry.data['result']}")
    story.say(
        "pip-audit needs its vulnerability service, which this machine cannot reach: "
        "no SCA evidence recorded (attest its JSON with --type sca where it can run)"
    )


def _tamper(story: Story, instance: Instance, settings: Settings, workdir: Path) -> None:
    """Edit a copy of the database behind Clearance's back and show verify naming the entry."""
    story.step("Someone edits a copy of the database directly: verify names the bad entry")
    copy = workdir / "tampered.db"
    source = sqlite3.connect(settings.home / "clearance.db")
    db = sqlite3.connect(copy)
    source.backup(db)
    source.close()
    with db:
        db.execute("DROP TRIGGER ledger_entries_no_update")
        db.execute(
            'UPDATE ledger_entries SET body = replace(body, \'"branch":"main"\', '
            '\'"branch":"hotfix"\') WHERE seq = 1'
        )
    db.close()
    tampered = open_instance(replace(settings, database_url=f"sqlite:///{copy}"))
    result = verify_ledger(tampered)
    tampered.close()
    first = result.problems[0] if result.problems else "nothing found (unexpected)"
    story.say(f"[red]FAILED[/] first bad: {first}")
