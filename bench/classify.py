"""Classification benchmark: a 10,000-file change in a real git repository (a measurement).

Run it as ``.venv/bin/python bench/classify.py [--files N] [--rounds R]``. It builds a git
repository in a temporary directory: a base commit of a monorepo-shaped tree (ten services under
``services/<svc>/`` with sources, API, models, rules, migrations, patient modules, tests and
config; three web apps with components, pages, locales, help copy and images; Terraform, Kubernetes
and Helm under ``infra/``; shared libraries, docs, CI files; eight extensions and some binaries),
then a head commit that modifies, deletes and adds N files (default 10,000), and a committed
``clearance.yaml`` with 200 gitignore-style patterns over 20 signals and 10 services and three
tiers chosen by CEL conditions. The repository is repacked, as a clone would be. Then, in
interleaved rounds (the order rotated every round, each figure the median over rounds, each ratio
the median of the per-round ratios), it times:

(1) the baseline: the bare ``git diff --numstat -z --no-renames base head`` subprocess, the one
    read the classifier cannot do without;
(2) ``classify_change(GitRepo(repo), base, head)`` as a user runs it (the git diff, author and
    message, the policy read from the head commit, matching and CEL), once with the policy cache
    warm and once cold (the cache emptied first, as in every CLI process). Goal: at most 2x (1);
(3) for context, its parts: ``GitRepo.change_set`` (all git reads of the change),
    ``policy_at`` (reading the committed policy, cache warm) and ``classify`` alone (matching and
    CEL on the change already read).

Before timing, the answer is checked against ``pathspec`` matching every changed file one by one
against every service's and signal's patterns: the same signals and services, the same file
count for each, each reported pattern really matching its files, and the tier and checklists the
conditions give on those sets. It always exits 0: it reports, it does not judge a build.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pathspec
from rich.progress import Progress

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

# After the path is set:
from bench.common import GIT_ENV, print_table, progress_bar, verdict  # noqa: E402
from bench.common import git as _git  # noqa: E402
from clearance.core.classify import ChangeSet, Classification, classify  # noqa: E402
from clearance.usecases import classification as classification_module  # noqa: E402
from clearance.usecases.classification import classify_change, policy_at  # noqa: E402
from clearance.vcs.git import GitRepo  # noqa: E402

GOAL = 2.0
BASE_FILES = 12_500  # the base tree; the head changes --files of them (some deleted, some new)

CLASSIFY_GIT_ENV = {
    **GIT_ENV,
    "GIT_AUTHOR_DATE": "2026-03-02T09:00:00+00:00",
    "GIT_COMMITTER_DATE": "2026-03-02T09:00:00+00:00",
    "GIT_CONFIG_COUNT": "1",  # no background gc racing the build or the timings
    "GIT_CONFIG_KEY_0": "gc.auto",
    "GIT_CONFIG_VALUE_0": "0",
}

# -- the tree ---------------------------------------------------------------------------------

SERVICES = (
    "orders",
    "pharmacy",
    "lab",
    "imaging",
    "billing",
    "scheduling",
    "identity",
    "notifications",
    "records",
    "analytics",
)
WEB_APPS = ("portal", "clinician", "admin")
ENVS = ("dev", "staging", "prod")
WORDS = (
    "order", "dose", "patient", "visit", "result", "panel", "image", "study", "invoice", "claim",
    "slot", "calendar", "token", "session", "audit", "export", "report", "alert", "queue", "event",
    "schema", "record", "allergy", "consent", "referral", "triage", "ward", "bed", "shift", "note",
    "summary", "status", "batch", "sync", "cache", "index", "search", "filter", "mapper", "client",
    "handler", "service", "policy", "rule", "limit", "range", "unit", "code",
)  # fmt: skip
MODULES = ("handlers", "domain", "adapters", "jobs", "reports", "validation", "audit", "exports")
RULE_AREAS = ("clinical", "dosing", "interactions", "eligibility", "pricing", "routing")
LIBS = ("security", "logging", "http", "fhir", "testing", "orders_client", "lab_client")
DOC_SECTIONS = ("architecture", "runbooks", "adr", "help", "onboarding", "api")
PAGES = ("patient", "appointments", "settings", "reports", "messages")
LANGS = ("en", "fr", "de", "nl", "es")
Layout = list[tuple[int, Callable[[random.Random], str]]]


def _name(r: random.Random) -> str:
    return f"{r.choice(WORDS)}_{r.choice(WORDS)}"


def _comp(r: random.Random) -> str:
    return r.choice(WORDS).title() + r.choice(WORDS).title()


def _service_file(r: random.Random) -> str:
    s = r.choice(SERVICES)
    layout: Layout = [
        (30, lambda r: f"src/{s}/{r.choice(MODULES)}/{_name(r)}.py"),
        (6, lambda r: f"api/v{r.randint(1, 2)}/{_name(r)}.py"),
        (4, lambda r: f"models/{r.choice(('patient_', '', ''))}{_name(r)}.py"),
        (5, lambda r: f"rules/{r.choice(RULE_AREAS)}/{_name(r)}.py"),
        (3, lambda r: f"migrations/{r.randint(1, 9999):04d}_{_name(r)}.sql"),
        (3, lambda r: f"patient/{_name(r)}.py"),
        (20, lambda r: f"tests/{r.choice(('unit', 'integration', 'contract'))}/test_{_name(r)}.py"),
        (2, lambda r: f"config/{r.choice(ENVS)}_{r.choice(WORDS)}.yaml"),
        (2, lambda r: f"docs/{_name(r)}.md"),
        (1, lambda r: f"templates/email/{_name(r)}.html"),
    ]
    return f"services/{s}/{_pick(r, layout)}"


def _web_file(r: random.Random) -> str:
    app = r.choice(WEB_APPS)
    comp = _comp(r)
    layout: Layout = [
        (25, lambda r: f"src/components/{comp}/{comp}{r.choice(('.tsx', '.test.tsx', '.css'))}"),
        (10, lambda r: f"src/pages/{r.choice(PAGES)}/{_name(r)}.tsx"),
        (6, lambda r: f"src/api/{r.choice(SERVICES)}/{_name(r)}.ts"),
        (6, lambda r: f"locales/{r.choice(LANGS)}/{r.choice(WORDS)}.json"),
        (4, lambda r: f"docs/{_name(r)}.md"),
        (3, lambda r: f"public/help/{_name(r)}.md"),
        (2, lambda r: f"public/img/{_name(r)}.png"),
    ]
    return f"web/{app}/{_pick(r, layout)}"


def _other_file(r: random.Random) -> str:
    layout: Layout = [
        (5, lambda r: f"infra/terraform/{r.choice(ENVS)}/{_name(r)}.tf"),
        (4, lambda r: f"infra/k8s/{r.choice(SERVICES)}/{_name(r)}.yaml"),
        (2, lambda r: f"infra/helm/{r.choice(SERVICES)}/templates/{_name(r)}.yaml"),
        (1, lambda r: f"infra/monitoring/{_name(r)}.yaml"),
        (3, lambda r: f"migrations/versions/{r.randint(1, 9999):04d}_{_name(r)}.py"),
        (6, lambda r: f"lib/{r.choice(LIBS)}/{r.choice(MODULES)}/{_name(r)}.py"),
        (2, lambda r: f"lib/{r.choice(LIBS)}/tests/test_{_name(r)}.py"),
        (5, lambda r: f"docs/{r.choice(DOC_SECTIONS)}/{_name(r)}.md"),
        (1, lambda r: f"tools/ci/{_name(r)}.py"),
        (1, lambda r: f".github/workflows/{_name(r)}.yml"),
    ]
    return _pick(r, layout)


def _pick(r: random.Random, layout: Layout) -> str:
    weights = [w for w, _ in layout]
    return r.choices([f for _, f in layout], weights)[0](r)


def tree_paths(r: random.Random, count: int) -> list[str]:
    """``count`` distinct paths: 60 % services, 20 % web, the rest infra, libs, docs and CI."""
    paths = {"Dockerfile", "Makefile", "pyproject.toml", "requirements.txt", "README.md"}
    areas: Layout = [(60, _service_file), (20, _web_file), (20, _other_file)]
    while len(paths) < count:
        paths.add(_pick(r, areas))
    return sorted(paths)


def content(r: random.Random, path: str) -> bytes:
    if path.endswith(".png"):
        return b"\x89PNG\r\n\x1a\n\x00" + r.randbytes(r.randint(200, 2_000))
    lines = [f"# {path}"]
    lines += [f"{_name(r)} = {r.randint(0, 10**6)}" for _ in range(r.randint(10, 60))]
    return ("\n".join(lines) + "\n").encode()


def edit(r: random.Random, path: str, before: bytes) -> bytes:
    """A few lines changed and a few appended (a binary file is rewritten)."""
    if path.endswith(".png"):
        return content(r, path)
    lines = before.decode().splitlines()
    for _ in range(r.randint(1, 4)):
        lines[r.randrange(1, len(lines))] = f"{_name(r)} = {r.randint(0, 10**6)}"
    lines += [f"{_name(r)} = {r.randint(0, 10**6)}" for _ in range(r.randint(0, 6))]
    return ("\n".join(lines) + "\n").encode()


# -- the policy -------------------------------------------------------------------------------

CLINICAL = ("orders", "pharmacy", "lab", "imaging")
SERVICE_PATTERNS = {
    s: [
        f"services/{s}/**",
        f"infra/k8s/{s}/**",
        f"infra/helm/{s}/**",
        f"docs/runbooks/{s}*.md",
        f"web/*/src/api/{s}/**",
    ]
    for s in SERVICES
}
SIGNAL_PATTERNS: dict[str, list[str]] = {
    "phi": [
        "**/patient/**", "**/models/patient*.py", "**/patient_*.py", "**/*_phi.py",
        "**/pages/patient/**", "services/records/**", "**/fixtures/patients/**",
        "**/exports/*.csv", "**/mrn*.py",
    ],
    "clinical_logic": [
        *(f"services/{s}/rules/**" for s in CLINICAL), "**/dosing/**", "**/interactions/*.py",
        "**/rules/clinical/**", "services/pharmacy/src/pharmacy/domain/**",
        "services/lab/src/lab/validation/**", "**/reference_ranges*.py", "**/triage/**",
        "**/alerts/clinical*.py",
    ],
    "schema_migration": [
        "**/migrations/**", "**/alembic/versions/*.py", "**/schema/*.sql", "**/*.ddl",
        "db/changelog/**", "**/flyway/**",
    ],
    "infrastructure": [
        "infra/**", "Dockerfile", "**/Dockerfile", "*.tf", "**/*.tfvars", "docker-compose*.yml",
        "**/helm/**", "**/k8s/**", ".github/workflows/**", "Makefile", "**/terraform/**",
        "**/*.nomad", "**/ansible/**", "**/packer/**",
    ],
    "ui_copy": [
        "web/**/*.md", "web/**/locales/**", "web/**/i18n/**", "web/**/public/help/**",
        "**/copy/*.json", "web/**/strings*.json", "web/**/*.po", "docs/help/**",
    ],
    "api_contract": [
        *(f"services/{s}/api/**" for s in SERVICES), "**/openapi*.yaml", "**/*.proto",
    ],
    "authn": [
        "services/identity/**", "**/auth/**", "**/oauth*/**", "**/sessions/*.py",
        "**/*_token*.py", "**/permissions/**", "**/rbac/**", "lib/security/**",
    ],
    "crypto": [
        "**/crypto/**", "**/*_crypto.py", "**/keys/**", "**/tls/**", "**/*.pem", "**/*.key",
        "lib/security/signing/**",
    ],
    "billing_logic": [
        "services/billing/src/**", "services/billing/rules/**", "**/invoices/**",
        "**/tariffs/*.py", "**/payments/**", "**/claims/**",
    ],
    "audit_logging": [
        "**/audit/**", "**/*_audit.py", "lib/logging/**", "**/log_config*.yaml",
        "infra/monitoring/**", "**/trail/*.py",
    ],
    "dependencies": [
        "requirements*.txt", "**/requirements*.txt", "poetry.lock", "**/package.json",
        "**/package-lock.json", "**/yarn.lock", "pyproject.toml", "**/go.sum",
    ],
    "ci_pipeline": [
        ".github/**", ".gitlab-ci.yml", "**/Jenkinsfile", "tools/ci/**",
        "**/.pre-commit-config.yaml", "tools/release/**", "**/CODEOWNERS",
    ],
    "feature_flags": [
        "**/flags/**", "**/feature_flags*.py", "**/toggles/*.yaml", "config/flags/**",
        "web/**/flags.ts",
    ],
    "notification_content": [
        "services/notifications/templates/**", "**/templates/email/**", "**/templates/sms/**",
        "**/*.mjml", "**/push/*.json", "services/notifications/src/notifications/content/**",
    ],
    "scheduling_logic": [
        "services/scheduling/rules/**", "services/scheduling/src/scheduling/domain/**",
        "**/calendar/**", "**/slots/*.py", "**/availability*.py", "**/recurrence/**",
    ],
    "imaging_pipeline": [
        "services/imaging/src/**", "**/dicom/**", "**/*.dcm", "**/pacs/**", "**/viewer/**",
        "**/imaging_*.py",
    ],
    "lab_interfaces": [
        "services/lab/src/lab/adapters/**", "**/hl7/**", "**/fhir/**", "**/*.hl7",
        "**/loinc*.csv", "**/interfaces/lab/**",
    ],
    "analytics_exports": [
        "services/analytics/**", "**/exports/**", "**/reports/*.sql", "**/dashboards/**",
        "**/warehouse/**", "**/*.ipynb",
    ],
    "configuration": [
        "**/config/*.yaml", "**/config/*.toml", "**/config/*.json", "**/settings*.py",
        "**/.env.example", "**/*.ini",
    ],
    "docs_only": [
        "docs/**", "**/*.rst", "**/README.md", "**/CHANGELOG.md", "**/adr/*.md", "**/*.adoc",
    ],
}  # fmt: skip

HIGH = '"clinical_logic" in signals || "phi" in signals || "schema_migration" in signals'
MEDIUM = '"infrastructure" in signals || "authn" in signals || size(services) > 1'
CHECKLISTS = (
    ('"phi" in signals', "privacy-review"),
    ('"schema_migration" in signals', "rollback-drill"),
    ('"api_contract" in signals && size(services) > 2', "contract-tests"),
    ('"crypto" in signals || "authn" in signals', "security-review"),
)


def policy_text() -> str:
    def paths(patterns: list[str]) -> str:
        return json.dumps(patterns)  # a JSON list is a YAML flow sequence

    lines = ["version: 1", "environments: [dev, staging, prod]", "services:"]
    lines += [f"  {s}: {{paths: {paths(p)}}}" for s, p in SERVICE_PATTERNS.items()]
    lines.append("signals:")
    lines += [f"  {s}: {{paths: {paths(p)}}}" for s, p in SIGNAL_PATTERNS.items()]
    checklists = "\n".join(
        f"        - {{when: {json.dumps(when)}, evidence: [{kind}]}}" for when, kind in CHECKLISTS
    )
    lines.append(f"""tiers:
  high:
    when: {json.dumps(HIGH)}
    require:
      evidence: [unit-tests, integration-tests, contract-tests, sast, sca, sbom]
      approvals: {{count: 2, roles: [release-manager, clinical-safety]}}
      checklists:
{checklists}
  medium:
    when: {json.dumps(MEDIUM)}
    require:
      evidence: [unit-tests, integration-tests, sast]
      approvals: {{count: 1, roles: [release-manager]}}
  low:
    when: 'true'
    require:
      evidence: [unit-tests]
      approvals: {{count: 1}}
