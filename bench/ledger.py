"""Ledger benchmark: durable appends, batched appends and full verification (a measurement).

Run it as ``.venv/bin/python bench/ledger.py [--records N] [--backend sqlite|postgresql|both]``.
For each backend it builds a ledger of N records (default 100,000) in a fresh instance (a
temporary SQLite file, or a fresh PostgreSQL schema on 127.0.0.1:5432/test, dropped at the end)
and times, against a baseline timed in the same run, in interleaved rounds (the order swapped
every round, each figure the median over rounds, each ratio the median of the per-round ratios):

(a) durable appends, one record per commit (``LedgerStore.append``), against bare inserts of rows
    of the same size into a table of the same shape, one per transaction: plain ``sqlite3`` in WAL
    mode with ``synchronous=FULL`` (as the store sets it), or plain psycopg, one commit per row.
    Goal: at least 0.5x. Only the first ``--durable`` records (default 20,000, at most half of N)
    are appended this way, because each commit waits for an fsync: the output says how long all N
    would have taken. The rest of the log is filled by (b).
(b) batched appends (``--batch`` records per ``LedgerStore.appending()`` transaction), against
    bare ``executemany`` of the same rows, one transaction per batch. Goal: 20,000 records/s.
(c) ``verify_ledger`` over the whole log, against the cryptography it cannot avoid: SHA-256 of
    every stored record (the RFC 6962 leaf hash) and one Ed25519 verify per stored checkpoint
    (a fresh key over a message the size of a checkpoint body). Goal: at most 3x.

Records are shaped like ``evidence.attested``: a data dict of about 430 bytes of canonical JSON,
about 640 bytes for the whole record, eight records per artifact digest. Their two blob digests
sit under ``refs`` rather than ``blobs``: verify would otherwise read each blob file and verify
each DSSE envelope, work that belongs to the blob store, not to the ledger.

It always exits 0: it reports, it does not judge a build.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any, Protocol

import psycopg
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from psycopg import sql
from rich.progress import Progress

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

# After the path is set:
from bench.common import print_table, progress_bar, verdict  # noqa: E402
from clearance.clock import rfc3339  # noqa: E402
from clearance.core import merkle  # noqa: E402
from clearance.core.canonical import canonical_json  # noqa: E402
from clearance.core.ledger import Checkpoint, record_bytes  # noqa: E402
from clearance.settings import Settings  # noqa: E402
from clearance.usecases.instance import Instance, init  # noqa: E402
from clearance.usecases.ledger import verify_ledger  # noqa: E402

DURABLE_GOAL = 0.5
BATCHED_GOAL = 20_000.0
VERIFY_GOAL = 3.0
DURABLE_DEFAULT = 20_000
PG_BASE = os.environ.get("CLEARANCE_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/test")

KIND = "evidence.attested"
ACTOR = "ci-release-bot@example.org"
ORIGIN = "bench.clearance.local/ledger"
Record = tuple[str, dict[str, Any]]  # subject, data
Row = tuple[Any, ...]

_BARE_TABLE = (
    "CREATE TABLE bare_entries (seq BIGINT PRIMARY KEY, kind VARCHAR(64) NOT NULL, "
    "subject VARCHAR(128), recorded_at VARCHAR(40) NOT NULL, body TEXT NOT NULL, "
    "leaf_hash {blob} NOT NULL, nodes {blob} NOT NULL, checkpoint TEXT)"
)
_BARE_INDEX = "CREATE INDEX ix_bare_entries_subject_kind ON bare_entries (subject, kind)"
_NODES = os.urandom(32)  # the mean: an append completes one subtree hash on average
_BARE_INSERT = "INSERT INTO bare_entries VALUES ({p}, {p}, {p}, {p}, {p}, {p}, {p}, {p})"


class Workload:
    """Deterministic ``evidence.attested``-like records and bare rows of the same size."""

    def __init__(self, seed: int = 2026) -> None:
        self.rng = random.Random(seed)
        self.made = 0
        self.subject = ""
        # A checkpoint note of the real size: every bare row that stands for a commit carries one.
        self.note = Checkpoint(ORIGIN, 10**6, os.urandom(32), os.urandom(64), os.urandom(4)).note()

    def _digest(self) -> str:
        return "sha256:" + self.rng.randbytes(32).hex()

    def records(self, n: int) -> list[Record]:
        out: list[Record] = []
        for _ in range(n):
            i = self.made = self.made + 1
            if i % 8 == 1:  # a few records (tests, scans, SBOM...) about each artifact
                self.subject = self._digest()
            failures = i % 3 == 0
            out.append(
                (
                    self.subject,
                    {
                        "type": "unit-tests",
                        "format": "junit",
                        "result": "failed" if failures else "passed",
                        "passed": not failures,
                        "tool": "pytest 8.3.3",
                        "summary": {
                            "tests": 1200 + i % 300,
                            "failures": int(failures),
                            "errors": 0,
                            "skipped": i % 7,
                        },
                        "filename": "junit.xml",
                        "size": 180_000 + i % 5_000,
                        "predicate_type": "https://in-toto.io/attestation/test-result/v1",
                        "refs": {"report": self._digest(), "envelope": self._digest()},
                    },
                )
            )
        return out

    def sizes(self, n: int = 1_000) -> tuple[float, float]:
        """Mean bytes of canonical JSON of a record, and of its ``data``, over ``n`` samples."""
        sample = Workload(seed=1).records(n)
        at = rfc3339(datetime.now(UTC))
        record = sum(
            len(record_bytes(seq=10**5, kind=KIND, subject=s, at=at, actor=ACTOR, data=d))
            for s, d in sample
        )
        data = sum(len(canonical_json(d)) for _, d in sample)
        return record / n, data / n

    def rows(self, records: Sequence[Record], first_seq: int, per_commit: int) -> list[Row]:
        """Rows like the store's: canonical body, leaf hash, one subtree hash (the mean), and a
        checkpoint note on the last row of each commit."""
        at = rfc3339(datetime.now(UTC))
        rows: list[Row] = []
        for i, (subject, data) in enumerate(records):
            seq = first_seq + i
            body = record_bytes(seq=seq, kind=KIND, subject=subject, at=at, actor=ACTOR, data=data)
            last = (i + 1) % per_commit == 0 or i == len(records) - 1
            note = self.note if last else None
            rows.append(
                (seq, KIND, subject, at, body.decode(), merkle.leaf_hash(body), _NODES, note)
            )
        return rows


class Bare(Protocol):
    def insert_each(self, rows: Sequence[Row]) -> None: ...
    def insert_batch(self, rows: Sequence[Row]) -> None: ...
    def close(self) -> None: ...


class BareSqlite:
    """Plain ``sqlite3``: WAL, ``synchronous=FULL``, the driver's own implicit transactions."""

    def __init__(self, path: Path) -> None:
        self.conn = sqlite3.connect(path)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=FULL")
        self.conn.execute(_BARE_TABLE.format(blob="BLOB"))
        self.conn.execute(_BARE_INDEX)
        self.conn.commit()
        self.insert = _BARE_INSERT.format(p="?")

    def insert_each(self, rows: Sequence[Row]) -> None:
        for row in rows:
            self.conn.execute(self.insert, row)
            self.conn.commit()

    def insert_batch(self, rows: Sequence[Row]) -> None:
        self.conn.executemany(self.insert, rows)
        self.conn.commit()

    def close(self) -> None:
        self.conn.close()


