"""A real instance with a governed release and four accounts, served by uvicorn on loopback.

The release: a low-tier portal copy fix authored by dana@example.org, change request CR-1042,
with passing unit tests, promoted to dev and staging; prod waits for one approval. Accounts:
Alice Adams (release-manager), Dana Dev (approver, the commit author), Audrey Auditor (auditor)
and Dev Ops (deployer). A second, unclassified artifact sits beside it.

Browser tests use real headless Chromium (/usr/bin/chromium) through Playwright. When it cannot
start they skip, except under ``CI=true``, where they fail.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from clearance.core.digests import Digest
from clearance.core.roles import Role
from clearance.settings import Settings
from clearance.store.ledger import Entry
from clearance.usecases.accounts import create_account
from clearance.usecases.artifacts import BuildInfo, register_artifact
from clearance.usecases.evidence import attest
from clearance.usecases.instance import init, open_instance
from clearance.usecases.releases import promote
from clearance.vcs.git import GitRepo
from tests.conftest import git
from tests.server.conftest import serving

FIXTURES = Path(__file__).parent.parent / "fixtures"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PASSWORDS = {
    "alice@example.org": "alice-correct-horse-1",
    "dana@example.org": "dana-battery-staple-2",
    "audrey@example.org": "audrey-reads-only-3",
    "ops@example.org": "ops-promotes-only-4",
}
ACCOUNTS = [
    ("alice@example.org", "Alice Adams", Role.RELEASE_MANAGER),
    ("dana@example.org", "Dana Dev", Role.APPROVER),
    ("audrey@example.org", "Audrey Auditor", Role.AUDITOR),
    ("ops@example.org", "Dev Ops", Role.DEPLOYER),
]
JUNIT = """<?xml version="1.0" encoding="UTF-8"?>
<testsuite name="portal" tests="3" failures="0" errors="0" skipped="0" time="0.4">
  <testcase classname="portal.help" name="test_renders" time="0.1"/>
  <testcase classname="portal.help" name="test_links" time="0.1"/>
  <testcase classname="portal.help" name="test_copy" time="0.2"/>
</testsuite>
"""
CSRF = re.compile(r'name="csrf" value="([^"]+)"')
EVIDENCE_SET = re.compile(r'name="evidence_set" value="([^"]+)"')


@dataclass
class Site:
    url: str
    digest: Digest
    unclassified: Digest
    settings: Settings
    home: Path

    def entries(self, kind: str | None = None) -> list[Entry]:
        with open_instance(self.settings) as inst:
            return inst.ledger.find(kinds=[kind] if kind else [])

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=60, follow_redirects=False)


def governed_repo(root: Path) -> Path:
    """The reference clearance.yaml; the last commit, by dana@example.org, fixes portal copy."""
    root.mkdir(parents=True)
    git(root, "init", "-q", "-b", "main")
    shutil.copy(FIXTURES / "clearance.yaml", root / "clearance.yaml")
    (root / "web" / "portal").mkdir(parents=True)
    (root / "web" / "portal" / "help.md").write_text("# Help\n")
    git(root, "add", ".")
    git(root, "commit", "-q", "-m", "portal")
    (root / "web" / "portal" / "help.md").write_text("# Help!\n")
    git(root, "commit", "-q", "-am", "copy fix")
    return root


def build_site(settings: Settings, tmp_path: Path) -> tuple[Digest, Digest]:
    repo = governed_repo(tmp_path / "clinic")
    artifact = tmp_path / "portal.zip"
    artifact.write_bytes(b"portal build 412")
    junit = tmp_path / "junit.xml"
    junit.write_text(JUNIT)
    with init(settings, actor="admin@example.org", origin="clearance.test/web") as inst:
        digest = register_artifact(
            inst,
            build=BuildInfo("HEAD", "main", "412", "github-actions", "CR-1042"),
            actor="ci@example.org",
            path=artifact,
            repo=GitRepo(repo),
            base="HEAD~1",
        ).digest
        other = register_artifact(
            inst,
            build=BuildInfo("abc1234", build_number="7", change_request="CR-7"),
            actor="ci@example.org",
            digest=Digest("sha256:" + "c" * 64),
            name="orders-api",
        ).digest
        attest(inst, digest, "unit-tests", junit, actor="ci@example.org")
        promote(inst, digest, env="dev", actor="ops@example.org")
        promote(inst, digest, env="staging", actor="ops@example.org")
        for email, name, role in ACCOUNTS:
            create_account(
                inst,
                email=email,
                name=name,
                role=role,
                password=PASSWORDS[email],
                actor="admin@example.org",
            )
    return digest, other


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    """A fresh site on SQLite, for tests that change something."""
    yield from _serve(Settings.from_env({}, home=tmp_path / "home"), tmp_path)


@pytest.fixture
def any_site(settings: Settings, tmp_path: Path) -> Iterator[Site]:
    """A fresh site on each backend (SQLite and PostgreSQL)."""
    yield from _serve(settings, tmp_path)


@pytest.fixture(scope="module")
def shared_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """One site for a module's tests that only read (or are refused and so write nothing)."""
    tmp = tmp_path_factory.mktemp("shared-site")
    yield from _serve(Settings.from_env({}, home=tmp / "home"), tmp)


def _serve(settings: Settings, tmp_path: Path) -> Iterator[Site]:
    digest, other = build_site(settings, tmp_path)
    from clearance.server.app import create_app

    with serving(create_app(settings, max_body=1 << 20)) as url:
        yield Site(url, digest, other, settings, settings.home)


def csrf_of(html: str) -> str:
    found = CSRF.search(html)
    assert found, "the page has no CSRF field"
    return found.group(1)


def sign_in(client: httpx.Client, email: str, password: str | None = None) -> httpx.Response:
    token = csrf_of(client.get("/login").text)
    return client.post(
        "/login",
        data={"csrf": token, "email": email, "password": password or PASSWORDS[email]},
    )


# -- the browser -------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def chromium() -> Iterator[Any]:
    """One headless Chromium per test process; skip (fail under CI=true) if it cannot start."""
    problem = None
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:
        problem = f"playwright is not installed: {exc}"
    else:
        if not Path(CHROMIUM).exists():
            problem = f"{CHROMIUM} is missing (apt-get install chromium)"
        else:
            manager = sync_playwright().start()
            try:
                browser = manager.chromium.launch(
                    executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
                )
            except Exception as exc:
                manager.stop()
                problem = f"Chromium did not start: {str(exc).splitlines()[0]}"
            else:
                yield browser
                browser.close()
                manager.stop()
                return
    if os.environ.get("CI") == "true":
        pytest.fail(f"browser tests cannot run under CI=true: {problem}")
    pytest.skip(f"browser tests skipped: {problem}")


@pytest.fixture
def page(chromium: Any) -> Iterator[Any]:
    context = chromium.new_context(viewport={"width": 1366, "height": 900})
    context.set_default_timeout(15_000)
    tab = context.new_page()
    yield tab
    context.close()
