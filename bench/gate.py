"""Gate benchmark: ``gate(instance, digest, "prod")`` on a release with a long history.

Run it as ``.venv/bin/python bench/gate.py [--evidence N] [--approvals A] [--repeats R]``. It
builds, in a temporary ``CLEARANCE_HOME`` (SQLite, via ``init``), one release as a team would:

- a small real git repository (an orders service and a portal) whose head commit changes medication
  rules, the patient model and a migration, and commits the project's reference ``clearance.yaml``
  with its roles extended to the A approvers: the change is classified ``high``, with both
  checklists (privacy review, rollback drill), so the gate has its largest set of controls;
- the built artifact registered with ``register_artifact(..., repo=GitRepo, base=...)``;
- N evidence records (default 1,000) through ``attest``: CI re-runs of every required type plus
  two extra ones, from small generated JUnit, SARIF, CycloneDX and generic JSON reports (each
  written once, attested repeatedly; some early runs fail), the last of each type passing;
- A approvals for prod (default 20, distinct approvers holding release-manager or
  clinical-safety) through ``approve``, then promotions to dev and staging through ``promote``.

Then it times R rounds (default 300), the order of the steps rotated every round:

(1) the baseline: ``instance.ledger.find(subject=digest)``, the ledger read the gate cannot do
    without (every entry about the artifact, decoded);
(2) ``gate(instance, digest, "prod")``: that read, the facts, the stored policy (cached after the
    first call) and ``decide``. Goal: p99 at most 50 ms. The ratio to (1) shows what the gate adds
    to its read;
(3) for context, its parts: ``releases._facts`` (the read and the facts built from it) and
    ``decide`` alone on facts already read; and the first gate call with the policy cache empty,
    as in a fresh CLI process.

Since a p99 over a few hundred calls is the few slowest of them, it also reports the CPU time of
the gate calls (is the tail our work or the machine's?) and the full (generation 2) garbage
collections that fell inside a timed call, with the p99 of the calls no collection hit. The set-up
is timed too: per attest, approve and promote. The decision is checked to allow, with every
control met. It always exits 0: it reports, it does not judge a build.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import json
import os
import pstats
import statistics
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from rich.progress import Progress

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

# After the path is set:
from bench.common import git, print_table, progress_bar, verdict  # noqa: E402
from clearance.core.approvals import Meaning  # noqa: E402
from clearance.core.digests import Digest  # noqa: E402
from clearance.core.gates import Decision, decide  # noqa: E402
from clearance.settings import Settings  # noqa: E402
from clearance.usecases import classification as classification_module  # noqa: E402
from clearance.usecases import releases  # noqa: E402
from clearance.usecases.artifacts import BuildInfo, register_artifact  # noqa: E402
from clearance.usecases.evidence import attest  # noqa: E402
from clearance.usecases.instance import Instance, init  # noqa: E402
from clearance.usecases.releases import approve, gate, promote  # noqa: E402
from clearance.vcs.git import GitRepo  # noqa: E402

P99_GOAL_MS = 50.0
CI = "ci-release-bot@example.org"
DEPLOYER = "deploy-bot@example.org"
ORIGIN = "bench.clearance.local/gate"
AUTHOR = "dana@example.org"  # the change's author: never an approver

#: A small clinical repository: an orders service (rules, patient model, migrations, tests) and
#: a portal (help copy, locales).
FILES = {
    "README.md": "# Clinical platform\n",
    "Dockerfile": "FROM python:3.11-slim\nCOPY services/orders /app\n",
    "infra/deploy.yaml": "replicas: 2\n",
    "docs/runbooks/orders.md": "# Orders runbook\n\nRollback: redeploy the previous digest.\n",
    "services/orders/app.py": "from services.orders.rules.medication import check_dose\n",
    "services/orders/models/patient.py": (
        "from dataclasses import dataclass\n\n\n@dataclass(frozen=True)\nclass Patient:\n"
        "    mrn: str\n    weight_kg: float\n"
    ),
    "services/orders/rules/medication.py": 'MAX_MG_PER_KG = {"paracetamol": 15.0}\n',
    "services/orders/migrations/0001_orders.sql": "CREATE TABLE orders (id INTEGER, mrn TEXT);\n",
    "services/orders/tests/test_orders.py": "def test_dose():\n    assert True\n",
    "web/portal/help.md": "# Help\n",
    "web/portal/locales/en.json": '{"greeting": "Welcome back"}\n',
}

POLICY = """\
version: 1
environments: [dev, staging, prod]
services:
  orders:  {{paths: ["services/orders/**"], runbook: docs/runbooks/orders.md}}
  portal:  {{paths: ["web/portal/**"]}}