class BarePostgres:
    """Plain psycopg, autocommit off: one ``commit()`` per row or per batch."""

    def __init__(self, url: str) -> None:
        self.conn = psycopg.connect(url)
        self.conn.execute(_BARE_TABLE.format(blob="BYTEA"))
        self.conn.execute(_BARE_INDEX)
        self.conn.commit()
        self.insert = _BARE_INSERT.format(p="%s")

    def insert_each(self, rows: Sequence[Row]) -> None:
        with self.conn.cursor() as cursor:
            for row in rows:
                cursor.execute(self.insert, row)
                self.conn.commit()

    def insert_batch(self, rows: Sequence[Row]) -> None:
        with self.conn.cursor() as cursor:
            cursor.executemany(self.insert, rows)
        self.conn.commit()

    def close(self) -> None:
        self.conn.close()


@dataclass
class Paired:
    """One figure and its baseline, measured in the same rounds."""

    values: list[float] = field(default_factory=list)
    baselines: list[float] = field(default_factory=list)

    def add(self, value: float, baseline: float) -> None:
        self.values.append(value)
        self.baselines.append(baseline)

    @property
    def value(self) -> float:
        return statistics.median(self.values)

    @property
    def baseline(self) -> float:
        return statistics.median(self.baselines)

    @property
    def ratios(self) -> list[float]:
        return [v / b for v, b in zip(self.values, self.baselines, strict=True)]

    @property
    def ratio(self) -> float:
        return statistics.median(self.ratios)


def split(total: int, parts: int) -> list[int]:
    parts = max(1, min(parts, total))
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


