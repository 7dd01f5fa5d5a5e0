"""The SQL database behind the ledger: SQLite (embedded default) or PostgreSQL, one code path.

``Database.write()`` is the only way to change anything. It serialises writers so the ledger can
never fork: SQLite takes its write lock up front (``BEGIN IMMEDIATE``), PostgreSQL takes a
transaction-scoped advisory lock, so two processes or two servers append one after the other.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, create_engine, event, inspect, make_url, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import ArgumentError, DBAPIError, SQLAlchemyError

from clearance.errors import InputError, NotInitialisedError, StoreError

MIGRATIONS = Path(__file__).parent / "migrations"
#: The newest migration; a test holds it equal to Alembic's head, so opening a database does not
#: have to load Alembic (a fifth of every command's start-up time).
HEAD_REVISION = "0004"
#: pg_advisory_xact_lock key for ledger appends ("CLRNCE" in ASCII).
LEDGER_LOCK_KEY = 0x434C524E4345


def normalise_url(url: str) -> str:
    """Accept the URLs people write (``postgresql://``, ``postgres://``) and pick psycopg 3."""
    return re.sub(r"^postgres(?:ql)?://", "postgresql+psycopg://", url)


def display_url(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<invalid database URL>"


class Database:
    def __init__(self, url: str, *, create: bool = False) -> None:
        self.url = normalise_url(url)
        try:
            parsed = make_url(self.url)
        except ArgumentError as exc:
            raise InputError(f"not a database URL: {display_url(url)}") from exc
        self.dialect = parsed.get_backend_name()
        if self.dialect not in ("sqlite", "postgresql"):
            raise InputError(
                f"unsupported database {self.dialect!r}", hint="use sqlite:/// or postgresql://"
            )
        if self.dialect == "sqlite" and parsed.database and parsed.database != ":memory:":
            path = Path(parsed.database)
            if create:
                path.parent.mkdir(parents=True, exist_ok=True)
            elif not path.exists():
                raise NotInitialisedError(
                    "no database here", where=str(path), hint="run `clearance init`"
                )
        self.engine = self._create_engine()

    def _create_engine(self) -> Engine:
        if self.dialect == "sqlite":
            engine = create_engine(self.url, connect_args={"timeout": 60})

            @event.listens_for(engine, "connect")
            def _sqlite_connect(dbapi_conn: Any, _record: Any) -> None:
                dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
                cursor = dbapi_conn.cursor()
                cursor.execute("PRAGMA journal_mode=WAL")
                cursor.execute("PRAGMA synchronous=FULL")
                cursor.execute("PRAGMA busy_timeout=60000")
                cursor.close()

            @event.listens_for(engine, "begin")
            def _sqlite_begin(conn: Connection) -> None:
                immediate = conn.get_execution_options().get("clearance_write", False)
                conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

            return engine
        # No pre-ping: it cost a round trip on every append; stale connections are recycled instead.
        # Sized for the server's request threads (40), so connections are reused, not churned.
        return create_engine(self.url, pool_recycle=1800, pool_size=40, max_overflow=20)

    def describe(self) -> str:
        return display_url(self.url)

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """A serialised write transaction: commits on success, rolls back on any error."""
        try:
            with self.engine.connect() as conn:
                conn = conn.execution_options(clearance_write=True)
                with conn.begin():
                    if self.dialect == "postgresql":
                        conn.execute(
                            text("SELECT pg_advisory_xact_lock(:key)"), {"key": LEDGER_LOCK_KEY}
                        )
                    yield conn
        except DBAPIError as exc:
            raise StoreError(self._explain(exc), where=self.describe()) from exc

    @contextmanager
    def raw_write(self) -> Iterator[Any]:
        """The same serialised write transaction on the driver's own connection (DB-API).

        The ledger's append path uses it: SQLAlchemy's per-statement overhead was most of a
        durable append's CPU time. Statements still use bound parameters (see :meth:`sql`).
        """
        try:
            raw = self.engine.raw_connection()
        except DBAPIError as exc:
            raise StoreError(self._explain(exc), where=self.describe()) from exc
        try:
            cursor = raw.cursor()
            if self.dialect == "postgresql":
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", (LEDGER_LOCK_KEY,))
            else:
                cursor.execute("BEGIN IMMEDIATE")
            cursor.close()
            yield raw
            raw.commit()
        except BaseException as exc:
            raw.rollback()
            if isinstance(exc, self._driver_errors()):
                raise StoreError(f"database error: {exc}", where=self.describe()) from exc
            raise
        finally:
            raw.close()

    def raw_read(self) -> Any:
        """A pooled driver connection for reads; the caller closes it (returns it to the pool)."""
        try:
            return self.engine.raw_connection()
        except DBAPIError as exc:
            raise StoreError(self._explain(exc), where=self.describe()) from exc

    def _driver_errors(self) -> tuple[type[BaseException], ...]:
        dbapi = self.engine.dialect.dbapi
        return (dbapi.Error,) if dbapi is not None else ()

    def sql(self, statement: str) -> str:
        """Adapt a ``?``-placeholder statement to the driver's parameter style."""
        return statement if self.dialect == "sqlite" else statement.replace("?", "%s")

    @contextmanager
    def read(self) -> Iterator[Connection]:
        try:
            with self.engine.connect() as conn, conn.begin():
                yield conn
        except DBAPIError as exc:
            raise StoreError(self._explain(exc), where=self.describe()) from exc

    @staticmethod
    def _explain(exc: DBAPIError) -> str:
        first = str(exc.orig).strip().splitlines()[0] if exc.orig else type(exc).__name__
        return f"database error: {first}"

    # -- schema ---------------------------------------------------------------------------

    def current_revision(self) -> str | None:
        try:
            with self.engine.connect() as conn:
                if not inspect(conn).has_table("alembic_version"):
                    return None
                return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot open the database: {exc}", where=self.describe()) from exc

    def upgrade(self) -> None:
        """Bring the schema to the newest migration (idempotent)."""
        from alembic import command
        from alembic.config import Config

        try:
            with self.write() as conn:
                cfg = Config()
                cfg.set_main_option("script_location", str(MIGRATIONS))
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, "head")
        except SQLAlchemyError as exc:
            raise StoreError(f"migration failed: {exc}", where=self.describe()) from exc

    def require_current(self) -> None:
        current = self.current_revision()
        if current is None:
            raise NotInitialisedError(
                "the database has no Clearance schema",
                where=self.describe(),
                hint="run `clearance init`",
            )
        if current != HEAD_REVISION:
            raise NotInitialisedError(
                f"the database schema is at revision {current}, this version needs {HEAD_REVISION}",
                where=self.describe(),
                hint="run `clearance init` to upgrade it",
            )

    def dispose(self) -> None:
        self.engine.dispose()
