"""API benchmark: ``clearance serve`` on PostgreSQL under 32 concurrent clients (gate and attest).

Run it as ``.venv/bin/python bench/api.py [--clients 32] [--seconds 60] [--backend postgresql]``.
It builds, in a temporary ``CLEARANCE_HOME`` and a fresh PostgreSQL schema on 127.0.0.1:5432/test
(or a SQLite file with ``--backend sqlite``), an instance as a team would (``init``):

- a small real git repository whose head commit changes medication rules under
  ``services/orders/rules/`` and commits the reference policy (``tests/fixtures/clearance.yaml``),
  so the change is classified ``high``;
- A artifacts (default 4) built from that change, registered with that classification, with
  N evidence records between them (default 300: JUnit and generic JSON reports through
  ``attest``), approvals for every environment and promotions to dev and staging, so that a
  gate to prod has every control to check (and allows);
- API tokens made with ``create_token``: a ci token (attest) and an auditor token (gate).

Then it starts ``python -m clearance serve --workers W`` (default 1, ``--workers``) as a real
process on loopback, with the same ``CLEARANCE_HOME`` (the signing key) and
``CLEARANCE_DATABASE_URL``, waits until every worker has connected to the database, and measures:

(1) idle, one request at a time, interleaved with the same call in this process (the order
    rotated every round): ``GET /api/v1/artifacts/{digest}/gate?env=prod`` against
    ``gate(instance, digest, "prod")`` on the same database (warm, and with the ledger's
    per-subject cache emptied: what a gate costs right after new evidence), and the multipart
    ``POST /api/v1/artifacts/{digest}/evidence`` against ``attest``. The ratios are what the API
    adds (HTTP, token check, JSON) to the same work;
(2) under load: C clients (default 32, each a thread with its own keep-alive ``httpx.Client``)
    in a closed loop for S seconds (default 60), each picking an artifact at random and sending
    a gate (80%) or an attest of a small generic JSON report ``{"passed": true, ...}`` of type
    ``contract-tests`` (20%). Every request's latency and status are recorded; any status but
    200 is an error. Goal: gate p99 at most 100 ms. Then the same with two server processes on
    one database (clients split between them), the issue's scaling story (``--servers``).

Every load phase runs on its own fresh instance, built the same way, so phases compare like with
like (a gate reads all of an artifact's entries, and a phase adds thousands). After each phase it
checks that the evidence records added to the ledger are exactly the ones the successful attest
calls returned (no record lost or duplicated under load), and that ``verify_ledger`` passes.

The machine has few cores (2 where this was written) and the load generator, the server(s),
PostgreSQL and whatever else runs share them. The clients are threads that spend their time
blocked on a socket (the GIL released), so the generator is cheap; the output gives, per phase,
the cores each party used (this process, the servers with their worker processes, PostgreSQL
counted from /proc including backends that exited, everything else), the cores busy in the
second before (others' work) and the server CPU per request. Clients send their next request as
soon as the last is answered, so at saturation mean latency is clients / throughput (Little's
law): the latency figures are those of a saturated server, and the output prints that bound.
It always exits 0: it reports, it does not judge a build. Servers, schema and temporary files
are removed at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psycopg
from psycopg import sql
from rich.progress import Progress

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

# After the path is set:
from bench.common import git, print_table, progress_bar, verdict  # noqa: E402
from clearance.core.approvals import Meaning  # noqa: E402
from clearance.core.digests import Digest  # noqa: E402
from clearance.core.roles import Role  # noqa: E402
from clearance.settings import Settings  # noqa: E402
from clearance.usecases.artifacts import BuildInfo, register_artifact  # noqa: E402
from clearance.usecases.evidence import ATTESTED, attest  # noqa: E402
from clearance.usecases.identity import create_token  # noqa: E402
from clearance.usecases.instance import Instance, init  # noqa: E402
from clearance.usecases.ledger import Verification, verify_ledger  # noqa: E402
from clearance.usecases.releases import approve, gate, promote  # noqa: E402
from clearance.vcs.git import GitRepo  # noqa: E402

GATE_P99_GOAL_MS = 100.0
GATE_SHARE = 0.8
PG_BASE = os.environ.get("CLEARANCE_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/test")
POLICY = REPO / "tests" / "fixtures" / "clearance.yaml"
ADMIN = "admin@example.org"
CI = "ci-release-bot@example.org"
DEPLOYER = "deploy-bot@example.org"
APPROVERS = ("alice@example.org", "carol@example.org")  # the policy's two roles
ORIGIN = "bench.clearance.local/api"
AUTHOR = "dana@example.org"
FILES = {
    "README.md": "# Clinical platform\n",
    "docs/runbooks/orders.md": "# Orders runbook\n\nRollback: redeploy the previous digest.\n",
    "services/orders/app.py": "from services.orders.rules.medication import check_dose\n",
    "services/orders/rules/medication.py": 'MAX_MG_PER_KG = {"paracetamol": 15.0}\n',
    "web/portal/help.md": "# Help\n",
}
#: Evidence types of the set-up, cycled (JUnit for the test suites, generic JSON for the rest).
SETUP_TYPES = ("unit-tests", "integration-tests", "contract-tests", "sast", "sca", "sbom")
JUNIT_TYPES = ("unit-tests", "integration-tests")

# -- the instance -----------------------------------------------------------------------------


def build_repository(root: Path) -> tuple[str, str]:
    """A small repository, then one commit: the reference policy and a change to dose rules."""
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    for name, text in FILES.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "Orders service and patient portal")
    base = git(root, "rev-parse", "HEAD")
    (root / "clearance.yaml").write_text(POLICY.read_text())
    rules = root / "services/orders/rules/medication.py"
    rules.write_text(rules.read_text().replace("15.0", "12.5"))
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "Lower the paediatric paracetamol limit")
    return base, git(root, "rev-parse", "HEAD")


def junit(suite: str, tests: int) -> str:
    cases = "".join(
        f'<testcase classname="tests.{suite}" name="test_{i}" time="0.01"/>' for i in range(tests)
    )
    return (
        f'<?xml version="1.0" encoding="utf-8"?><testsuites><testsuite name="{suite}" '
        f'errors="0" failures="0" skipped="0" tests="{tests}" time="0.5">{cases}'
        "</testsuite></testsuites>"
    )


def report(kind: str, n: int) -> bytes:
    """A small passing report of ``kind``; ``n`` makes each one's bytes (and blob) distinct."""
    if kind in JUNIT_TYPES:
        return junit(f"{kind.split('-')[0]}_{n}", 20).encode()
    return json.dumps({"passed": True, "suite": "orders-api-v1", "checks": 14, "run": n}).encode()


