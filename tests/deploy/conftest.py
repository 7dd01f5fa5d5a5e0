"""Real agents, real slot processes (``app.py``) and, for nginx mode, a real nginx on loopback.

One agent per module (``agent``; ``nginx_agent`` for nginx mode) keeps the run short; each test
gets a service of its own (``service``) on a free port. Every fixture stops what it started,
even when the test fails.

nginx tests skip when ``/usr/sbin/nginx`` is missing, and fail instead under ``CI=true``.
"""

from __future__ import annotations

import json
import os
import shlex
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from clearance.deploy import ServiceSpec, SlotSpec
from clearance.deploy.local import LocalDeployer
from clearance.deploy.local.nginx import NGINX
from clearance.deploy.local.processes import free_port

APP = Path(__file__).with_name("app.py")
RUN = f"{shlex.quote(sys.executable)} {shlex.quote(str(APP))} --port {{port}} --version {{version}}"


def spec(name: str, *, ready_timeout: float = 5.0, **env: str) -> ServiceSpec:
    return ServiceSpec(name, RUN, ready_timeout=ready_timeout, env=env)


def version(v: str, slot: str = "stable") -> SlotSpec:
    return SlotSpec(slot=slot, digest=f"sha256:{v.replace('.', '') * 8}", version=v)


def nginx_problem() -> str | None:
    return (
        None if os.access(NGINX, os.X_OK) else f"{NGINX} is missing (apt-get install nginx-light)"
    )


@pytest.fixture(scope="session")
def nginx_available() -> None:
    problem = nginx_problem()
    if problem is None:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"nginx is required under CI=true: {problem}")
    pytest.skip(problem)


@pytest.fixture(scope="module")
def agent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalDeployer]:
    deployer = LocalDeployer(tmp_path_factory.mktemp("agent"))
    try:
        yield deployer
    finally:
        deployer.stop()


@pytest.fixture(scope="module")
def nginx_agent(
    nginx_available: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LocalDeployer]:
    deployer = LocalDeployer(tmp_path_factory.mktemp("nginx-agent"), router="nginx")
    try:
        yield deployer
    finally:
        deployer.stop()


@dataclass
class Service:
    """A service of the current test: its name, its front door and a client for it."""

    name: str
    port: int
    deployer: LocalDeployer
    http: httpx.Client

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def spec(self, **env: str) -> ServiceSpec:
        return spec(self.name, **env)

    def deploy(self, v: str, slot: str = "stable", **env: str) -> None:
        self.deployer.deploy(self.spec(**env), version(v, slot))

    def get(self, path: str = "/orders", **headers: str) -> httpx.Response:
        return self.http.get(self.url + path, headers=headers)

    def slots_seen(self, n: int, **headers: str) -> Counter[str]:
        return Counter(self.get(**headers).headers["x-clearance-slot"] for _ in range(n))


def _service(request: pytest.FixtureRequest, deployer: LocalDeployer) -> Iterator[Service]:
    name = request.node.name.removeprefix("test_").replace("_", "-")[:40].strip("-").lower()
    port = free_port()
    deployer.ports[name] = port
    with httpx.Client(trust_env=False, timeout=10.0) as http:
        yield Service(name, port, deployer, http)
    if name in deployer.services():  # leave nothing running for the next test of the module
        deployer.remove(name)


@pytest.fixture
def service(request: pytest.FixtureRequest, agent: LocalDeployer) -> Iterator[Service]:
    yield from _service(request, agent)


@pytest.fixture
def nginx_service(request: pytest.FixtureRequest, nginx_agent: LocalDeployer) -> Iterator[Service]:
    yield from _service(request, nginx_agent)


@dataclass
class Traffic:
    """Steady concurrent GETs from ``workers`` threads until stopped: what each one saw."""

    url: str
    workers: int = 4
    seen: list[tuple[float, str | None, int | str]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)

    def __enter__(self) -> Traffic:
        for _ in range(self.workers):
            thread = threading.Thread(target=self._run, daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(10)

    def _run(self) -> None:
        with httpx.Client(trust_env=False, timeout=10.0) as http:
            while not self._stop.is_set():
                began = time.time()
                try:
                    answer = http.get(self.url + "/orders")
                    self.seen.append(
                        (began, answer.headers.get("x-clearance-slot"), answer.status_code)
                    )
                except httpx.HTTPError as exc:
                    self.seen.append((began, None, type(exc).__name__))

    @property
    def failures(self) -> list[Any]:
        return [s for s in self.seen if s[2] != 200]

    def slots(self, after: float = 0.0) -> Counter[str | None]:
        return Counter(slot for began, slot, _ in self.seen if began >= after)


def admin(deployer: LocalDeployer) -> tuple[str, dict[str, str]]:
    """The admin URL of ``deployer``'s agent and the header that authenticates to it, as any
    client on this host finds them: in ``agent.json``."""
    deployer.services()  # make sure it runs
    info = json.loads((deployer.state_dir / "agent.json").read_text())
    return info["admin_url"], {"Authorization": f"Bearer {info['token']}"}


def wait_for(condition: Any, timeout: float = 5.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not met within {timeout}s")
        time.sleep(0.02)