def timed_steps(
    items: Sequence[Any],
    run: Callable[[Sequence[Any]], None],
    advance: Callable[[Sequence[Any]], None],
) -> float:
    """Run ``items`` in a few steps, timing only the work: the progress bar moves in between."""
    elapsed = 0.0
    step = max(1, len(items) // 8)
    for start in range(0, len(items), step):
        chunk = items[start : start + step]
        began = time.perf_counter()
        run(chunk)
        elapsed += time.perf_counter() - began
        advance(chunk)
    return elapsed


def in_order(
    round_no: int, first: Callable[[], float], second: Callable[[], float]
) -> tuple[float, float]:
    """Both timings, run in swapped order on odd rounds so drift in the machine hits both."""
    if round_no % 2:
        b = second()
        a = first()
    else:
        a = first()
        b = second()
    return a, b


@dataclass
class Run:
    instance: Instance
    bare: Bare
    workload: Workload
    progress: Progress
    bare_seq: int = 0

    def bare_rows(self, records: Sequence[Record], per_commit: int) -> list[Row]:
        rows = self.workload.rows(records, self.bare_seq, per_commit)
        self.bare_seq += len(rows)
        return rows

    def durable(self, count: int, rounds: int) -> Paired:
        """(a): ``append`` one record per commit against one bare insert per transaction."""
        ledger = self.instance.ledger
        task = self.progress.add_task("(a) durable appends + bare", total=2 * count)

        def appends(chunk: Sequence[Record]) -> None:
            for subject, data in chunk:
                ledger.append(KIND, subject, ACTOR, data)

        def advance(chunk: Sequence[Any]) -> None:
            self.progress.advance(task, len(chunk))

        result = Paired()
        for round_no, n in enumerate(split(count, rounds)):
            records = self.workload.records(n)
            rows = self.bare_rows(self.workload.records(n), per_commit=1)
            ours, bare = in_order(
                round_no,
                partial(timed_steps, records, appends, advance),
                partial(timed_steps, rows, self.bare.insert_each, advance),
            )
            result.add(n / ours, n / bare)
        return result

    def batched(self, count: int, batch: int, rounds: int) -> Paired:
        """(b): ``appending()`` transactions of ``batch`` records against bare ``executemany``."""
        ledger = self.instance.ledger
        task = self.progress.add_task("(b) batched appends + bare", total=2 * count)

        def appends(batches: Sequence[list[Record]]) -> None:
            for records in batches:
                with ledger.appending() as appender:
                    for subject, data in records:
                        appender.add(KIND, subject, ACTOR, data)

        def inserts(batches: Sequence[list[Row]]) -> None:
            for rows in batches:
                self.bare.insert_batch(rows)

        def advance(chunk: Sequence[Sequence[Any]]) -> None:
            self.progress.advance(task, sum(len(b) for b in chunk))

        result = Paired()
        for round_no, n in enumerate(split(count, rounds)):
            records = self.workload.records(n)
            rows = self.bare_rows(self.workload.records(n), per_commit=batch)
            ours_batches = [records[i : i + batch] for i in range(0, n, batch)]
            bare_batches = [rows[i : i + batch] for i in range(0, n, batch)]
            ours, bare = in_order(
                round_no,
                partial(timed_steps, ours_batches, appends, advance),
                partial(timed_steps, bare_batches, inserts, advance),
            )
            result.add(n / ours, n / bare)
        return result

    def verify(self, repeats: int) -> tuple[Paired, int, int, str | None]:
        """(c): ``verify_ledger`` against SHA-256 of every leaf plus one Ed25519 verify per
        checkpoint; returns the timings, the log size, the checkpoint count and any problem."""
        stored = list(self.instance.ledger.stored_entries())
        bodies = [b"\x00" + e.body for e in stored]  # the RFC 6962 leaf-hash input
        signatures = sum(1 for e in stored if e.checkpoint is not None)
        latest = self.instance.ledger.latest_checkpoint()
        message = latest.body() if latest is not None else b""
        key = Ed25519PrivateKey.generate()
        public, signature = key.public_key(), key.sign(message)
        del stored
        task = self.progress.add_task("(c) verify + crypto floor", total=2 * repeats)
        problem: list[str] = []

        def floor() -> float:
            began = time.perf_counter()
            for body in bodies:
                hashlib.sha256(body).digest()
            for _ in range(signatures):
                public.verify(signature, message)
            elapsed = time.perf_counter() - began
            self.progress.advance(task)
            return elapsed

        def ours() -> float:
            began = time.perf_counter()
            result = verify_ledger(self.instance)
            elapsed = time.perf_counter() - began
            if not result.ok or result.size != len(bodies):
                problem.append(f"size {result.size}, problems: {result.problems[:3]}")
            self.progress.advance(task)
            return elapsed

        timings = Paired()
        for round_no in range(repeats):
            timings.add(*in_order(round_no, ours, floor))
        return timings, len(bodies), signatures, (problem[0] if problem else None)


@contextmanager
def backend(name: str, folder: Path) -> Iterator[tuple[Instance, Bare]]:
    """A fresh instance and a bare table next to it; everything is removed afterwards."""
    home = folder / name
    if name == "sqlite":
        with init(Settings.from_env({}, home=home), actor=ACTOR, origin=ORIGIN) as instance:
            bare = BareSqlite(home / "bare.db")
            try:
                yield instance, bare
            finally:
                bare.close()
        return
    schema = "bench_" + uuid.uuid4().hex[:12]
    with psycopg.connect(PG_BASE, autocommit=True, connect_timeout=5) as admin:
        admin.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
        try:
            url = f"{PG_BASE}?options=-csearch_path%3D{schema}"
            env = {"CLEARANCE_DATABASE_URL": url}
            with init(Settings.from_env(env, home=home), actor=ACTOR, origin=ORIGIN) as instance:
                bare_pg = BarePostgres(url)
                try:
                    yield instance, bare_pg
                finally:
                    bare_pg.close()
        finally:
            admin.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))


