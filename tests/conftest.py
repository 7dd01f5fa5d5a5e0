"""Shared fixtures: real SQLite files, the real PostgreSQL server, real git repositories.

PostgreSQL tests run against 127.0.0.1:5432 (database ``test``), each in a schema of its own.
Outside CI they skip when the server is unreachable; under ``CI=true`` they fail instead.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from clearance.settings import Settings
from clearance.usecases.instance import Instance, init

PG_BASE = os.environ.get("CLEARANCE_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


@dataclass
class FixedClock:
    """A clock that starts at a fixed moment and ticks one second per reading."""

    moment: datetime = datetime(2026, 11, 2, 9, 30, tzinfo=UTC)

    def now(self) -> datetime:
        self.moment += timedelta(seconds=1)
        return self.moment


def _pg_reachable() -> str | None:
    try:
        engine = create_engine(PG_BASE, connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        engine.dispose()
    except Exception as exc:  # any failure means "not reachable"
        return str(exc).splitlines()[0]
    return None


@pytest.fixture(scope="session")
def pg_available() -> None:
    problem = _pg_reachable()
    if problem is None:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"PostgreSQL at {PG_BASE} is unreachable under CI=true: {problem}")
    pytest.skip(f"PostgreSQL at {PG_BASE} is unreachable: {problem}")


@pytest.fixture
def pg_url(pg_available: None) -> Iterator[str]:
    """A database URL whose tables live in a fresh schema, dropped afterwards."""
    schema = "t_" + uuid.uuid4().hex[:12]
    engine = create_engine(PG_BASE)
    with engine.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    yield f"{PG_BASE}?options=-csearch_path%3D{schema}"
    with engine.begin() as conn:
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'home' / 'clearance.db'}"
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    home = tmp_path / "home"
    return Settings(
        home=home,
        database_url=database_url,
        blob_url=f"file://{home / 'blobs'}",
        key_path=home / "keys" / "signing-key.pem",
        actor=None,
    )


@pytest.fixture
def sqlite_settings(tmp_path: Path) -> Settings:
    return Settings.from_env({}, home=tmp_path / "home")


@pytest.fixture
def instance(settings: Settings) -> Iterator[Instance]:
    with init(
        settings, actor="admin@example.org", origin="clearance.test/ledger", clock=FixedClock()
    ) as inst:
        yield inst


def git(repo: Path, *args: str) -> str:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "Dana Dev",
        "GIT_AUTHOR_EMAIL": "dana@example.org",
        "GIT_COMMITTER_NAME": "Dana Dev",
        "GIT_COMMITTER_EMAIL": "dana@example.org",
    }
    proc = subprocess.run(
        ["git", "-C", str(repo), *args], capture_output=True, text=True, env=env, check=True
    )
    return proc.stdout.strip()


@pytest.fixture
def git_repo(tmp_path: Path) -> Path:
    """A real repository with one commit: an app and hash-pinned requirements."""
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    (repo / "app.py").write_text("print('orders')\n")
    (repo / "requirements.txt").write_text(
        "flask==3.0.3 \\\n    --hash=sha256:" + "ab" * 32 + "\nrequests==2.32.3  # no hash\n"
    )
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "first")
    return repo


def portal_repo(root: Path) -> Path:
    """A governed repository (the reference clearance.yaml) whose last commit is a portal copy
    fix by dana@example.org: a low-tier change against HEAD~1."""
    import shutil

    root.mkdir(parents=True)
    git(root, "init", "-q", "-b", "main")
    shutil.copy(Path(__file__).parent / "fixtures" / "clearance.yaml", root / "clearance.yaml")
    (root / "web" / "portal").mkdir(parents=True)
    (root / "web" / "portal" / "help.md").write_text("# Help\n")
    git(root, "add", ".")
    git(root, "commit", "-q", "-m", "portal")
    (root / "web" / "portal" / "help.md").write_text("# Help!\n")
    git(root, "commit", "-q", "-am", "copy fix")
    return root
