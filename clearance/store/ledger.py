"""The ledger store: append and read, nothing else.

Appends happen inside :meth:`LedgerStore.appending`, one serialised write transaction that may
also read (to check for duplicates) before it adds records. On success it inserts the records,
the hashes of the perfect Merkle subtrees each completes, and a signed checkpoint on the last one,
then commits;
on any error nothing is written.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, select

from clearance.attest.keys import Signer, public_key_raw
from clearance.clock import Clock, rfc3339
from clearance.core import merkle
from clearance.core.ledger import (
    Checkpoint,
    StoredEntry,
    parse_checkpoint,
    record_bytes,
    sign_checkpoint,
)
from clearance.errors import NotFoundError
from clearance.store.database import Database
from clearance.store.tables import ledger_entries

# The append path runs these on every commit, straight on the driver's cursor (still with bound
# parameters): SQLAlchemy's per-statement overhead was most of a durable append's CPU time.
_LAST_ENTRY = "SELECT seq, leaf_hash FROM ledger_entries ORDER BY seq DESC LIMIT 1"
_INSERT = (
    "INSERT INTO ledger_entries (seq, kind, subject, recorded_at, body, leaf_hash, nodes, "
    "checkpoint) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)
_COPY = (
    "COPY ledger_entries (seq, kind, subject, recorded_at, body, leaf_hash, nodes, checkpoint) "
    "FROM STDIN"
)


@dataclass(frozen=True)
class Entry:
    seq: int
    kind: str
    subject: str | None
    at: str
    actor: str
    data: Mapping[str, Any]

    @classmethod
    def from_body(cls, body: str) -> Entry:
        record = json.loads(body)
        return cls(
            record["seq"],
            record["kind"],
            record["subject"],
            record["at"],
            record["actor"],
            record["data"],
        )


def _find(
    db: Database, raw: Any, subject: str | None, kinds: Sequence[str], after: int = -1
) -> list[Entry]:
    clauses: list[str] = []
    params: list[Any] = []
    if after >= 0:
        clauses.append("seq > ?")
        params.append(after)
    if subject is not None:
        clauses.append("subject = ?")
        params.append(subject)
    if kinds:
        clauses.append(f"kind IN ({', '.join('?' * len(kinds))})")
        params.extend(kinds)
    where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
    cursor = raw.cursor()
    try:
        # Only fixed column names and placeholders are interpolated; values are bound.
        query = f"SELECT body FROM ledger_entries{where} ORDER BY seq"  # noqa: S608
        cursor.execute(db.sql(query), params)
        return [Entry.from_body(row[0]) for row in cursor.fetchall()]
    finally:
        cursor.close()


@contextmanager
def _single_statement(db: Database, raw: Any) -> Iterator[None]:
    """Run one SELECT on a pooled PostgreSQL connection in autocommit: one round trip, not three.

    Without it psycopg sends BEGIN before the query and the pool a ROLLBACK when the connection
    goes back; one statement sees one consistent snapshot either way. SQLite connections
    already run a statement outside BEGIN in autocommit (see :class:`Database`).
    """
    if db.dialect != "postgresql":
        yield
        return
    driver = raw.driver_connection
    driver.autocommit = True
    try:
        yield
    finally:
        if not driver.broken:  # a broken one is discarded by the pool when it comes back
            driver.autocommit = False


@dataclass
class Appender:
    """Reads inside the write transaction, and buffers the records to append."""

    db: Database
    raw: Any
    frontier: merkle.Frontier
    at: str
    entries: list[tuple[Entry, bytes]] = field(default_factory=list)

    def find(self, *, subject: str | None = None, kinds: Sequence[str] = ()) -> list[Entry]:
        """Entries already in the log (not the ones buffered here), seen under the write lock."""
        return _find(self.db, self.raw, subject, kinds)

    def add(self, kind: str, subject: str | None, actor: str, data: Mapping[str, Any]) -> Entry:
        seq = self.frontier.size + len(self.entries)
        body = record_bytes(seq=seq, kind=kind, subject=subject, at=self.at, actor=actor, data=data)
        entry = Entry(seq, kind, subject, self.at, actor, data)
        self.entries.append((entry, body))
        return entry


class LedgerStore:
    def __init__(self, db: Database, signer: Signer, origin: str, clock: Clock) -> None:
        self.db = db
        self.signer = signer
        self.origin = origin
        self.clock = clock
        self._public = public_key_raw(signer.public_key)
        self._cache: tuple[merkle.Frontier, bytes] | None = None
        self._about: dict[str, tuple[int, list[Entry]]] = {}
        self._about_lock = threading.Lock()

    # -- appending --------------------------------------------------------------------------

    @contextmanager
    def appending(self) -> Iterator[Appender]:
        with self.db.raw_write() as raw:
            frontier = self._frontier(raw)
            appender = Appender(self.db, raw, frontier.copy(), rfc3339(self.clock.now()))
            yield appender
            new_cache = self._insert(raw, appender) if appender.entries else None
        if new_cache is not None:
            self._cache = new_cache

    def append(self, kind: str, subject: str | None, actor: str, data: Mapping[str, Any]) -> Entry:
        with self.appending() as appender:
            return appender.add(kind, subject, actor, data)

    def _frontier(self, raw: Any) -> merkle.Frontier:
        cursor = raw.cursor()
        try:
            cursor.execute(_LAST_ENTRY)
            last = cursor.fetchone()
        finally:
            cursor.close()
        if last is None:
            return merkle.Frontier()
        size = int(last[0]) + 1
        if self._cache and self._cache[0].size == size and self._cache[1] == bytes(last[1]):
            return self._cache[0]
        with self.db.read() as conn:  # rare: another process appended since our last append
            reader = self._bulk_reader(conn, merkle.frontier_coordinates(size))
            return merkle.Frontier.load(size, reader)

    def _insert(self, raw: Any, appender: Appender) -> tuple[merkle.Frontier, bytes]:
        frontier = appender.frontier
        rows: list[tuple[Any, ...]] = []
        leaf = b""
        for entry, body in appender.entries:
            leaf = merkle.leaf_hash(body)
            completed = frontier.append(leaf)
            nodes = b"".join(n.hash for n in completed[1:])
            rows.append(
                (entry.seq, entry.kind, entry.subject, entry.at, body.decode(), leaf, nodes, None)
            )
        checkpoint = sign_checkpoint(
            self.origin, frontier.size, frontier.root(), self._public, self.signer.sign
        )
        rows[-1] = (*rows[-1][:-1], checkpoint.note())
        cursor = raw.cursor()
        try:
            if len(rows) == 1:
                cursor.execute(self.db.sql(_INSERT), rows[0])
            elif self.db.dialect == "postgresql":
                with cursor.copy(_COPY) as copy:  # ~2.5x executemany for big batches
                    for row in rows:
                        copy.write_row(row)
            else:
                cursor.executemany(self.db.sql(_INSERT), rows)
        finally:
            cursor.close()
        return frontier, leaf

    # -- reading ----------------------------------------------------------------------------

    def size(self) -> int:
        with self.db.read() as conn:
            last = conn.execute(
                select(ledger_entries.c.seq).order_by(ledger_entries.c.seq.desc()).limit(1)
            ).scalar()
        return 0 if last is None else int(last) + 1

    def latest_checkpoint(self) -> Checkpoint | None:
        with self.db.read() as conn:
            note = conn.execute(
                select(ledger_entries.c.checkpoint)
                .where(ledger_entries.c.checkpoint.is_not(None))
                .order_by(ledger_entries.c.seq.desc())
                .limit(1)
            ).scalar()
        return None if note is None else parse_checkpoint(note, where="latest checkpoint")

    def entry(self, seq: int) -> Entry:
        with self.db.read() as conn:
            body = conn.execute(
                select(ledger_entries.c.body).where(ledger_entries.c.seq == seq)
            ).scalar()
        if body is None:
            raise NotFoundError(f"the ledger has no entry {seq}")
        return Entry.from_body(body)

    def find(self, *, subject: str | None = None, kinds: Sequence[str] = ()) -> list[Entry]:
        """Entries about ``subject`` (and of ``kinds``), oldest first."""
        raw = self.db.raw_read()
        try:
            return _find(self.db, raw, subject, kinds)
        finally:
            raw.close()

    def about(self, subject: str) -> list[Entry]:
        """Every entry about ``subject``, oldest first, each decoded once per process.

        The log is append-only, so a cached list only ever needs the entries after its newest
        one: one indexed query, usually empty, instead of re-reading the artifact's history.
        """
        cached = self._about.get(subject)
        after = cached[0] if cached is not None else -1
        raw = self.db.raw_read()
        try:
            with _single_statement(self.db, raw):
                newer = _find(self.db, raw, subject, (), after=after)
        finally:
            raw.close()
        if cached is not None and not newer:
            return cached[1]
        entries = [*(cached[1] if cached is not None else ()), *newer]
        if entries:
            with self._about_lock:  # server threads share the cache
                current = self._about.get(subject)
                if current is None and len(self._about) >= 256:
                    self._about.pop(next(iter(self._about)))
                if current is None or current[0] < entries[-1].seq:  # never back in time
                    self._about[subject] = (entries[-1].seq, entries)
        return entries

    def stored_entries(self, batch: int = 2000) -> Iterator[StoredEntry]:
        """Every row as stored, in seq order, streamed in batches (for verification)."""
        cols = ledger_entries.c
        after = -1
        while True:
            with self.db.read() as conn:
                rows = conn.execute(
                    select(
                        cols.seq,
                        cols.kind,
                        cols.subject,
                        cols.body,
                        cols.leaf_hash,
                        cols.nodes,
                        cols.checkpoint,
                    )
                    .where(cols.seq > after)
                    .order_by(cols.seq)
                    .limit(batch)
                ).all()
            if not rows:
                return
            for r in rows:
                yield StoredEntry(
                    int(r.seq),
                    r.kind,
                    r.subject,
                    r.body.encode(),
                    bytes(r.leaf_hash),
                    bytes(r.nodes),
                    r.checkpoint,
                )
            after = int(rows[-1].seq)

    def inclusion_proof(self, seq: int, size: int) -> list[bytes]:
        with self.db.read() as conn:
            return merkle.inclusion_proof(self._reader(conn), seq, size)

    def consistency_proof(self, old_size: int, new_size: int) -> list[bytes]:
        with self.db.read() as conn:
            return merkle.consistency_proof(self._reader(conn), old_size, new_size)

    def root_at(self, size: int) -> bytes:
        with self.db.read() as conn:
            return merkle.root_hash(self._reader(conn), size)

    def leaf_hash(self, seq: int) -> bytes:
        with self.db.read() as conn:
            return self._reader(conn)(0, seq)

    def _reader(self, conn: Connection) -> merkle.NodeReader:
        def read(level: int, index: int) -> bytes:
            seq = ((index + 1) << level) - 1
            row = conn.execute(
                select(ledger_entries.c.leaf_hash, ledger_entries.c.nodes).where(
                    ledger_entries.c.seq == seq
                )
            ).first()
            if row is None:
                raise NotFoundError(
                    f"the ledger has no Merkle node at level {level}, index {index}"
                )
            return node_from_row(level, index, bytes(row.leaf_hash), bytes(row.nodes))

        return read

    def _bulk_reader(self, conn: Connection, coords: list[tuple[int, int]]) -> merkle.NodeReader:
        """Fetch the rows holding the given nodes in one query, then serve them from memory."""
        seqs = {((ix + 1) << lv) - 1 for lv, ix in coords}
        rows = {
            int(r.seq): (bytes(r.leaf_hash), bytes(r.nodes))
            for r in conn.execute(
                select(
                    ledger_entries.c.seq, ledger_entries.c.leaf_hash, ledger_entries.c.nodes
                ).where(ledger_entries.c.seq.in_(sorted(seqs)))
            )
        }
        fallback = self._reader(conn)

        def read(level: int, index: int) -> bytes:
            row = rows.get(((index + 1) << level) - 1)
            if row is None:
                return fallback(level, index)
            return node_from_row(level, index, *row)

        return read


def node_from_row(level: int, index: int, leaf: bytes, nodes: bytes) -> bytes:
    """The perfect subtree (level, index) from the row of the leaf that completed it."""
    if level == 0:
        return leaf
    node = nodes[(level - 1) * 32 : level * 32]
    if len(node) != 32:
        raise NotFoundError(f"the ledger has no Merkle node at level {level}, index {index}")
    return node
