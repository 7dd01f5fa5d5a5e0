"""Ingest benchmark: ``read_report`` on a 200,000-case JUnit report (a measurement, not a test).

Run it as ``.venv/bin/python bench/ingest.py [--cases N] [--runs R]``. On one generated report
(about 18 MB, 5 % failures, in the shape pytest writes) it measures:

(a) parse time: ``clearance.evidence.read_report`` against a plain
    ``xml.etree.ElementTree.iterparse`` pass over the same file (iterate the end events, clear
    each element); goal: at most 2x. For context it also times ``defusedxml.ElementTree.iterparse``
    with the same loop, the safe parser used the obvious way.
(b) peak memory of ``read_report``, each figure in a fresh interpreter: the peak resident size
    minus the resident size after imports, and the ``tracemalloc`` peak; goal: at most 64 MB.
    The peak is ``VmHWM`` from ``/proc/self/status``, the same high-water mark as
    ``getrusage(RUSAGE_SELF).ru_maxrss`` except that ``ru_maxrss`` survives ``exec``: a child
    of this (larger) process would report our own peak, not its own.

Every figure is the median of R runs. It always exits 0: it reports, it does not judge a build.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path

import defusedxml.ElementTree as DefusedET

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from clearance.evidence import read_report  # noqa: E402 - after the path is set

TIME_GOAL = 2.0
MEMORY_GOAL_MB = 64.0

_RSS_PROBE = """
import json, sys
from pathlib import Path
from clearance.evidence import read_report

def status_kb(field):
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])

before = status_kb("VmRSS")
report = read_report(Path(sys.argv[1]))
after = status_kb("VmHWM")
print(json.dumps({"before_kb": before, "after_kb": after, "tests": report.summary["tests"]}))
"""
_TRACEMALLOC_PROBE = """
import json, sys, tracemalloc
from pathlib import Path
from clearance.evidence import read_report
tracemalloc.start()
read_report(Path(sys.argv[1]))
print(json.dumps({"peak": tracemalloc.get_traced_memory()[1]}))
"""


def generate(path: Path, cases: int, failure_rate: float = 0.05) -> int:
    """A pytest-style JUnit report; returns how many cases fail."""
    rng = random.Random(2026)
    failures = 0
    with path.open("w", encoding="utf-8") as out:
        out.write('<?xml version="1.0" encoding="utf-8"?>')
        out.write('<testsuites name="pytest tests">')
        out.write(f'<testsuite name="pytest" errors="0" tests="{cases}" time="1.0" ')
        out.write('timestamp="2026-11-02T09:30:00+00:00" hostname="ci">')
        for i in range(cases):
            out.write(
                f'<testcase classname="tests.test_orders_{i // 250}" '
                f'name="test_total_{i}" time="{rng.random() / 50:.3f}"'
            )
            if rng.random() < failure_rate:
                failures += 1
                out.write(
                    '><failure message="assert 41 == 42">def test_total():\n'
                    "&gt;       assert total(order) == 42\nE       assert 41 == 42\n\n"
                    f"tests/unit/test_orders.py:{i % 400}: AssertionError</failure></testcase>"
                )
            else:
                out.write(" />")
        out.write("</testsuite></testsuites>\n")
    return failures


def plain_iterparse(path: Path) -> None:
    for _, element in ET.iterparse(path):
        element.clear()


def defused_iterparse(path: Path) -> None:
    events = DefusedET.iterparse(path, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    for _, element in events:
        element.clear()


def ours(path: Path) -> None:
    read_report(path)


def timed(fn: Callable[[Path], None], path: Path) -> float:
    start = time.perf_counter()
    fn(path)
    return time.perf_counter() - start


def probe(code: str, path: Path) -> dict[str, int]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run(
        [sys.executable, "-c", code, str(path)],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO,
        env=env,
    )
    result: dict[str, int] = json.loads(proc.stdout)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cases", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="clearance-bench-") as folder:
        path = Path(folder) / "junit.xml"
        failures = generate(path, args.cases)
        size_mb = path.stat().st_size / 1e6

        report = read_report(path)  # also warms the page cache
        assert report.summary["tests"] == args.cases, report.summary
        assert report.summary["failures"] == failures, report.summary

        times: dict[str, list[float]] = {"plain": [], "defused": [], "ours": []}
        for _ in range(args.runs):
            times["plain"].append(timed(plain_iterparse, path))
            times["ours"].append(timed(ours, path))
            times["defused"].append(timed(defused_iterparse, path))
        plain, defused, mine = (statistics.median(times[k]) for k in ("plain", "defused", "ours"))
        ratio = mine / plain

        rss = [probe(_RSS_PROBE, path) for _ in range(args.runs)]
        rss_mb = statistics.median((r["after_kb"] - r["before_kb"]) / 1024 for r in rss)
        base_mb = statistics.median(r["before_kb"] / 1024 for r in rss)
        traced_mb = statistics.median(
            probe(_TRACEMALLOC_PROBE, path)["peak"] / 2**20 for _ in range(min(args.runs, 3))
        )

    def verdict(ok: bool) -> str:
        return "PASS" if ok else "FAIL"

    rows = [
        ("parse: ElementTree.iterparse (baseline)", f"{plain:.3f} s", "", ""),
        ("parse: defusedxml iterparse (context)", f"{defused:.3f} s", "", ""),
        ("parse: read_report", f"{mine:.3f} s", "", ""),
        ("time ratio read_report / baseline", f"{ratio:.2f}x", f"<= {TIME_GOAL:.0f}x",
         verdict(ratio <= TIME_GOAL)),
        (f"peak RSS over {base_mb:.0f} MB after imports", f"{rss_mb:.1f} MB",
         f"<= {MEMORY_GOAL_MB:.0f} MB", verdict(rss_mb <= MEMORY_GOAL_MB)),
        ("tracemalloc peak", f"{traced_mb:.1f} MB", f"<= {MEMORY_GOAL_MB:.0f} MB",
         verdict(traced_mb <= MEMORY_GOAL_MB)),
    ]  # fmt: skip
    print(
        f"Ingest: {args.cases:,} JUnit test cases ({failures:,} failing), {size_mb:.1f} MB, "
        f"median of {args.runs} runs, Python {sys.version.split()[0]}"
    )
    widths = [
        max(len(row[i]) for row in [*rows, ("measure", "value", "goal", "verdict")])
        for i in range(4)
    ]
    line = "  ".join(f"{{:<{w}}}" for w in widths)
    print(line.format("measure", "value", "goal", "verdict"))
    print(line.format(*("-" * w for w in widths)))
    for row in rows:
        print(line.format(*row).rstrip())
    return 0


if __name__ == "__main__":
    sys.exit(main())
