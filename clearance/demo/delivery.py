"""The demo's progressive-delivery chapter: a bad version caught in its canary, a fixed one ring
by ring, and the way back rehearsed.

In order: create a second governed repository, ``clinic-service``, whose ``clearance.yaml``
declares how the sample clinic service runs (:mod:`.clinic`), the tenants (hospitals) it serves,
the ``clinical`` analysis the canary judge applies and its tier's rollout; deploy 1.4.2 with the
local deployer (nothing serves yet: one step to 100%); start synthetic clinician traffic
(:mod:`.traffic`); roll out 1.4.3, whose dose refactor fails decimal-dose orders, as a canary
beside a fresh baseline: the judge fails it, the controller aborts it on its own, timed, and no
request reaches it afterwards; rehearse the rollback on what serves (a drill, recorded as
evidence); roll out the fixed 1.4.4 ring by ring, a tenant whose HL7 interface is too old held
on 1.4.2 with the reason; list the rollouts. The traffic and the local deployer's agent (with
every process it runs) are stopped whatever happens.

Every step calls the library functions the CLI calls and prints the command a user would type.
"""

from __future__ import annotations

import shlex
import socket
import string
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from rich.markup import escape
from rich.table import Table

from clearance.core.digests import Digest
from clearance.core.policy import Policy
from clearance.core.rollout import Phase, Strategy, format_seconds
from clearance.demo import sample
from clearance.demo.builds import build_clinic
from clearance.demo.narrate import Story
from clearance.demo.pipeline import BUILDER, CI, DEPLOYER
from clearance.demo.traffic import Traffic
from clearance.deploy import TENANT_HEADER
from clearance.deploy.local.client import LocalDeployer
from clearance.store import rollouts as store
from clearance.store.rollouts import Rollout
from clearance.usecases import rollouts
from clearance.usecases.artifacts import BuildInfo, register_artifact
from clearance.usecases.classification import load_policy_file
from clearance.usecases.controller import Controller
from clearance.usecases.delivery import deployer_for
from clearance.usecases.instance import Instance
from clearance.usecases.rollback import drill
from clearance.vcs.git import GitRepo

TITLE = "Progressive delivery: a bad version caught in its canary, a fixed one ring by ring"
SERVICE = "clinic"
ENV = "prod"
SRE = "sre@example.org"
TENANTS = ("internal-qa", "st-mary-clinic", "mercy-general", "old-valley")
#: Who the synthetic clinicians work for, each hospital listed once per eighth of the traffic:
#: mercy-general is the big one, old-valley the small one.
TRAFFIC_TENANTS = (*TENANTS[:3], *TENANTS[:3], "mercy-general", "old-valley")
RATE = 100  # synthetic clinician requests per second
QUIET = 1.0  # seconds of traffic watched after the abort

#: The seed of the synthetic traffic: its first few thousand requests carry the mix's 7% of
#: decimal-dose orders (some seeds start with fewer, a luckier few with more).
SEED = 7