roles:
  release-manager: [alice@example.org, bob@example.org]
  clinical-safety: [carol@example.org, dan@example.org]
""")
    return "\n".join(lines)


def expected_tier(signals: set[str], services: set[str]) -> tuple[str, list[str]]:
    """The tiers' and checklists' CEL conditions, written again in Python."""
    if signals & {"clinical_logic", "phi", "schema_migration"}:
        held = [
            "phi" in signals,
            "schema_migration" in signals,
            "api_contract" in signals and len(services) > 2,
            bool(signals & {"crypto", "authn"}),
        ]
        return "high", [when for (when, _), ok in zip(CHECKLISTS, held, strict=True) if ok]
    if signals & {"infrastructure", "authn"} or len(services) > 1:
        return "medium", []
    return "low", []


# -- the repository ---------------------------------------------------------------------------


def git(repo: Path, *args: str) -> str:
    return _git(repo, *args, env=CLASSIFY_GIT_ENV)


@dataclass
class Built:
    repo: Path
    base: str
    head: str
    changed: set[str]
    counts: dict[str, int] = field(default_factory=dict)


def build_repository(root: Path, changes: int, progress: Progress) -> Built:
    """A base commit, then a head commit that modifies, deletes and adds ``changes`` files."""
    r = random.Random(2026)
    added = changes // 20
    deleted = changes // 20
    modified = changes - added - deleted
    paths = tree_paths(r, max(BASE_FILES, modified + deleted + 100) + added)
    r.shuffle(paths)
    new, base_paths = paths[:added], paths[added:]
    task = progress.add_task("building the git repository", total=len(base_paths) + changes)
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    files: dict[str, bytes] = {}
    for path in base_paths:
        files[path] = content(r, path)
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(files[path])
        progress.advance(task)
    (root / "clearance.yaml").write_text(policy_text())
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "Monorepo as of the last release")
    base = git(root, "rev-parse", "HEAD")

    chosen = r.sample(base_paths, modified + deleted)
    for path in chosen[:modified]:
        (root / path).write_bytes(edit(r, path, files[path]))
        progress.advance(task)
    for path in chosen[modified:]:
        (root / path).unlink()
        progress.advance(task)
    for path in new:
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content(r, path))
        progress.advance(task)
    git(root, "add", "-A")
    env = {"GIT_AUTHOR_NAME": "Erin Engineer", "GIT_AUTHOR_EMAIL": "erin@example.org"}
    subprocess.run(
        ["git", "-C", str(root), "commit", "-q", "-m", "Release train 2026.03: dose rules, portal"],
        capture_output=True,
        env={**CLASSIFY_GIT_ENV, **env},
        check=True,
    )
    head = git(root, "rev-parse", "HEAD")
    git(root, "repack", "-a", "-d", "-q")  # packed, like a clone
    counts = {"modified": modified, "deleted": deleted, "added": added, "tree": len(base_paths)}
    return Built(root, base, head, set(chosen) | set(new), counts)


# -- checking the answer ----------------------------------------------------------------------


def check(result: Classification, paths: list[str]) -> tuple[list[str], int, int]:
    """Problems found against pathspec, one file at a time; and the matched and total counts."""
    problems: list[str] = []
    matched: set[str] = set()
    expected: dict[tuple[str, str], int] = {}
    for kind, groups in (("signal", SIGNAL_PATTERNS), ("service", SERVICE_PATTERNS)):
        for name, patterns in groups.items():
            spec = pathspec.PathSpec.from_lines("gitwildmatch", patterns)
            hits = [p for p in paths if spec.match_file(p)]
            if hits:
                expected[(kind, name)] = len(hits)
            matched.update(hits)
    got: dict[tuple[str, str], int] = {}
    for m in result.matches:
        got[(m.kind, m.name)] = got.get((m.kind, m.name), 0) + m.count
        one = pathspec.PathSpec.from_lines("gitwildmatch", [m.pattern])
        wrong = [f for f in m.files if not one.match_file(f)]
        if wrong:
            problems.append(f"{m.name}: pattern {m.pattern!r} does not match {wrong[0]}")
    for key in sorted(expected.keys() | got.keys()):
        if expected.get(key, 0) != got.get(key, 0):
            problems.append(f"{key[0]} {key[1]}: {got.get(key, 0)} files, pathspec says "
                            f"{expected.get(key, 0)}")  # fmt: skip
    signals = {n for k, n in expected if k == "signal"}
    services = {n for k, n in expected if k == "service"}
    tier, checklists = expected_tier(signals, services)
    if result.tier != tier:
        problems.append(f"tier {result.tier}, the conditions on pathspec's sets give {tier}")
    if [c["when"] for c in result.checklists] != checklists:
        problems.append(f"checklists {[c['when'] for c in result.checklists]} != {checklists}")
    if result.files != len(paths):
        problems.append(f"{result.files} files classified, git diff lists {len(paths)}")
    return problems, len(matched), len(paths)


# -- timing -----------------------------------------------------------------------------------


@dataclass
class Figures:
    times: dict[str, list[float]] = field(default_factory=dict)

    def add(self, name: str, seconds: float) -> None:
        self.times.setdefault(name, []).append(seconds)

    def median(self, name: str) -> float:
        return statistics.median(self.times[name])

    def ratios(self, name: str, baseline: str = "diff") -> list[float]:
        pairs = zip(self.times[name], self.times[baseline], strict=True)
        return [v / b for v, b in pairs]

    def ratio(self, name: str) -> float:
        return statistics.median(self.ratios(name))


def numstat(built: Built) -> bytes:
    proc = subprocess.run(
        ["git", "-C", str(built.repo), "diff", "--numstat", "-z", "--no-renames", built.base,
         built.head, "--"],
        capture_output=True,
        check=True,
    )  # fmt: skip
    return proc.stdout


def timed(run: Callable[[], object]) -> float:
    began = time.perf_counter()
    run()
    return time.perf_counter() - began


def measure(built: Built, rounds: int, progress: Progress) -> Figures:
    repo, base, head = built.repo, built.base, built.head
    git_repo = GitRepo(repo)
    change: ChangeSet = git_repo.change_set(base, head)
    policy, _ = policy_at(git_repo, head, None)

    def cold() -> None:
        classification_module._CACHE.clear()  # what every CLI process starts with
        classify_change(GitRepo(repo), base, head)

    steps: dict[str, Callable[[], object]] = {
        "diff": lambda: numstat(built),
        "warm": lambda: classify_change(GitRepo(repo), base, head),
        "cold": cold,
        "change_set": lambda: git_repo.change_set(base, head),
        "policy_at": lambda: policy_at(git_repo, head, None),
        "classify": lambda: classify(policy, change),
    }
    names = list(steps)
    for name in names:  # one untimed pass: page cache, imports, the policy cache
        steps[name]()
    figures = Figures()
    task = progress.add_task("timing, interleaved rounds", total=rounds * len(names))
    for round_no in range(rounds):
        shift = round_no % len(names)
        for name in names[shift:] + names[:shift]:
            figures.add(name, timed(steps[name]))
            progress.advance(task)
    classify_change(GitRepo(repo), base, head)  # leave the cache warm for whoever comes next
    return figures


def profile(built: Built, top: int) -> str:
    """cProfile of one warm ``classify_change``, the functions with most own time first."""
    classify_change(GitRepo(built.repo), built.base, built.head)
    profiler = cProfile.Profile()
    profiler.enable()
    classify_change(GitRepo(built.repo), built.base, built.head)
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(top)
    title = f"cProfile of one classify_change (policy cached), top {top} by own time:"
    return title + "\n" + out.getvalue()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--files", type=int, default=10_000, help="files the head commit changes")
    parser.add_argument("--rounds", type=int, default=15, help="interleaved timing rounds")
    parser.add_argument(
        "--profile", type=int, default=0, metavar="N", help="print the top N of a cProfile run"
    )
    args = parser.parse_args()
    if args.files < 100:
        parser.error("--files must be at least 100")
    patterns = sum(len(p) for p in (*SIGNAL_PATTERNS.values(), *SERVICE_PATTERNS.values()))
    print(
        f"Classification: a {args.files:,}-file change, {patterns} patterns over "
        f"{len(SIGNAL_PATTERNS)} signals and {len(SERVICE_PATTERNS)} services, 3 tiers; "
        f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs, "
        + subprocess.run(["git", "--version"], capture_output=True, text=True).stdout.strip()
    )
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="clearance-bench-") as folder:
        with progress_bar() as progress:
            built = build_repository(Path(folder) / "repo", args.files, progress)
            built_in = time.perf_counter() - started
            records = [r for r in numstat(built).decode().split("\0") if r]
            paths = [r.split("\t", 2)[2] for r in records]
            binary = sum(1 for r in records if r.startswith("-\t"))
            added, removed = (
                sum(int(r.split("\t")[i]) for r in records if not r.startswith("-\t"))
                for i in (0, 1)
            )
            classification_module._CACHE.clear()
            result = classify_change(GitRepo(built.repo), built.base, built.head).classification
            problems, matched, total = check(result, paths)
            if set(paths) != built.changed:
                problems.append(f"git diff lists {len(paths)} files, the head changed "
                                f"{len(built.changed)}")  # fmt: skip
            figures = measure(built, args.rounds, progress)
        profiled = profile(built, args.profile) if args.profile else ""
    c = built.counts
    print(
        f"repository: {c['tree']:,} files at base; head modifies {c['modified']:,}, deletes "
        f"{c['deleted']:,}, adds {c['added']:,} ({binary} binary; +{added:,} -{removed:,} lines); "
        f"built and repacked in {built_in:.0f} s"
    )
    print(
        f"answer: tier {result.tier}, {len(result.signals)} signals, {len(result.services)} "
        f"services, {matched:,} of {total:,} files matched; "
        + ("same as pathspec file by file" if not problems else "DIFFERS from pathspec:")
    )
    for problem in problems[:10]:
        print(f"  {problem}")

    def ms(name: str) -> str:
        return f"{figures.median(name) * 1000:,.0f} ms"

    base_ms = ms("diff")
    warm_ok = figures.ratio("warm") <= GOAL and not problems
    cold_ok = figures.ratio("cold") <= GOAL and not problems
    rows = [
        ("(1) git diff --numstat (bare subprocess)", base_ms, "-", "-", "-", "-"),
        ("(2) classify_change, policy cached", ms("warm"), base_ms, f"{figures.ratio('warm'):.2f}x",
         f"<= {GOAL:.0f}x", verdict(warm_ok)),
        ("(2) classify_change, cold (first call)", ms("cold"), base_ms,
         f"{figures.ratio('cold'):.2f}x", f"<= {GOAL:.0f}x", verdict(cold_ok)),
        ("(3) GitRepo.change_set (git reads)", ms("change_set"), base_ms,
         f"{figures.ratio('change_set'):.2f}x", "-", "-"),
        ("(3) policy_at (committed policy, cached)", ms("policy_at"), base_ms,
         f"{figures.ratio('policy_at'):.2f}x", "-", "-"),
        ("(3) classify (matching + CEL only)", ms("classify"), base_ms,
         f"{figures.ratio('classify'):.2f}x", "-", "-"),
    ]  # fmt: skip
    print()
    print_table(rows)
    spread = ", ".join(
        f"{n} {min(figures.ratios(n)):.2f}-{max(figures.ratios(n)):.2f}"
        for n in ("warm", "cold", "classify")
    )
    print(
        f"  medians of {args.rounds} rounds, order rotated each round; ratio = median of the "
        f"per-round ratios to (1), range {spread}"
    )
    if profiled:
        print(f"\n{profiled.rstrip()}")
    print(f"\ntotal {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