signals:
  phi:              {{paths: ["**/patient/**", "**/models/patient*.py"]}}
  clinical_logic:   {{paths: ["services/orders/rules/**"]}}
  schema_migration: {{paths: ["**/migrations/**"]}}
  infrastructure:   {{paths: ["infra/**", "Dockerfile"]}}
  ui_copy:          {{paths: ["web/**/*.md", "web/**/locales/**"]}}
tiers:
  high:
    when: '"clinical_logic" in signals || "phi" in signals || "schema_migration" in signals'
    require:
      evidence: [unit-tests, integration-tests, contract-tests, sast, sca, sbom]
      approvals: {{count: 2, roles: [release-manager, clinical-safety]}}
      checklists:
        - {{when: '"phi" in signals', evidence: [privacy-review]}}
        - {{when: '"schema_migration" in signals', evidence: [rollback-drill]}}
  medium:
    when: '"infrastructure" in signals || size(services) > 1'
    require:
      evidence: [unit-tests, integration-tests, sast]
      approvals: {{count: 1, roles: [release-manager]}}
  low:
    when: 'true'
    require:
      evidence: [unit-tests]
      approvals: {{count: 1}}
roles:
  release-manager: {release_managers}
  clinical-safety: {clinical_safety}
"""

# -- the reports ------------------------------------------------------------------------------


def junit(suite: str, tests: int, failures: int) -> str:
    cases = []
    for i in range(tests):
        failure = '<failure message="assert 500 &lt;= 300">AssertionError</failure>'
        body = failure if i < failures else ""
        case = f'classname="tests.{suite}" name="test_case_{i}" time="0.01"'
        cases.append(f"<testcase {case}>{body}</testcase>")
    return (
        '<?xml version="1.0" encoding="utf-8"?><testsuites name="pytest tests">'
        f'<testsuite name="{suite}" errors="0" failures="{failures}" skipped="0" tests="{tests}" '
        f'time="0.5" timestamp="2026-03-02T09:30:00+00:00" hostname="ci">'
        + "".join(cases)
        + "</testsuite></testsuites>"
    )


def sarif(findings: int) -> str:
    results = [
        {
            "ruleId": "B602",
            "level": "note",
            "message": {"text": "subprocess call with shell=True"},
            "locations": [
                {"physicalLocation": {"artifactLocation": {"uri": "services/orders/tools/x.py"}}}
            ],
        }
        for _ in range(findings)
    ]
    return json.dumps(
        {
            "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
            "version": "2.1.0",
            "runs": [
                {"tool": {"driver": {"name": "Bandit", "version": "1.7.9"}}, "results": results}
            ],
        }
    )


def cyclonedx() -> str:
    components = [
        {"type": "library", "name": n, "version": v, "licenses": [{"license": {"id": lic}}]}
        for n, v, lic in (
            ("flask", "3.0.3", "BSD-3-Clause"),
            ("requests", "2.32.3", "Apache-2.0"),
            ("sqlalchemy", "2.0.36", "MIT"),
        )
    ]
    return json.dumps(
        {
            "bomFormat": "CycloneDX",
            "specVersion": "1.5",
            "metadata": {"tools": {"components": [{"name": "cyclonedx-py", "version": "4.6"}]}},
            "components": components,
        }
    )


def generic(**fields: object) -> str:
    return json.dumps({"passed": True, **fields})


@dataclass(frozen=True)
class Reports:
    """Each evidence type: a passing report, and a failing one for some early CI runs."""

    passing: dict[str, Path]
    failing: dict[str, Path]

    @classmethod
    def write(cls, folder: Path) -> Reports:
        folder.mkdir()
        texts = {
            "unit-tests": (junit("unit", 40, 0), junit("unit", 40, 2)),
            "integration-tests": (junit("integration", 12, 0), junit("integration", 12, 1)),
            "e2e-tests": (junit("e2e", 8, 0), junit("e2e", 8, 1)),
            "contract-tests": (generic(suite="orders-api-v1", checks=14), None),
            "sast": (sarif(2), None),
            "sca": (generic(tool="pip-audit", dependencies=31, vulnerabilities=0), None),
            "sbom": (cyclonedx(), None),
            "privacy-review": (generic(reviewer="dpo@example.org", dpia="DPIA-2026-014"), None),
            "rollback-drill": (generic(environment="staging", minutes=6, restored=True), None),
            "lint": (generic(tool="ruff", findings=0), None),
        }
        passing: dict[str, Path] = {}
        failing: dict[str, Path] = {}
        for kind, (good, bad) in texts.items():
            ext = ".xml" if good.startswith("<") else ".sarif" if kind == "sast" else ".json"
            passing[kind] = folder / f"{kind}{ext}"
            passing[kind].write_text(good)
            if bad is not None:
                failing[kind] = folder / f"{kind}-failed{ext}"
                failing[kind].write_text(bad)
        return cls(passing, failing)

    def plan(self, count: int) -> list[tuple[str, Path]]:
        """``count`` attestations cycling through the types; one early run in five fails."""
        kinds = list(self.passing)
        last_failing = count - 2 * len(kinds)
        plan = []
        for i in range(count):
            kind = kinds[i % len(kinds)]
            fails = kind in self.failing and (i // len(kinds)) % 5 == 2 and i < last_failing
            plan.append((kind, self.failing[kind] if fails else self.passing[kind]))
        return plan


# -- the release ------------------------------------------------------------------------------


def approvers(count: int) -> tuple[list[str], list[str]]:
    """``count`` distinct people: half release managers, half clinical-safety officers."""
    managers = ["alice@example.org"] + [f"rm{i:02d}@example.org" for i in range(2, 2 + count // 2)]
    safety = ["carol@example.org"] + [f"cs{i:02d}@example.org" for i in range(2, 1 + count // 2)]
    return managers[: (count + 1) // 2], safety


def build_repository(root: Path, managers: list[str], safety: list[str]) -> tuple[str, str]:
    """A small repository, then a change to dose rules, the patient model and a migration."""
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    for name, text in FILES.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "Orders service and patient portal")
    base = git(root, "rev-parse", "HEAD")
    policy = POLICY.format(
        release_managers=json.dumps(managers), clinical_safety=json.dumps(safety)
    )
    (root / "clearance.yaml").write_text(policy)
    rules = root / "services/orders/rules/medication.py"
    rules.write_text(rules.read_text().replace("15.0", "12.5"))
    model = root / "services/orders/models/patient.py"
    model.write_text(model.read_text() + "    allergies: tuple[str, ...] = ()\n")
    (root / "services/orders/migrations/0002_allergies.sql").write_text(
        "ALTER TABLE orders ADD COLUMN allergies TEXT;\n"
    )
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "Lower the paediatric paracetamol limit; record allergies")
    return base, git(root, "rev-parse", "HEAD")


def build_artifact(repo: Path, out: Path) -> Path:
    """The orders service as a reproducible zip (fixed timestamps, sorted entries)."""
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted((repo / "services" / "orders").rglob("*")):
            if path.is_file():
                info = zipfile.ZipInfo(str(path.relative_to(repo)), (2026, 1, 1, 0, 0, 0))
                archive.writestr(info, path.read_bytes())
    return out


@dataclass
class Setup:
    digest: Digest
    tier: str
    checklists: int
    attest_s: float
    approve_s: float
    promote_s: float
    evidence: int
    failing: int


def build_release(
    instance: Instance, folder: Path, args: argparse.Namespace, progress: Progress
) -> Setup:
    managers, safety = approvers(args.approvals)
    repo = folder / "repo"
    base, head = build_repository(repo, managers, safety)
    artifact = build_artifact(repo, folder / "orders.zip")
    registration = register_artifact(
        instance,
        build=BuildInfo(commit=head, branch="main", build_number="2026.03.1", builder="bench-ci"),
        actor=CI,
        path=artifact,
        repo=GitRepo(repo),
        base=base,
    )
    digest = registration.digest
    classification = registration.entry.data["classification"]

    plan = Reports.write(folder / "reports").plan(args.evidence)
    task = progress.add_task(f"attest x {args.evidence:,}", total=len(plan))
    began = time.perf_counter()
    for kind, path in plan:
        attest(instance, digest, kind, path, actor=CI)
        progress.advance(task)
    attest_s = time.perf_counter() - began

    people = [p for pair in zip(managers, safety, strict=False) for p in pair]
    people += managers[len(safety) :]
    task = progress.add_task(f"approve x {len(people)}", total=len(people))
    began = time.perf_counter()
    for person in people:
        approve(instance, digest, env="prod", meaning=Meaning.APPROVAL, actor=person)
        progress.advance(task)
    approve_s = time.perf_counter() - began

    began = time.perf_counter()
    for env in ("dev", "staging"):
        promote(instance, digest, env=env, actor=DEPLOYER)
    promote_s = time.perf_counter() - began
    return Setup(
        digest,
        classification["tier"],
        len(classification["checklists"]),
        attest_s,
        approve_s,
        promote_s,
        len(plan),
        sum(1 for _, path in plan if "-failed" in path.name),
    )


# -- timing -----------------------------------------------------------------------------------


def p99(values: list[float]) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[98]


def timed(run: Callable[[], object]) -> float:
    began = time.perf_counter()
    run()
    return time.perf_counter() - began


@dataclass
class Timings:
    """Per step: wall and CPU seconds of every call, and the full collections that hit a call."""

    wall: dict[str, list[float]]
    cpu: dict[str, list[float]]
    full_gc: dict[str, list[tuple[int, float]]]  # (index of the call, seconds collecting)

    def median(self, step: str) -> float:
        return statistics.median(self.wall[step])

    def p99(self, step: str) -> float:
        return p99(self.wall[step])

    def p99_without_full_gc(self, step: str) -> float:
        hit = {i for i, _ in self.full_gc[step]}
        return p99([t for i, t in enumerate(self.wall[step]) if i not in hit])


def measure(instance: Instance, digest: Digest, repeats: int, progress: Progress) -> Timings:
    """Every step ``repeats`` times, the order rotated each time; full collections are noted."""
    steps: dict[str, Callable[[], object]] = {
        "find": lambda: instance.ledger.find(subject=digest),
        "facts": lambda: releases._facts(instance, digest, None),
        "gate": lambda: gate(instance, digest, "prod"),
    }
    for step in steps.values():  # one untimed pass: page cache, the policy cache
        step()
    names = list(steps)
    t = Timings({n: [] for n in names}, {n: [] for n in names}, {n: [] for n in names})
    running = [""]
    collecting = [0.0]

    def watch(phase: str, info: dict[str, int]) -> None:
        if info["generation"] != 2:
            return
        if phase == "start":
            collecting[0] = time.perf_counter()
        elif running[0]:
            step = running[0]
            t.full_gc[step].append((len(t.wall[step]), time.perf_counter() - collecting[0]))

    task = progress.add_task("timing, interleaved", total=repeats)
    gc.callbacks.append(watch)
    try:
        for i in range(repeats):
            shift = i % len(names)
            for name in names[shift:] + names[:shift]:
                running[0] = name
                wall, cpu = time.perf_counter(), time.process_time()
                steps[name]()
                t.cpu[name].append(time.process_time() - cpu)
                t.wall[name].append(time.perf_counter() - wall)
                running[0] = ""
            progress.advance(task)
    finally:
        gc.callbacks.remove(watch)
    return t


def context(instance: Instance, digest: Digest, repeats: int) -> tuple[float, float, Decision]:
    """The first gate with the policy cache empty, and the median of ``decide`` on read facts."""
    classification_module._CACHE.clear()  # what every CLI process starts with
    cold = timed(lambda: gate(instance, digest, "prod"))
    facts, policy = releases._facts(instance, digest, None)
    decision = decide(policy, facts, "prod")
    pure = statistics.median(timed(lambda: decide(policy, facts, "prod")) for _ in range(repeats))
    return cold, pure, decision


def profile(instance: Instance, digest: Digest, top: int) -> str:
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(20):
        gate(instance, digest, "prod")
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(top)
    return f"cProfile of 20 gate calls, top {top} by own time:\n" + out.getvalue()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--evidence", type=int, default=1_000, help="evidence records (attest)")
    parser.add_argument("--approvals", type=int, default=20, help="distinct approvers")
    parser.add_argument("--repeats", type=int, default=300, help="timed gate calls")
    parser.add_argument(
        "--profile", type=int, default=0, metavar="N", help="print the top N of a cProfile run"
    )
    args = parser.parse_args()
    if args.evidence < 20 or args.approvals < 2 or args.repeats < 10:
        parser.error("need --evidence >= 20, --approvals >= 2 and --repeats >= 10")
    print(
        f"Gate: one high-tier release with {args.evidence:,} evidence records and "
        f"{args.approvals} approvals, SQLite; Python {sys.version.split()[0]}, "
        f"{os.cpu_count()} CPUs"
    )
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="clearance-bench-") as folder:
        home = Path(folder) / "home"
        settings = Settings.from_env({}, home=home)
        with (
            init(settings, actor=CI, origin=ORIGIN) as instance,
            progress_bar() as progress,
        ):
            setup = build_release(instance, Path(folder), args, progress)
            entries = len(instance.ledger.find(subject=setup.digest))
            times = measure(instance, setup.digest, args.repeats, progress)
            cold, pure, decision = context(instance, setup.digest, args.repeats)
            profiled = profile(instance, setup.digest, args.profile) if args.profile else ""

    ev = setup.evidence
    print(
        f"set-up: attest {setup.attest_s:.1f} s for {ev:,} ({setup.attest_s / ev * 1000:.1f} ms "
        f"each, {setup.failing} of them failing reports), approve "
        f"{setup.approve_s / args.approvals * 1000:.0f} ms each, promote to dev and staging "
        f"{setup.promote_s / 2 * 1000:.0f} ms each; {entries:,} ledger entries about the artifact"
    )
    unmet = [c.control for c in decision.controls if not c.satisfied]
    outcome = "allowed, every control met" if decision.allowed and not unmet else f"NOT: {unmet}"
    print(
        f"decision: tier {setup.tier} ({setup.checklists} checklists), "
        f"{len(decision.controls)} controls, {outcome}"
    )

    def ms(seconds: float) -> str:
        return f"{seconds * 1000:.1f} ms"

    find_median, gate_median = times.median("find"), times.median("gate")
    find_p99, gate_p99 = times.p99("find"), times.p99("gate")
    facts_median = times.median("facts")
    ok = gate_p99 * 1000 <= P99_GOAL_MS and decision.allowed and not unmet and setup.tier == "high"
    rows = [
        ("(1) ledger.find(subject=digest), median", ms(find_median), "-", "-", "-", "-"),
        ("(1) ledger.find, p99", ms(find_p99), "-", "-", "-", "-"),
        ("(2) gate(prod), median", ms(gate_median), ms(find_median),
         f"{gate_median / find_median:.2f}x", "-", "-"),
        ("(2) gate(prod), p99", ms(gate_p99), ms(find_p99), f"{gate_p99 / find_p99:.2f}x",
         f"<= {P99_GOAL_MS:.0f} ms", verdict(ok)),
        ("    of which read + facts, median", ms(facts_median), ms(find_median),
         f"{facts_median / find_median:.2f}x", "-", "-"),
        ("    of which decide(), median", ms(pure), ms(find_median),
         f"{pure / find_median:.2f}x", "-", "-"),
        ("gate, first call (policy cache empty)", ms(cold), ms(find_median),
         f"{cold / find_median:.2f}x", "-", "-"),
    ]  # fmt: skip
    print()
    print_table(rows)
    cpu = times.cpu["gate"]
    collections = times.full_gc
    each = [d for hits in collections.values() for _, d in hits]
    print(
        f"  {args.repeats} timed calls of each of ledger.find, releases._facts (read + facts) "
        "and gate, the order rotated every round; gate max "
        f"{max(times.wall['gate']) * 1000:.1f} ms, ledger.find max "
        f"{max(times.wall['find']) * 1000:.1f} ms"
    )
    print(
        f"  CPU time of gate: median {ms(statistics.median(cpu))}, p99 {ms(p99(cpu))} "
        "(wall minus CPU is time spent waiting for the machine)"
    )
    print(
        "  full (generation 2) garbage collections during the timed calls: "
        + ", ".join(f"{len(hits)} in {name}" for name, hits in collections.items())
        + (f", {ms(statistics.median(each))} each (median)" if each else "")
        + f"; gate p99 without the calls that hit one: {ms(times.p99_without_full_gc('gate'))}"
    )
    if profiled:
        print(f"\n{profiled.rstrip()}")
    print(f"\ntotal {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