#: The clinic's policy. Why the canary bakes 18 s at 50%: the judge decides on counts. Each group
#: sees about 315 orders (100 requests/s, 40% of them orders, old-valley's eighth held on stable),
#: so about 22 failed orders on 1.4.3 against none on the baseline: Fisher's p is near 1e-7, far
#: below the verdict's alpha (0.01 over three metrics). At 25% for 6 s (about 50 orders each,
#: 3 or 4 failures) p would be near 0.1 and 1.4.3 would usually pass. The formulary timeouts the
#: clinic simulates are off (CLINIC_TIMEOUT_RATE 0), so a failed order is the bug.
POLICY = string.Template("""\
version: 1
environments: [prod]
services:
  clinic:
    paths: ["services/clinic/**"]
    run: "$run"
    health: /healthz
    ready_timeout: 15s
    requires: {interfaces: {hl7: ">=2.5"}}     # what a tenant needs to take a new version
tenants:                                       # the hospitals it serves, by X-Tenant
  internal-qa:    {interfaces: {hl7: "2.6"}}
  st-mary-clinic: {interfaces: {hl7: "2.5"}}
  mercy-general:  {interfaces: {hl7: "2.5"}}
  old-valley:     {interfaces: {hl7: "2.3"}}   # too old: held on the version it runs
analysis:
  clinical:
    source: builtin                            # the local router's records
    interval: 1s
    metrics:
      order_errors:   {kind: rate, critical: true}
      hl7_ack_errors: {kind: rate, no_data: ignore}
      chart_save_p95: {kind: continuous, allowed_effect: 0.5, no_data: ignore}
    queries:
      order_errors:   {route: "POST /orders", measure: errors}
      hl7_ack_errors: {counter: hl7_ack_failed, route: "POST /hl7"}
      chart_save_p95: {route: "PUT /charts/*", measure: p95}
deploy:
  prod:
    deployer: local
    ports: {clinic: $port}
    env: {clinic: {CLINIC_TIMEOUT_RATE: "0"}}
tiers:
  standard:
    when: 'true'
    rollout:
      strategy: canary
      canary: [{weight: 50, bake: 18s}, {weight: 100}]
      rings:
        - {name: pilot, tenants: [internal-qa], bake: 4s}
        - {name: early, tenants: [st-mary-clinic, old-valley], bake: 4s}
        - {name: all}
      analysis: clinical
      scale_down_delay: 0.5s
""")


@dataclass(frozen=True)
class Delivered:
    """What the chapter left behind, for the closing words and the tests."""

    repo: Path
    url: str
    #: Each clinic build by version: 1.4.2 (first), 1.4.3 (faulty), 1.4.4 (fixed).
    releases: dict[str, Digest]
    #: Rollout ids: "initial" (1.4.2), "canary" (1.4.3, aborted), "rings" (1.4.4).
    rollouts: dict[str, str]
    #: Requests the canary answered in the QUIET seconds after the abort (0: none).
    canary_after_abort: int
    #: The ledger entry of the rollback-drill evidence.
    drill_entry: int
    seconds: float