def bench(name: str, args: argparse.Namespace, durable: int, folder: Path) -> None:
    batched = args.records - 1 - durable  # the log starts with its instance.initialised record
    with backend(name, folder) as (instance, bare), progress_bar() as progress:
        run = Run(instance, bare, Workload(), progress)
        a = run.durable(durable, args.rounds)
        b = run.batched(batched, args.batch, args.rounds)
        c, size, signatures, problem = run.verify(args.repeats)
        where = instance.db.describe()
    c_ok = None if problem else c.ratio <= VERIFY_GOAL
    rows = [
        (
            f"(a) durable appends, 1 per commit ({durable:,})",
            f"{a.value:,.0f}/s",
            f"{a.baseline:,.0f}/s",
            f"{a.ratio:.2f}x",
            f">= {DURABLE_GOAL}x",
            verdict(a.ratio >= DURABLE_GOAL),
        ),
        (
            f"(b) batched appends, {args.batch:,} per commit ({batched:,})",
            f"{b.value:,.0f}/s",
            f"{b.baseline:,.0f}/s",
            f"{b.ratio:.2f}x",
            f">= {BATCHED_GOAL:,.0f}/s",
            verdict(b.value >= BATCHED_GOAL),
        ),
        (
            f"(c) verify_ledger, whole log ({size:,})",
            f"{c.value:.2f} s",
            f"{c.baseline:.2f} s",
            f"{c.ratio:.2f}x",
            f"<= {VERIFY_GOAL:.0f}x",
            verdict(c_ok) if c_ok is not None else "FAIL (did not verify)",
        ),
    ]
    print(f"\n{name}: {where}")
    print_table(rows)
    n = args.records
    notes = [
        f"(a) appended only {durable:,} of the {n:,} records one per commit: {n:,} of them plus "
        f"as many bare commits would take ~{n / a.value + n / a.baseline:,.0f} s at these "
        "rates; (b) filled the rest of the log",
        "baselines: (a) bare insert + commit per row, (b) bare executemany + commit per batch, "
        f"(c) SHA-256 of {size:,} leaves + {signatures:,} Ed25519 verifies (one per checkpoint)",
        f"medians of {args.rounds} interleaved rounds for (a) and (b), {args.repeats} for (c); "
        "ratio = median of the per-round ratios, range "
        + ", ".join(
            f"({k}) {min(p.ratios):.2f}-{max(p.ratios):.2f}"
            for k, p in zip("abc", (a, b, c), strict=True)
        ),
    ]
    if problem:
        notes.append(f"verify_ledger did not pass: {problem}")
    for note in notes:
        print(f"  {note}")


def pg_problem() -> str | None:
    try:
        with psycopg.connect(PG_BASE, connect_timeout=5) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        return str(exc).strip().splitlines()[0]
    return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--records", type=int, default=100_000, help="log size N")
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument(
        "--durable", type=int, default=DURABLE_DEFAULT, help="records appended one per commit"
    )
    parser.add_argument("--batch", type=int, default=1_000, help="records per batched commit")
    parser.add_argument("--rounds", type=int, default=10, help="interleaved rounds for (a), (b)")
    parser.add_argument("--repeats", type=int, default=3, help="verify runs for (c)")
    args = parser.parse_args()
    if args.records < 3:
        parser.error("--records must be at least 3")
    durable = max(1, min(args.durable, (args.records - 1) // 2))
    names = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]

    print(
        f"Ledger: N = {args.records:,} records per backend, Python {sys.version.split()[0]}, "
        f"{os.cpu_count()} CPUs"
    )
    record, data = Workload().sizes()
    print(
        f"records like evidence.attested: {record:.0f} bytes of canonical JSON on average, "
        f"{data:.0f} of them the data dict; temporary files under {tempfile.gettempdir()}"
    )
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="clearance-bench-") as folder:
        for name in names:
            if name == "postgresql" and (problem := pg_problem()):
                print(f"\npostgresql: skipped, {PG_BASE} is unreachable: {problem}")
                continue
            bench(name, args, durable, Path(folder))
    print(f"\ntotal {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