@dataclass
class Setup:
    digests: list[Digest]
    tier: str
    ci_token: str
    auditor_token: str
    attest_s: float
    evidence: int
    entries: int
    allowed: bool


def build_instance(
    instance: Instance, folder: Path, artifacts: int, evidence: int, progress: Progress
) -> Setup:
    repo = folder / "repo"
    base, head = build_repository(repo)
    digests: list[Digest] = []
    tier = ""
    for i in range(artifacts):
        digest = Digest("sha256:" + hashlib.sha256(f"orders-{head}-{i}".encode()).hexdigest())
        registration = register_artifact(
            instance,
            build=BuildInfo(commit=head, branch="main", build_number=f"2026.03.{i}", builder="ci"),
            actor=CI,
            digest=digest,
            name=f"orders-{i}.zip",
            repo=GitRepo(repo),
            base=base,
        )
        tier = registration.entry.data["classification"]["tier"]
        digests.append(digest)

    reports = folder / "reports"
    reports.mkdir()
    task = progress.add_task(f"attest x {evidence:,} (set-up)", total=evidence)
    began = time.perf_counter()
    for n in range(evidence):
        kind = SETUP_TYPES[n % len(SETUP_TYPES)]
        path = reports / f"{kind}-{n}.{'xml' if kind in JUNIT_TYPES else 'json'}"
        path.write_bytes(report(kind, n))
        attest(instance, digests[(n // len(SETUP_TYPES)) % artifacts], kind, path, actor=CI)
        progress.advance(task)
    attest_s = time.perf_counter() - began

    for digest in digests:
        for env in ("dev", "staging", "prod"):
            for person in APPROVERS:
                approve(instance, digest, env=env, meaning=Meaning.APPROVAL, actor=person)
        for env in ("dev", "staging"):
            promote(instance, digest, env=env, actor=DEPLOYER)
    ci = create_token(instance, name="ci-bench", role=Role.CI, actor=ADMIN)
    auditor = create_token(instance, name="auditor-bench", role=Role.AUDITOR, actor=ADMIN)
    allowed = all(gate(instance, d, "prod").allowed for d in digests)
    return Setup(
        digests, tier, ci.token, auditor.token, attest_s, evidence, instance.ledger.size(), allowed
    )


@contextmanager
def database(backend: str, home: Path) -> Iterator[str]:
    """The database URL: a SQLite file in the home, or a fresh PostgreSQL schema, dropped after."""
    if backend == "sqlite":
        yield f"sqlite:///{home / 'clearance.db'}"
        return
    schema = "bench_api_" + uuid.uuid4().hex[:12]
    with psycopg.connect(PG_BASE, autocommit=True, connect_timeout=5) as admin:
        admin.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
        try:
            yield f"{PG_BASE}?options=-csearch_path%3D{schema}"
        finally:
            admin.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))


# -- the servers ------------------------------------------------------------------------------


def free_ports(count: int) -> int:
    """A port P such that P .. P+count-1 are free on loopback now."""
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            first = int(probe.getsockname()[1])
        try:
            for port in range(first, first + count):
                with socket.socket() as s:
                    s.bind(("127.0.0.1", port))
        except OSError:
            continue
        return first
    raise RuntimeError("no free consecutive ports on 127.0.0.1")


@dataclass
class Server:
    url: str
    process: subprocess.Popen[bytes]
    log: Path


@contextmanager
def servers(
    count: int, port: int, env: dict[str, str], folder: Path, workers: int = 1
) -> Iterator[list[Server]]:
    """``count`` ``clearance serve [--workers N]`` on ports port.., stopped (SIGTERM) afterwards."""
    started: list[Server] = []
    command = [sys.executable, "-m", "clearance", "serve", "--workers", str(workers), "--port"]
    try:
        for i in range(count):
            log = folder / f"server-{port + i}.log"
            with log.open("wb") as sink:
                process = subprocess.Popen(
                    [*command, str(port + i)],
                    cwd=REPO,
                    env=env,
                    stdout=sink,
                    stderr=subprocess.STDOUT,
                )
            started.append(Server(f"http://127.0.0.1:{port + i}", process, log))
        for server in started:
            wait_ready(server, workers)
        yield started
    finally:
        for server in started:
            server.process.terminate()
        for server in started:
            try:
                server.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                server.process.kill()
                server.process.wait()


def wait_ready(server: Server, workers: int = 1, timeout: float = 60.0) -> None:
    """Until the server answers and, with workers, each of them has its database connections.

    Workers share one listening socket: one that is still starting would leave the clients'
    keep-alive connections to the others.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            break
        try:
            answered = httpx.get(f"{server.url}/api/v1/key", timeout=2).status_code == 200
        except httpx.HTTPError:
            answered = False
        if answered and (workers == 1 or len(serving_workers(server.process.pid)) == workers):
            return
        time.sleep(0.1)
    tail = server.log.read_text(errors="replace")[-2000:]
    raise RuntimeError(f"the server at {server.url} did not start:\n{tail}")


def serving_workers(parent: int) -> list[int]:
    """The worker processes of a ``--workers`` server that have connected to the database.

    A worker opens the instance (a database connection, or the SQLite file) at the end of its
    start-up, just before it accepts connections: near enough to "ready" for a benchmark.
    """
    postgres = set()  # socket inodes of TCP connections to port 5432
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                cols = line.split()
                if cols[2].endswith(":1538"):  # remote port 5432
                    postgres.add(cols[9])
    ready = []
    for pid, (_, ppid, _) in processes().items():
        if ppid != parent:
            continue
        try:
            links = [os.readlink(f) for f in Path(f"/proc/{pid}/fd").iterdir()]
        except OSError:
            continue
        inodes = {link[8:-1] for link in links if link.startswith("socket:[")}
        if inodes & postgres or any(link.endswith(".db") for link in links):
            ready.append(pid)
    return ready


# -- load -------------------------------------------------------------------------------------


@dataclass
class Calls:
    """Per operation: latencies (s) of the 200s, statuses, and the ledger seqs attest returned."""

    latency: dict[str, list[float]] = field(default_factory=lambda: {"gate": [], "attest": []})
    statuses: Counter[tuple[str, int]] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)
    attested: list[int] = field(default_factory=list)

    def merge(self, other: Calls) -> None:
        for op, values in other.latency.items():
            self.latency[op].extend(values)
        self.statuses.update(other.statuses)
        self.errors.extend(other.errors[: max(0, 5 - len(self.errors))])
        self.attested.extend(other.attested)

    def failed(self) -> int:
        return sum(n for (_, status), n in self.statuses.items() if status != 200)


class Client:
    """One API client: a keep-alive connection, the two tokens, the two calls."""

    def __init__(self, url: str, setup: Setup, seed: int) -> None:
        self.http = httpx.Client(base_url=f"{url}/api/v1", timeout=30.0)
        self.gate_auth = {"Authorization": f"Bearer {setup.auditor_token}"}
        self.ci_auth = {"Authorization": f"Bearer {setup.ci_token}"}
        self.seed = seed
        self.sent = 0

    def close(self) -> None:
        self.http.close()

    def gate(self, digest: Digest) -> httpx.Response:
        path = f"/artifacts/{digest}/gate"
        return self.http.get(path, params={"env": "prod"}, headers=self.gate_auth)

    def attest(self, digest: Digest) -> httpx.Response:
        self.sent += 1
        body = json.dumps(
            {
                "passed": True,
                "suite": "orders-api-v1",
                "checks": 14,
                "client": self.seed,
                "run": self.sent,
            }
        ).encode()
        files = {"report": ("contract-tests.json", body, "application/json")}
        return self.http.post(
            f"/artifacts/{digest}/evidence",
            data={"type": "contract-tests"},
            files=files,
            headers=self.ci_auth,
        )


@dataclass
class Window:
    """When the timed load starts and stops (set once every client is connected)."""

    began: float = 0.0
    stop: float = 0.0


def drive(client: Client, digests: list[Digest], start: threading.Barrier, window: Window) -> Calls:
    """Closed loop until the window closes: send, wait for the answer, record, send the next."""
    rng = random.Random(client.seed)
    calls = Calls()
    try:
        client.gate(digests[0])  # untimed: the connection, the server's caches
    except httpx.HTTPError as exc:
        calls.errors.append(f"warm-up gate: {type(exc).__name__}: {exc}")
    start.wait()
    while time.perf_counter() < window.stop:
        op = "gate" if rng.random() < GATE_SHARE else "attest"
        digest = rng.choice(digests)
        began = time.perf_counter()
        try:
            response = client.gate(digest) if op == "gate" else client.attest(digest)
        except httpx.HTTPError as exc:
            calls.statuses[op, 0] += 1
            calls.errors.append(f"{op}: {type(exc).__name__}: {exc}")
            continue
        elapsed = time.perf_counter() - began
        calls.statuses[op, response.status_code] += 1
        if response.status_code != 200:
            calls.errors.append(f"{op}: {response.status_code} {response.text[:200]}")
            continue
        calls.latency[op].append(elapsed)
        if op == "attest":
            calls.attested.append(int(response.json()["entry"]))
    return calls


def proc_stat(pid: str) -> tuple[str, int, list[int]]:
    """A process's command name, parent and CPU ticks (utime, stime, cutime, cstime)."""
    text = Path(f"/proc/{pid}/stat").read_text()
    fields = text.rsplit(")", 1)[1].split()
    return text.split("(", 1)[1].rsplit(")", 1)[0], int(fields[1]), [int(x) for x in fields[11:15]]


def processes() -> dict[int, tuple[str, int, list[int]]]:
    """Every process we may read: its command name, parent and CPU ticks."""
    procs: dict[int, tuple[str, int, list[int]]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                procs[int(entry.name)] = proc_stat(entry.name)
            except (OSError, IndexError, ValueError):
                continue  # gone, or not ours to read
    return procs


def postgres_ticks(procs: dict[int, tuple[str, int, list[int]]]) -> int:
    """CPU ticks of the local PostgreSQL: its live processes, and the exited backends it reaped.

    Backends that come and go between two readings are counted too: a process's CPU moves to
    its parent's ``cutime``/``cstime`` when it is reaped. All databases, not only ours.
    """
    postgres = {
        pid: (parent, ticks) for pid, (name, parent, ticks) in procs.items() if name == "postgres"
    }
    total = 0
    for parent, ticks in postgres.values():
        total += ticks[0] + ticks[1]
        if parent not in postgres:  # the postmaster: its reaped children too
            total += ticks[2] + ticks[3]
    return total


def server_ticks(procs: dict[int, tuple[str, int, list[int]]], pids: list[int]) -> int:
    """CPU ticks of the server processes and their descendants (``--workers`` processes)."""
    tree = set(pids)
    grew = True
    while grew:
        grew = False
        for pid, (_, parent, _) in procs.items():
            if parent in tree and pid not in tree:
                tree.add(pid)
                grew = True
    return sum(sum(procs[pid][2][:2]) for pid in tree if pid in procs)


@dataclass
class Cpu:
    """CPU seconds so far: the machine's (all CPUs), this process's, the servers', PostgreSQL's."""

    at: float
    busy: float
    own: float
    servers: float
    postgres: float

    @classmethod
    def now(cls, pids: list[int]) -> Cpu:
        tick = os.sysconf("SC_CLK_TCK")
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
        busy = sum(fields[:8]) - fields[3] - fields[4]  # all but idle and iowait
        procs = processes()
        times = os.times()
        return cls(
            time.perf_counter(),
            busy / tick,
            times.user + times.system,
            server_ticks(procs, pids) / tick,
            postgres_ticks(procs) / tick,
        )

    @classmethod
    def background(cls, pids: list[int], seconds: float = 1.0) -> float:
        """Cores busy over ``seconds`` before the load: other work on the machine, not ours."""
        before = cls.now(pids)
        time.sleep(seconds)
        after = cls.now(pids)
        return (after.busy - before.busy) / (after.at - before.at)


@dataclass
class Load:
    servers: int
    clients: int
    wall: float
    calls: Calls
    cores: dict[str, float]
    server_cpu: float  # CPU seconds of the server processes during the load
    added: list[int]

    def rate(self) -> float:
        return (len(self.calls.latency["gate"]) + len(self.calls.latency["attest"])) / self.wall


def run_load(
    instance: Instance,
    urls: list[str],
    pids: list[int],
    setup: Setup,
    args: argparse.Namespace,
    progress: Progress,
) -> Load:
    before = {e.seq for e in instance.ledger.find(kinds=[ATTESTED])}
    background = Cpu.background(pids)
    clients = [Client(urls[i % len(urls)], setup, i) for i in range(args.clients)]
    results: list[Calls] = [Calls() for _ in clients]
    window = Window()

    def open_window() -> None:  # run by the last thread to reach the barrier, before release
        window.began = time.perf_counter()
        window.stop = window.began + args.seconds

    start = threading.Barrier(args.clients + 1, action=open_window)

    def work(i: int) -> None:
        results[i] = drive(clients[i], setup.digests, start, window)

    threads = [threading.Thread(target=work, args=(i,), daemon=True) for i in range(len(clients))]
    label = f"load: {len(urls)} server{'s' * (len(urls) > 1)}, {args.clients} clients"
    task = progress.add_task(label, total=args.seconds)
    try:
        for t in threads:
            t.start()
        start.wait(timeout=120)
        cpu0 = Cpu.now(pids)
        while (left := window.stop - time.perf_counter()) > 0:
            time.sleep(min(1.0, left))
            progress.update(task, completed=min(args.seconds, time.perf_counter() - window.began))
        for t in threads:
            t.join(timeout=60)
        wall, cpu1 = time.perf_counter() - window.began, Cpu.now(pids)
    finally:
        for c in clients:
            c.close()
    calls = Calls()
    for r in results:
        calls.merge(r)
    span = cpu1.at - cpu0.at
    own, srv = (cpu1.own - cpu0.own) / span, (cpu1.servers - cpu0.servers) / span
    busy, pg = (cpu1.busy - cpu0.busy) / span, (cpu1.postgres - cpu0.postgres) / span
    cores = {
        "load generator": own,
        "server" + "s" * (len(urls) > 1): srv,
        "PostgreSQL (all its clients)": pg,
        "other processes": max(0.0, busy - own - srv - pg),
        "idle": max(0.0, (os.cpu_count() or 1) - busy),
        "busy in the second before (not us)": background,
    }
    added = sorted({e.seq for e in instance.ledger.find(kinds=[ATTESTED])} - before)
    return Load(len(urls), args.clients, wall, calls, cores, cpu1.servers - cpu0.servers, added)


# -- idle, interleaved ------------------------------------------------------------------------


def interleaved(
    steps: dict[str, Callable[[], object]], rounds: int, progress: Progress, label: str
) -> dict[str, list[float]]:
    """Each step once per round, the order rotated every round; wall seconds per call."""
    for step in steps.values():
        step()
    names = list(steps)
    times: dict[str, list[float]] = {n: [] for n in names}
    task = progress.add_task(label, total=rounds)
    for i in range(rounds):
        shift = i % len(names)
        for name in names[shift:] + names[:shift]:
            began = time.perf_counter()
            steps[name]()
            times[name].append(time.perf_counter() - began)
        progress.advance(task)
    return times


def idle_comparison(
    instance: Instance, url: str, setup: Setup, folder: Path, rounds: int, progress: Progress
) -> dict[str, list[float]]:
    client = Client(url, setup, seed=-1)
    digest = setup.digests[0]
    spool = folder / "idle-contract-tests.json"
    runs = [0]

    def ok(response: httpx.Response) -> None:
        if response.status_code != 200:
            raise RuntimeError(f"{response.request.url}: {response.status_code} {response.text}")

    def cold_gate() -> None:
        instance.ledger._about.clear()  # as after new evidence: read and decode every entry
        gate(instance, digest, "prod")

    def local_attest() -> None:
        runs[0] += 1
        spool.write_bytes(report("contract-tests", 10**6 + runs[0]))
        attest(instance, digest, "contract-tests", spool, actor=CI)

    try:
        gates = interleaved(
            {
                "gate in-process": lambda: gate(instance, digest, "prod"),
                "gate in-process, cache emptied": cold_gate,
                "gate API": lambda: ok(client.gate(digest)),
            },
            rounds,
            progress,
            "idle: gate, interleaved",
        )
        attests = interleaved(
            {"attest in-process": local_attest, "attest API": lambda: ok(client.attest(digest))},
            max(10, rounds // 5),
            progress,
            "idle: attest, interleaved",
        )
    finally:
        client.close()
    return {**gates, **attests}


# -- report -----------------------------------------------------------------------------------


def p50(values: list[float]) -> float:
    return statistics.median(values) if values else 0.0


def p99(values: list[float]) -> float:
    if len(values) < 2:
        return values[0] if values else 0.0
    return statistics.quantiles(values, n=100, method="inclusive")[98]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def ratio(value: float, baseline: float) -> str:
    return f"{value / baseline:.2f}x" if baseline else "-"


Row = tuple[str, ...]


def compared(label: str, values: list[float], baseline: list[float]) -> list[Row]:
    """p50 and p99 of ``values`` next to ``baseline``'s and their ratios (no goal)."""
    return [
        (f"{label} {name}", ms(q(values)), ms(q(baseline)), ratio(q(values), q(baseline)), "-", "-")
        for name, q in (("p50", p50), ("p99", p99))
    ]


def idle_rows(idle: dict[str, list[float]]) -> list[Row]:
    warm = idle["gate in-process"]
    return [
        *compared("idle, 1 client: gate via API", idle["gate API"], warm),
        *compared(
            "  in-process gate, cache emptied,", idle["gate in-process, cache emptied"], warm
        ),
        *compared("idle, 1 client: attest via API", idle["attest API"], idle["attest in-process"]),
    ]


def load_rows(load: Load, idle: dict[str, list[float]], first: Load | None) -> list[Row]:
    gates, attests = load.calls.latency["gate"], load.calls.latency["attest"]
    name = f"{load.servers} server{'s' * (load.servers > 1)}, {load.clients} clients:"
    rate, gate_ok = load.rate(), p99(gates) * 1000 <= GATE_P99_GOAL_MS
    scaling = (f"{first.rate():,.0f}/s", ratio(rate, first.rate())) if first else ("-", "-")
    gate50, gate99 = compared("  gate", gates, idle["gate in-process"])
    returned = sorted(load.calls.attested)
    same = "=" if len(returned) == len(load.added) else "!="
    failed = load.calls.failed()
    return [
        (f"{name} requests/s", f"{rate:,.0f}/s", *scaling, "-", "-"),
        ("  gate / attest requests/s",
         f"{len(gates) / load.wall:,.0f} / {len(attests) / load.wall:,.0f}", "-", "-", "-", "-"),
        gate50,
        (*gate99[:4], f"<= {GATE_P99_GOAL_MS:.0f} ms", verdict(gate_ok)),
        ("  gate max", ms(max(gates, default=0.0)), "-", "-", "-", "-"),
        *compared("  attest", attests, idle["attest in-process"]),
        ("  attest max", ms(max(attests, default=0.0)), "-", "-", "-", "-"),
        ("  errors (not 200, or no answer)", f"{failed:,}", "-", "-", "0", verdict(failed == 0)),
        ("  evidence records added vs attest 200s",
         f"{len(load.added):,} {same} {len(returned):,}", "-", "-", "same seqs",
         verdict(returned == load.added)),
    ]  # fmt: skip


def notes(loads: list[Load], idle_rounds: int) -> list[str]:
    lines = [
        f"idle: {idle_rounds} rounds of gate (in-process, in-process with the ledger's "
        f"per-subject cache emptied, API), {max(10, idle_rounds // 5)} of attest (in-process, "
        "API), the order rotated every round; the baselines under load are the idle in-process "
        "figures",
    ]
    for load in loads:
        rate = load.rate()
        requests = rate * load.wall
        lines.append(
            f"{load.servers} server(s), {load.wall:.1f} s; CPU in cores of {os.cpu_count()}: "
            + ", ".join(f"{k} {v:.2f}" for k, v in load.cores.items())
            + f"; server CPU {load.server_cpu / requests * 1000:.1f} ms per request; "
            f"Little's law: {load.clients} clients / {rate:,.0f} req/s = "
            f"{load.clients / rate * 1000:.0f} ms mean latency"
        )
        statuses = ", ".join(f"{op} {st}: {n:,}" for (op, st), n in load.calls.statuses.items())
        lines.append(f"  statuses: {statuses}")
        lines += [f"  e.g. {error}" for error in load.calls.errors[:5]]
    return lines


@dataclass
class Phase:
    """One load phase on its own fresh instance, and what the ledger looked like after it."""

    setup: Setup
    load: Load
    verification: Verification
    history: list[int]
    where: str


def run_phase(
    count: int,
    folder: Path,
    port: int,
    args: argparse.Namespace,
    idle: dict[str, list[float]],
    progress: Progress,
) -> Phase:
    """A fresh instance (so every phase starts from the same ledger), ``count`` servers, load.

    The first phase also fills ``idle`` (the one-request-at-a-time comparison).
    """
    home = folder / "home"
    with ExitStack() as stack:
        url = stack.enter_context(database(args.backend, home))
        settings = Settings.from_env({"CLEARANCE_DATABASE_URL": url}, home=home)
        instance = stack.enter_context(init(settings, actor=ADMIN, origin=ORIGIN))
        setup = build_instance(instance, folder, args.artifacts, args.evidence, progress)
        env = {k: v for k, v in os.environ.items() if not k.startswith("CLEARANCE_")}
        env |= {"CLEARANCE_HOME": str(home), "CLEARANCE_DATABASE_URL": url}
        with servers(count, port, env, folder, args.workers) as running:
            if not idle:
                idle |= idle_comparison(
                    instance, running[0].url, setup, folder, args.repeats, progress
                )
            urls, pids = [s.url for s in running], [s.process.pid for s in running]
            load = run_load(instance, urls, pids, setup, args, progress)
        task = progress.add_task("verify_ledger", total=None)
        verification = verify_ledger(instance)
        progress.update(task, total=1, completed=1)
        history = [len(instance.ledger.find(subject=d, kinds=[ATTESTED])) for d in setup.digests]
        return Phase(setup, load, verification, history, instance.db.describe())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=32, help="concurrent API clients")
    parser.add_argument("--seconds", type=float, default=60.0, help="length of each load phase")
    parser.add_argument("--backend", choices=["postgresql", "sqlite"], default="postgresql")
    parser.add_argument("--servers", default="1,2", help="server processes per phase: 1 or 1,2")
    parser.add_argument("--workers", type=int, default=1, help="`serve --workers` of each server")
    parser.add_argument("--artifacts", type=int, default=4, help="registered artifacts")
    parser.add_argument("--evidence", type=int, default=300, help="set-up evidence records")
    parser.add_argument("--repeats", type=int, default=200, help="idle interleaved gate rounds")
    parser.add_argument("--port", type=int, default=0, help="first server port (0: any free)")
    args = parser.parse_args()
    counts = [int(x) for x in args.servers.split(",") if x.strip().isdigit()]
    if args.clients < 1 or args.seconds < 1 or args.artifacts < 1 or args.repeats < 10:
        parser.error("need --clients >= 1, --seconds >= 1, --artifacts >= 1, --repeats >= 10")
    if args.workers < 1:
        parser.error("need --workers >= 1")
    if not counts or counts[0] != 1 or max(counts) > args.clients:
        parser.error("--servers is a list of server counts starting with 1, e.g. 1 or 1,2")

    print(
        f"API: {args.clients} clients x {args.seconds:.0f} s per phase, gate {GATE_SHARE:.0%} / "
        f"attest {1 - GATE_SHARE:.0%}, {args.backend}; {args.artifacts} artifacts with "
        f"{args.evidence} evidence records; `clearance serve --workers {args.workers}`; "
        f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs"
    )
    print(
        "the load generator (this process, a thread per client) shares the CPUs with the "
        "server(s) and the database, and with whatever else runs: see the CPU split per phase"
    )
    began = time.perf_counter()
    phases: list[Phase] = []
    idle: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="clearance-bench-api-") as tmp, progress_bar() as bar:
        port = args.port or free_ports(max(counts))
        for count in counts:
            folder = Path(tmp) / f"{count}-servers"
            folder.mkdir()
            phases.append(run_phase(count, folder, port, args, idle, bar))

    setup = phases[0].setup
    print(
        f"set-up, the same for every phase (a fresh instance each): tier {setup.tier}; "
        f"{setup.evidence} evidence records by in-process attest "
        f"({setup.attest_s / setup.evidence * 1000:.1f} ms each), approvals, promotions to dev "
        f"and staging: the gate to prod {'allows' if setup.allowed else 'BLOCKS'}; "
        f"{setup.entries:,} ledger entries; {phases[0].where}"
    )
    rows = idle_rows(idle)
    for i, phase in enumerate(phases):
        rows += load_rows(phase.load, idle, phases[0].load if i else None)
        problems = phase.verification.problems
        rows.append(
            (f"  verify_ledger ({phase.verification.size:,} entries)",
             "OK" if phase.verification.ok else f"{len(problems)} problems", "-", "-", "OK",
             verdict(phase.verification.ok))
        )  # fmt: skip
    print()
    print_table(rows)
    for line in notes([p.load for p in phases], args.repeats):
        print(f"  {line}")
    for phase in phases:
        print(
            f"  {phase.load.servers} server(s): evidence records per artifact "
            f"{args.evidence // args.artifacts} or so at the start, "
            f"{min(phase.history):,}-{max(phase.history):,} at the end (a gate reads every one)"
        )
        if phase.verification.problems:
            first = phase.verification.problems[0]
            print(f"  first problem: entry {first.seq}: {first.message}")
    print(f"\ntotal {time.perf_counter() - began:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
