"""The demo's story: three changes to a sample clinical repository, governed from commit to prod,
then a clinical service delivered progressively.

In order: create an instance and the sample repository (with its ``clearance.yaml``); govern a
UI copy fix (low tier), an infrastructure change (medium, first blocked by SAST) and a
medication-rule change touching PHI (high) through dev, staging and prod (:mod:`.changes`); show
where each digest runs and whether each release is complete; roll out a running clinic service
(:mod:`.delivery`): a faulty version aborted in its canary, a rollback drill, the fixed version
ring by ring with a tenant held; export a witness checkpoint and verify the ledger, rollout
entries included, against it; show verification naming a record edited behind Clearance's back;
end with where the state lives and the commands to explore it.

Every step calls the library functions the CLI calls and prints the command a user would type.
Real tools produce the evidence: pytest (JUnit), bandit (SARIF), cyclonedx-py (CycloneDX); real
processes serve the clinic, behind the local deployer's router, under synthetic traffic.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass, replace
from pathlib import Path

from rich.console import Console
from rich.table import Table

from clearance.core.digests import Digest
from clearance.demo import sample
from clearance.demo.changes import Shipped, copy_fix, infrastructure, medication
from clearance.demo.delivery import Delivered, progressive_delivery
from clearance.demo.narrate import Story, commands, completeness_table, short
from clearance.demo.pipeline import Pipeline
from clearance.demo.reports import check_tools
from clearance.files import read_text
from clearance.settings import Settings
from clearance.usecases.classification import load_policy_file
from clearance.usecases.instance import Instance, init, open_instance
from clearance.usecases.ledger import export_checkpoint, verify_ledger
from clearance.usecases.releases import gate, release_show, status

ORIGIN = "clearance.demo/ledger"


@dataclass(frozen=True)
class DemoResult:
    home: Path
    repo: Path
    #: The high-tier release (the medication-rule change).
    digest: Digest
    #: The digest each change released to prod, by tier.
    releases: dict[str, Digest]
    #: The infrastructure build the SAST gate kept out of staging.
    blocked: Digest
    #: The progressive-delivery chapter: the clinic's builds, rollouts and drill.
    delivery: Delivered
    witness: Path
    ledger_size: int
    seconds: float


def run_demo(workdir: Path, console: Console) -> DemoResult:
    started = time.monotonic()
    check_tools()
    story = Story(console)
    home = workdir / "home"
    repo_dir = workdir / "clinic-repo"
    settings = Settings.from_env({}, home=home)
    console.rule(
        "[bold]Clearance demo: three changes to a clinical repository, commit to prod; "
        "a clinic service rolled out progressively"
    )

    story.section("Setup")
    story.step(
        "Work in the demo directory, with its own Clearance home",
        f"cd {workdir}",
        f"export CLEARANCE_HOME={home}",
    )
    story.step(
        "Create the instance: database, blob store and Ed25519 signing key",
        f"clearance init --origin {ORIGIN}",
    )
    instance = init(settings, actor="admin@example.org", origin=ORIGIN)
    try:
        story.say(f"ledger origin [bold]{instance.origin}[/], key {instance.signer.keyid[:23]}…")
        base = _sample(story, repo_dir)
        pipeline = Pipeline(story, instance, workdir, repo_dir)
        low = copy_fix(pipeline, base)
        medium = infrastructure(pipeline, low.head)
        high = medication(pipeline, medium.head)
        shipped = [low, medium, high]
        _where_things_run(story, pipeline, shipped)
        delivered = progressive_delivery(story, instance, workdir)
        witness = workdir / "witness-checkpoint.txt"
        _checkpoint_and_verify(story, instance, witness)
        _tamper(story, instance, settings, workdir)
        size = instance.ledger.size()
    finally:
        instance.close()

    seconds = time.monotonic() - started
    story.section(f"Done in {seconds:.1f} s")
    console.print(
        f"State lives in [bold]{home}[/]: the SQLite ledger (clearance.db), content-addressed "
        "evidence blobs (blobs/), the signing key (keys/) and the local deployer's state "
        "(deploy/prod/; its agent is stopped).",
        highlight=False,
    )
    console.print(
        f"The sample repositories are {repo_dir} and {delivered.repo}; reports are in "
        f"{workdir / 'reports'}, environment configurations in {workdir / 'config'}.",
        highlight=False,
    )
    commands(
        story,
        "Explore it:",
        [
            f"clearance --home {home} status",
            f"clearance --home {home} gate {medium.blocked} --env staging",
            f"clearance --home {home} release show {high.digest}",
            f"clearance --home {home} evidence list {high.digest}",
            f"clearance --home {home} attestations {high.digest}",
            f"clearance --home {home} rollout status --env prod",
            f"clearance --home {home} evidence list {delivered.releases['1.4.2']}",
            f"clearance --home {home} ledger verify --against {witness}",
            f"clearance classify --repo {repo_dir} --base {medium.head[:12]} "
            f"--head {high.head[:12]}",
        ],
    )
    assert medium.blocked is not None
    return DemoResult(
        home=home,
        repo=repo_dir,
        digest=high.digest,
        releases={s.tier: s.digest for s in shipped},
        blocked=medium.blocked,
        delivery=delivered,
        witness=witness,
        ledger_size=size,
        seconds=seconds,
    )


def _sample(story: Story, repo: Path) -> str:
    story.step(
        "A sample clinical repository: orders service (rules, patient model, migrations, tests) "
        "and patient portal (help copy, locales), with its policy in clearance.yaml",
        f"clearance policy check {repo.name}/clearance.yaml",
    )
    base = sample.create_repository(repo)
    policy, _ = load_policy_file(repo / "clearance.yaml")
    story.say(
        f"OK: tiers {', '.join(t.name for t in policy.tiers)}; signals "
        f"{', '.join(s.name for s in policy.signals)}; environments "
        f"{' -> '.join(policy.environments)}"
    )
    for warning in policy.warnings:
        story.say(f"[yellow]warning:[/] {warning.render(policy.name)}")
    if policy.warnings:
        story.why(
            "policy check warns that each required role has a single holder: a change alice or "
            "carol wrote could never be approved. The reference policy keeps it that way; every "
            "change here is dana's."
        )
    story.say(f"{repo.name} at commit {base[:12]}, every commit by {sample.AUTHOR}")
    return base


def _where_things_run(story: Story, p: Pipeline, shipped: list[Shipped]) -> None:
    story.section("Where things run, and which releases are done")
    story.step("Which digest runs where", "clearance status")
    table = Table("env", "digest", "name", "tier", "since", "by")
    for row in status(p.instance):
        table.add_row(
            row["env"],
            short(row["digest"]),
            row["name"] or "",
            row["tier"] or "",
            row["since"],
            row["by"],
        )
    story.table(table)
    story.why(
        "status lists what runs in each environment, per service: the portal and the orders "
        "service each have their own digest in prod."
    )

    story.step(
        "Each change's release record",
        *(f"clearance release show {p.var(s.digest)}" for s in shipped),
    )
    table = Table("release", "tier", "digest", "deployment target", "record")
    for s in shipped:
        record = release_show(p.instance, s.digest)
        target = next(detail for name, _, detail in record.items if name == "deployment target")
        done = "[green]COMPLETE[/]" if record.complete else "[red]INCOMPLETE[/]"
        table.add_row(p.var(s.digest), s.tier, short(s.digest), target, done)
    story.table(table)

    blocked = next(s.blocked for s in shipped if s.blocked is not None)
    decision = gate(p.instance, blocked, "staging")
    story.step(
        "The build the SAST gate stopped never left dev",
        f"clearance gate {p.var(blocked)} --env staging",
    )
    for control in decision.blockers:
        story.bad(f"{control.control}: {control.detail}")

    high = shipped[-1]
    story.step("The high-tier release in full", f"clearance release show {p.var(high.digest)}")
    completeness_table(story, release_show(p.instance, high.digest))


def _checkpoint_and_verify(story: Story, instance: Instance, witness: Path) -> None:
    story.section("The ledger: witnessed and verified")
    story.step(
        "Hand the latest signed checkpoint to a witness (outside Clearance's control)",
        f"clearance ledger checkpoint --export {witness.name}",
    )
    cp = export_checkpoint(instance, witness)
    story.say(f"checkpoint: size {cp.size}, root {cp.root_hex[:16]}… (signed note form)")
    story.step(
        "Verify the ledger: every leaf, root, signature, blob and envelope, and that it extends "
        "the witnessed checkpoint",
        f"clearance ledger verify --against {witness.name}",
    )
    result = verify_ledger(instance, against=read_text(witness))
    colour = "green" if result.ok else "red"
    story.say(f"[{colour}]{'OK' if result.ok else 'FAILED'} {result.size} {result.root.hex()}[/]")
    for problem in result.problems[:5]:
        story.bad(str(problem))


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