def progressive_delivery(story: Story, instance: Instance, workdir: Path) -> Delivered:
    started = time.monotonic()
    story.section(TITLE)
    port = _free_port()
    policy, head = _create_repository(story, workdir / "clinic-service", port)
    chapter = _Chapter(story, instance, workdir, policy, head, port)
    deployer = deployer_for(instance, policy, ENV)
    assert isinstance(deployer, LocalDeployer)  # the policy declares deployer: local
    traffic = Traffic(chapter.url, rate=RATE, tenants=TRAFFIC_TENANTS, seed=SEED)
    try:
        initial = chapter.first_deployment(deployer, chapter.release("1.4.2"))
        chapter.start_traffic(traffic)
        bad = chapter.release("1.4.3", faulty=True)
        aborted, quiet = chapter.canary(deployer, traffic, bad)
        entry = chapter.drill(deployer)
        good = chapter.release("1.4.4")
        rings = chapter.rings(deployer, good)
        chapter.status([initial, aborted, rings])
        chapter.traffic_summary(traffic)
    finally:
        traffic.stop()
        deployer.stop()
    story.say("traffic stopped; the local deployer's agent and every clinic process stopped")
    return Delivered(
        repo=workdir / "clinic-service",
        url=chapter.url,
        releases=dict(chapter.digests),
        rollouts={"initial": initial.id, "canary": aborted.id, "rings": rings.id},
        canary_after_abort=quiet,
        drill_entry=entry,
        seconds=time.monotonic() - started,
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _create_repository(story: Story, repo: Path, port: int) -> tuple[Policy, str]:
    """The clinic-service repository with its policy committed; the policy and the commit."""
    story.step(
        "A second governed repository, clinic-service: how the clinic service runs, the "
        "hospitals it serves, how a new version is judged and rolled out",
        f"clearance policy check {repo.name}/clearance.yaml",
    )
    repo.mkdir(parents=True)
    sample.git(repo, "init", "-q", "-b", "main")
    run = f"{shlex.quote(sys.executable)} {{artifact}} --port {{port}}"
    (repo / "clearance.yaml").write_text(POLICY.substitute(run=run, port=port))
    (repo / "README.md").write_text("The clinic service: orders, charts, HL7, FHIR.\n")
    sample.git(repo, "add", ".")
    sample.git(repo, "commit", "-q", "-m", "Clinic service, governed by clearance.yaml")
    policy, _ = load_policy_file(repo / "clearance.yaml")
    model = policy.model
    rule = model.tiers["standard"].rollout
    assert rule is not None
    canary = ", ".join(
        f"{s.weight}%" + (f" for {format_seconds(s.bake)}" if s.bake else "") for s in rule.canary
    )
    rings = ", ".join(
        f"{r.name} ({', '.join(r.tenants) if r.tenants else 'everyone'})" for r in rule.rings
    )
    analysis = model.analysis["clinical"]
    story.say(
        f"OK: service {SERVICE} on 127.0.0.1:{port} (local deployer, built-in router), requires "
        f"hl7 {model.services[SERVICE].requires.interfaces['hl7']}; tenants "
        f"{', '.join(model.tenants)}"
    )
    story.say(
        f"analysis clinical, every {format_seconds(analysis.interval)}: "
        f"{', '.join(analysis.metrics)} (order_errors critical)"
    )
    story.say(f"rollout: canary {canary}; rings {rings}")
    return policy, sample.git(repo, "rev-parse", "HEAD")


class _Chapter:
    """The chapter's steps on one instance, one clinic repository and one environment."""

    def __init__(
        self, story: Story, instance: Instance, workdir: Path, policy: Policy, head: str, port: int
    ) -> None:
        self.story = story
        self.instance = instance
        self.workdir = workdir
        self.policy = policy
        self.repo = workdir / "clinic-service"
        self.head = head
        self.url = f"http://127.0.0.1:{port}"
        self.digests: dict[str, Digest] = {}
        self.listener = _Narrator(story)

    def var(self, version: str) -> str:
        return "$CLINIC_" + version.replace(".", "")

    def controller(self, deployer: LocalDeployer) -> Controller:
        return Controller(
            self.instance, tick=0.25, route_lease=3.0, deployer=deployer, listener=self.listener
        )

    # -- builds -------------------------------------------------------------------------------

    def release(self, version: str, *, faulty: bool = False) -> Digest:
        what = {
            "1.4.2": "the clinic as it runs today",
            "1.4.3": "a refactor of dose handling that parses doses as whole milligrams (a bug: "
            "warfarin 2.5 mg and every other decimal dose now fails with 500)",
            "1.4.4": "the refactor, fixed: doses kept exactly as submitted",
        }[version]
        built = build_clinic(version, faulty=faulty, dest_dir=self.workdir / "dist")
        target = self.repo / "services" / SERVICE / "clinic.py"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(built.read_bytes())
        base = self.head
        sample.git(self.repo, "add", ".")
        sample.git(self.repo, "commit", "-q", "-m", f"Clinic {version}")
        self.head = sample.git(self.repo, "rev-parse", "HEAD")
        self.story.step(
            f"Clinic {version}: {what}; build and register it",
            f"clearance artifact register {built.relative_to(self.workdir)} --name {SERVICE} "
            f"--repo {self.repo.name} --commit {self.head[:12]} --base {base[:12]} "
            f"--branch main --build-number {version} --builder {BUILDER} --actor {CI}",
        )
        registration = register_artifact(
            self.instance,
            build=BuildInfo(self.head, "main", version, BUILDER),
            actor=CI,
            path=built,
            name=SERVICE,
            repo=GitRepo(self.repo),
            base=base,
        )
        self.digests[version] = registration.digest
        self.story.say(f"{self.var(version)[1:]}={registration.digest}")
        return registration.digest

    # -- rollouts ---------------------------------------------------------------------------

    def start(
        self, deployer: LocalDeployer, digest: Digest, strategy: Strategy | None = None
    ) -> Rollout:
        r = rollouts.start(
            self.instance, digest, env=ENV, actor=DEPLOYER, strategy=strategy, deployer=deployer
        )
        self.story.say(
            f"rollout {r.id}: {r.name} {r.version} to {ENV}, {r.plan.strategy}, "
            f"{len(r.plan.steps)} step(s)"
        )
        for tenant, why in r.plan.held.items():
            self.story.say(f"[yellow]held[/]: {tenant} ({why})")
        return r

    def first_deployment(self, deployer: LocalDeployer, digest: Digest) -> Rollout:
        self.story.step(
            "First deployment: 1.4.2 goes straight to 100%, nothing serves to compare it with",
            f"clearance rollout start {self.var('1.4.2')} --env {ENV} --actor {DEPLOYER}",
        )
        r = self.start(deployer, digest)
        done = self.controller(deployer).drive(r.id)
        assert done.phase is Phase.COMPLETED, done.reason
        return done

    def start_traffic(self, traffic: Traffic) -> None:
        self.story.step(
            f"Clinicians at work: {RATE} requests/s from {len(TENANTS)} hospitals (logins, "
            "orders, chart notes, HL7 messages, FHIR reads; 7% of orders have a decimal dose), "
            "synthetic, through the router"
        )
        traffic.start()

    def canary(
        self, deployer: LocalDeployer, traffic: Traffic, digest: Digest
    ) -> tuple[Rollout, int]:
        self.story.step(
            "Roll 1.4.3 out as a canary: half the traffic to it, half to a fresh baseline of "
            "1.4.2 started beside it, judged after the bake",
            f"clearance rollout start {self.var('1.4.3')} --env {ENV} --actor {DEPLOYER}",
        )
        r = self.start(deployer, digest)
        done = self.controller(deployer).drive(r.id)
        assert done.phase is Phase.ABORTED, f"1.4.3 was not aborted: {done.phase} {done.reason}"
        history = {e.kind: e for e in rollouts.history(self.instance, done)}
        verdict = history[rollouts.VERDICT]
        aborted = history[rollouts.ABORTED]
        self.story.say(
            f"the verdict as recorded (entry {verdict.seq}; both groups' samples kept as blobs, "
            "so clearance judge can replay it):"
        )
        _verdict_table(self.story, verdict.data["verdict"])
        seconds = aborted.data["rollback_seconds"]
        self.story.bad(
            f"the abort in the ledger: entry {aborted.seq}, severity "
            f"{aborted.data['severity']}, by {aborted.actor}, {aborted.data['traffic']} "
            f"{seconds * 1000:.0f} ms after the verdict; canary and baseline scaled down"
        )
        baked = traffic.counts(slot="canary")
        before = _answered(traffic)
        time.sleep(QUIET)
        now = _answered(traffic)
        total, stable, after = (now[k] - before[k] for k in ("all", "stable", "canary"))
        self.story.say(
            f"while it baked, 1.4.3 answered {baked['requests']} requests, {baked['5xx']} of them "
            "with an error"
        )
        say = self.story.good if after == 0 and stable > 0 else self.story.bad
        say(
            f"in the {QUIET:g} s after the abort: {total} requests, {stable} answered by 1.4.2 "
            f"(stable), {after} by the canary"
        )
        self.story.why(
            "the judge compares the canary with a fresh baseline, not with the long-running "
            "stable version: same age, same share of traffic. A critical metric that is "
            "significantly worse fails the verdict, and a fail aborts without waiting for anyone."
        )
        self.story.why(
            "why half the traffic for 18 s: the judge decides on counts, and telling 7% of failed "
            "orders from none, with certainty at its alpha, takes a few hundred orders per group. "
            "A 5% canary would need minutes of this traffic; in production it bakes for hours."
        )
        return done, after

    def rings(self, deployer: LocalDeployer, digest: Digest) -> Rollout:
        self.story.step(
            "Roll the fixed 1.4.4 out ring by ring: each ring's hospitals pinned to it, judged "
            "against 1.4.2 serving everyone else",
            f"clearance rollout start {self.var('1.4.4')} --env {ENV} --strategy rings "
            f"--actor {DEPLOYER}",
        )
        r = self.start(deployer, digest, Strategy.RINGS)
        done = self.controller(deployer).drive(r.id)
        assert done.phase is Phase.COMPLETED, done.reason
        self.story.step(
            "Which version each hospital gets now",
            f"curl -H '{TENANT_HEADER}: old-valley' {self.url}/healthz",
        )
        tenants = self.policy.model.tenants
        table = Table("tenant", "hl7", "version", "")
        with httpx.Client(trust_env=False, timeout=5.0) as client:
            for tenant in TENANTS:
                answer = client.get(f"{self.url}/healthz", headers={TENANT_HEADER: tenant})
                why = done.plan.held.get(tenant)
                table.add_row(
                    tenant,
                    tenants[tenant].interfaces.get("hl7", ""),
                    str(answer.json()["version"]),
                    f"[yellow]held: {why}[/]" if why else "",
                )
        self.story.table(table)
        self.story.why(
            "a held hospital is never silently skipped: the reason is in the plan, in the "
            "ledger and on screen, and 1.4.2 keeps running for it."
        )
        return done

    def drill(self, deployer: LocalDeployer) -> int:
        self.story.step(
            "Before the next rollout, rehearse the way back on what serves prod: a rollback "
            "drill switches all traffic to another copy and back, timed, recorded as evidence",
            f"clearance drill --env {ENV} --service {SERVICE} --actor {SRE}",
        )
        entry = drill(self.instance, env=ENV, actor=SRE, service=SERVICE, deployer=deployer)
        version = next(v for v, d in self.digests.items() if d == entry.subject)
        report = entry.data["summary"]
        say = self.story.good if entry.data["passed"] else self.story.bad
        say(
            f"rollback drill in {ENV}: {entry.data['result']}, recorded as rollback-drill "
            f"evidence on {version} (entry {entry.seq}, by {entry.actor})"
        )
        if entry.data["passed"]:
            self.story.say(
                f"path: {report['path']}; all traffic switched in "
                f"{report['switch_seconds'] * 1000:.1f} ms and back in "
                f"{report['restore_seconds'] * 1000:.1f} ms"
            )
        else:
            self.story.bad(f"error: {escape(str(report.get('error')))}")
        return entry.seq

    def status(self, shown: list[Rollout]) -> None:
        self.story.step(
            "The rollouts, as the controller recorded them", "clearance rollout status --env prod"
        )
        table = Table("rollout", "version", "strategy", "phase", "step", "verdicts", "entries")
        for r in shown:
            r = store.load(self.instance.db, r.id) or r
            history = rollouts.history(self.instance, r)
            verdicts = [e.data["verdict"]["verdict"] for e in history if e.kind == rollouts.VERDICT]
            at = min(r.step, len(r.plan.steps) - 1)
            table.add_row(
                r.id,
                r.version,
                r.plan.strategy,
                _PHASE[r.phase],
                f"{at + 1}/{len(r.plan.steps)} {r.plan.steps[at].name}",
                ", ".join(verdicts) or "-",
                f"{history[0].seq}-{history[-1].seq}",
            )
        self.story.table(table)
        for r in shown:
            if r.reason:
                self.story.say(f"{r.id}: {escape(r.reason)}")

    def traffic_summary(self, traffic: Traffic) -> None:
        stats = traffic.stats()
        slots = ", ".join(f"{slot} {c['requests']}" for slot, c in stats["by_slot"].items())
        self.story.say(
            f"traffic: {stats['sent']} requests at {stats['rate']:.0f}/s, answered by {slots}"
        )


def _answered(traffic: Traffic) -> dict[str, int]:
    """Finished requests so far, in all and by the slot that answered (one consistent view)."""
    stats = traffic.stats()
    by_slot = {slot: counts["requests"] for slot, counts in stats["by_slot"].items()}
    return {"stable": 0, "canary": 0, **by_slot, "all": stats["totals"]["requests"]}


_PHASE = {
    Phase.RUNNING: "[cyan]running[/]",
    Phase.PAUSED: "[yellow]paused[/]",
    Phase.COMPLETED: "[green]completed[/]",
    Phase.ABORTED: "[red]aborted[/]",
}


class _Narrator:
    """The controller's events as ``clearance rollout start`` prints them."""

    def __init__(self, story: Story) -> None:
        self.story = story

    def __call__(self, what: str, r: Rollout, data: dict[str, Any]) -> None:
        say = self.story.say
        if what == "deploying":
            say(f"deploying {r.service} {data['version']} in slot {data['slot']}")
        elif what == rollouts.STEP:
            weights = ", ".join(f"{k} {v}%" for k, v in data["weights"].items())
            pins = ", ".join(f"{t}→{s}" for t, s in data["tenants"].items())
            bake = f", bake {data['bake']:g}s" if data["bake"] else ""
            say(
                f"step {data['step'] + 1}/{len(r.plan.steps)} {data['name']}: {weights}"
                + (f"; pinned {pins}" if pins else "")
                + bake
            )
        elif what == rollouts.VERDICT:
            v = data["verdict"]
            colour = {"pass": "green", "marginal": "yellow", "fail": "red"}[v["verdict"]]
            score = "n/a" if v["score"] is None else f"{v['score']:.0f}"
            say(f"judge: [{colour}]{v['verdict'].upper()}[/] (score {score})")
            for m in v["metrics"]:
                if m["critical"] or m["classification"] not in ("pass", "nodata"):
                    say(f"  {m['name']}: {m['classification']}: {escape(m['reason'])}")
        elif what == "aborted":
            secs = data.get("rollback_seconds")
            timing = f" in {secs * 1000:.0f} ms" if secs is not None else ""
            say(f"[red]ABORTED[/]: {escape(data['reason'])}; traffic {data['traffic']}{timing}")
        elif what == "completed":
            held = "; ".join(f"{t} ({why})" for t, why in (data.get("held") or {}).items())
            say(
                f"[green]COMPLETED[/]: {r.version} serves {r.service} in {r.env}"
                + (f" (held on the previous version: {held})" if held else "")
            )
        elif what == "error":
            self.story.bad(f"error: {escape(data['message'])}")


def _verdict_table(story: Story, verdict: dict[str, Any]) -> None:
    """Every metric of a recorded verdict: both groups, the p-value and the conclusion."""
    table = Table("metric", "baseline", "canary", "p-value", "result")
    table.columns[0].no_wrap = True
    for m in verdict["metrics"]:
        cls = m["classification"]
        colour = {"pass": "green", "high": "red", "low": "red"}.get(cls, "yellow")
        p = m.get("p_value")
        table.add_row(
            m["name"] + ("*" if m["critical"] else ""),
            _group(m["baseline"]),
            _group(m["canary"]),
            "" if p is None else f"{p:.2g}",
            f"[{colour}]{cls}[/]",
        )
    story.table(table)
    story.say(
        "* critical. Rates by Fisher's exact test on the counts, latencies by Mann-Whitney U on "
        f"the per-interval values; {verdict['reasons'][0]}"
    )


def _group(stats: dict[str, Any]) -> str:
    if "denominator" in stats:
        rate = stats.get("rate")
        return f"{stats.get('numerator', 0)}/{stats['denominator']}" + (
            f" ({100 * rate:.1f}%)" if rate is not None else ""
        )
    if stats.get("median") is not None:
        return f"{stats['median']:.1f} ms"
    return "no data"
