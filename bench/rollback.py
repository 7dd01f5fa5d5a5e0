"""Rollback benchmark: how fast a canary stops taking traffic, and whether any request fails.

Run it as ``.venv/bin/python bench/rollback.py [--rounds N] [--rate R] [--no-nginx]``. For each
router of the local deployer (the built-in one, then nginx when ``/usr/sbin/nginx`` exists) it
starts an agent in a temporary state directory, deploys a tiny stdlib HTTP app as ``stable``
(1.0.0) and ``canary`` (1.1.0), and sends steady traffic: R requests per second (default 200)
from a pool of client threads, each request timed against the wall clock and its
``X-Clearance-Slot`` header kept. Then N rounds (default 5):

1. route 75% stable / 25% canary and let the traffic run for a second;
2. ask for the rollback, ``LocalDeployer.route(service, Routes.only("stable"))``, and time until
   the call returns: the router confirms (built-in: the routing table is swapped; nginx: the
   reloaded configuration runs and the old workers have finished their last requests);
3. check that no request that *started* after the confirmation was served by the canary, both
   from the response headers and from the agent's request records (a record's start is its
   response time less its latency), and count the requests that failed (an HTTP error status
   or no answer at all) in the round.

The baseline is the bare router reconfiguration timed in the same run: the same ``route`` call
with no traffic at all (a PUT /routes round trip, for nginx including the reload). The in-process
swap of the built-in router's routing object is printed for context. Goals: the rollback
confirmed within 1 s, zero failed requests, zero canary requests after the confirmation. It
always exits 0: it reports, it does not judge a build.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from rich.progress import Progress

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

# After the path is set:
from bench.common import print_table, progress_bar, verdict  # noqa: E402
from clearance.deploy import Routes, ServiceSpec, SlotSpec  # noqa: E402
from clearance.deploy.local import LocalDeployer  # noqa: E402
from clearance.deploy.local.nginx import NGINX  # noqa: E402
from clearance.deploy.local.processes import free_port  # noqa: E402
from clearance.deploy.local.router import RouteTable  # noqa: E402

GOAL_S = 1.0
SERVICE = "orders"
APP = """
import json, os, sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    def log_message(self, *args):
        pass
    def do_GET(self):
        body = json.dumps({"version": sys.argv[2]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

server = ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler)
server.daemon_threads = True
server.serve_forever()
"""


@dataclass
class Traffic:
    """Paced GETs at ``rate`` per second from ``workers`` threads: (start, slot, status)."""

    url: str
    rate: float
    workers: int = 8
    seen: list[tuple[float, str | None, int | None]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    @contextmanager
    def running(self) -> Iterator[Traffic]:
        began = time.monotonic()
        threads = [
            threading.Thread(target=self._worker, args=(i, began), daemon=True)
            for i in range(self.workers)
        ]
        for thread in threads:
            thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            for thread in threads:
                thread.join(10)

    def _worker(self, index: int, began: float) -> None:
        interval = self.workers / self.rate
        next_at = began + index / self.rate
        with httpx.Client(trust_env=False, timeout=5.0) as http:
            while not self._stop.is_set():
                pause = next_at - time.monotonic()
                if pause > 0:
                    time.sleep(pause)
                next_at += interval
                start = time.time()
                try:
                    answer = http.get(self.url + "/orders")
                    slot = answer.headers.get("x-clearance-slot")
                    self.seen.append((start, slot, answer.status_code))
                except httpx.HTTPError:
                    self.seen.append((start, None, None))

    def between(self, start: float, end: float) -> list[tuple[float, str | None, int | None]]:
        return [s for s in list(self.seen) if start <= s[0] < end]


@dataclass
class Round:
    confirm_s: float
    last_canary_s: float  # the last canary request's start, after the ask (0 if none)
    canary_after_headers: int
    canary_after_records: int
    failed: int
    requests: int


@dataclass
class Result:
    router: str
    bare_s: list[float]
    rounds: list[Round]
    served: int
    rate: float  # achieved requests per second


def measure(router: str, folder: Path, rounds: int, rate: float, progress: Progress) -> Result:
    app = folder / "app.py"
    app.write_text(APP)
    port = free_port()
    deployer = LocalDeployer(folder / router, router=router, ports={SERVICE: port})
    task = progress.add_task(f"{router}: rounds", total=rounds * 2)
    try:
        spec = ServiceSpec(
            SERVICE, f"{sys.executable} {app} {{port}} {{version}}", ready_timeout=10
        )
        deployer.deploy(spec, SlotSpec("stable", "sha256:" + "a" * 64, "1.0.0"))
        deployer.deploy(spec, SlotSpec("canary", "sha256:" + "b" * 64, "1.1.0"))
        split = Routes({"stable": 75, "canary": 25})
        bare = []
        for _ in range(rounds):  # the baseline: the same call, no traffic
            deployer.route(SERVICE, split)
            asked = time.perf_counter()
            deployer.route(SERVICE, Routes.only("stable"))
            bare.append(time.perf_counter() - asked)
            progress.advance(task)
        results = []
        traffic = Traffic(f"http://127.0.0.1:{port}", rate)
        with traffic.running():
            time.sleep(0.5)
            for _ in range(rounds):
                deployer.route(SERVICE, split)
                time.sleep(1.0)
                asked = time.time()
                deployer.route(SERVICE, Routes.only("stable"))
                confirmed = time.time()
                time.sleep(0.5)
                results.append(judge(deployer, traffic, asked, confirmed))
                progress.advance(task)
            starts = [start for start, _, _ in traffic.seen]
    finally:
        deployer.stop()
    rate_seen = len(starts) / (max(starts) - min(starts)) if len(starts) > 1 else 0.0
    return Result(router, bare, results, len(starts), rate_seen)


def judge(deployer: LocalDeployer, traffic: Traffic, asked: float, confirmed: float) -> Round:
    window = traffic.between(asked - 1.0, confirmed + 0.5)
    canary_starts = [start for start, slot, _ in window if slot == "canary" and start >= asked]
    records = deployer.records(SERVICE, confirmed - 1.0, time.time(), slot="canary")
    late_records = [
        r for r in records if "status" in r and r["t"] - r["ms"] / 1000.0 > confirmed + 0.002
    ]
    return Round(
        confirm_s=confirmed - asked,
        last_canary_s=max(canary_starts, default=asked) - asked,
        canary_after_headers=sum(1 for s in canary_starts if s > confirmed),
        canary_after_records=len(late_records),
        failed=sum(1 for _, _, status in window if status != 200),
        requests=len(window),
    )


def swap_us() -> float:
    """The in-process swap of the built-in router's routing object, microseconds."""
    backends = {"stable": None, "canary": None}

    class Holder:
        table = RouteTable.build({"stable": 75, "canary": 25}, {}, backends)  # type: ignore[arg-type]

    n = 20_000
    began = time.perf_counter()
    for _ in range(n):
        Holder.table = RouteTable.build({"stable": 100}, {}, backends)  # type: ignore[arg-type]
    return (time.perf_counter() - began) / n * 1e6


def rows_for(result: Result) -> list[tuple[str, ...]]:
    def ms(seconds: float) -> str:
        return f"{seconds * 1000:.1f} ms"

    confirm = [r.confirm_s for r in result.rounds]
    last = [r.last_canary_s for r in result.rounds]
    bare_median = statistics.median(result.bare_s)
    failed = sum(r.failed for r in result.rounds)
    late = sum(r.canary_after_headers + r.canary_after_records for r in result.rounds)
    name = result.router
    return [
        (f"{name}: rollback confirmed, median", ms(statistics.median(confirm)), ms(bare_median),
         f"{statistics.median(confirm) / bare_median:.2f}x", f"<= {GOAL_S * 1000:.0f} ms",
         verdict(statistics.median(confirm) <= GOAL_S)),
        (f"{name}: rollback confirmed, max", ms(max(confirm)), ms(max(result.bare_s)),
         f"{max(confirm) / max(result.bare_s):.2f}x", f"<= {GOAL_S * 1000:.0f} ms",
         verdict(max(confirm) <= GOAL_S)),
        (f"{name}: last canary start after ask, max", ms(max(last)), "-", "-", "-", "-"),
        (f"{name}: canary requests after confirm", str(late), "-", "-", "0", verdict(late == 0)),
        (f"{name}: failed requests in switch rounds", f"{failed} of "
         f"{sum(r.requests for r in result.rounds):,}", "-", "-", "0", verdict(failed == 0)),
    ]  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5, help="rollbacks per router")
    parser.add_argument("--rate", type=float, default=200.0, help="requests per second")
    parser.add_argument("--no-nginx", action="store_true", help="only the built-in router")
    args = parser.parse_args()
    if args.rounds < 1 or args.rate <= 0:
        parser.error("need --rounds >= 1 and --rate > 0")
    routers = ["builtin"]
    if not args.no_nginx and os.access(NGINX, os.X_OK):
        routers.append("nginx")
    print(
        f"Rollback: {args.rounds} rounds per router ({', '.join(routers)}), 75/25 -> 100/0 under "
        f"{args.rate:.0f} req/s; Python {sys.version.split()[0]}, {os.cpu_count()} CPUs"
    )
    if "nginx" not in routers:
        print(f"nginx: skipped ({'--no-nginx' if args.no_nginx else f'{NGINX} is missing'})")
    results = []
    with tempfile.TemporaryDirectory(prefix="clearance-bench-") as folder, progress_bar() as bar:
        for router in routers:
            results.append(measure(router, Path(folder), args.rounds, args.rate, bar))
    for result in results:
        print(f"{result.router}: {result.served:,} requests sent, {result.rate:.0f} req/s")
    rows: list[tuple[str, ...]] = []
    for result in results:
        rows += rows_for(result)
    rows.append(("builtin: in-process table swap", f"{swap_us():.1f} us", "-", "-", "-", "-"))
    print_table(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
