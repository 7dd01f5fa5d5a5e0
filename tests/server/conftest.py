"""A real instance behind the real FastAPI app, and a token for every role."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from clearance.core.roles import Role
from clearance.settings import Settings
from clearance.usecases.artifacts import BuildInfo, register_artifact
from clearance.usecases.identity import create_token
from clearance.usecases.instance import init
from clearance.vcs.git import GitRepo
from tests.conftest import portal_repo


class Api:
    def __init__(
        self, client: httpx.Client, tokens: dict[Role, str], digest: str, settings: Settings
    ) -> None:
        self.client = client
        self.tokens = tokens
        self.digest = digest
        self.settings = settings

    def auth(self, role: Role) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[role]}"}


@pytest.fixture
def api(settings: Settings, tmp_path: Path) -> Iterator[Api]:
    repo = portal_repo(tmp_path / "clinic")
    artifact = tmp_path / "portal.zip"
    artifact.write_bytes(b"portal build")
    with init(settings, actor="admin@example.org", origin="clearance.test/api") as inst:
        digest = register_artifact(
            inst,
            build=BuildInfo("HEAD"),
            actor="ci",
            path=artifact,
            repo=GitRepo(repo),
            base="HEAD~1",
        ).digest
        tokens = {
            role: create_token(
                inst, name=f"{role.value}@example.org", role=role, actor="admin@example.org"
            ).token
            for role in Role
        }
    from clearance.server.app import create_app

    with (
        serving(create_app(settings, max_body=1 << 20)) as url,
        httpx.Client(base_url=url, timeout=60) as client,
    ):
        yield Api(client, tokens, digest, settings)


def free_port() -> int:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = int(sock.getsockname()[1])
    sock.close()
    return port


@contextmanager
def server_process(env: dict[str, str], workers: int = 1) -> Iterator[str]:
    """`clearance serve [--workers N]` as a real process on a free loopback port; then stopped."""
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "clearance",
            "serve",
            "--port",
            str(port),
            "--workers",
            str(workers),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(url + "/api/v1/key", timeout=1)
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("clearance serve did not start") from None
                time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        proc.wait(30)


@contextmanager
def serving(app: Any) -> Iterator[str]:
    """Run ``app`` under a real uvicorn server on a free loopback port, in a thread."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            app, host="127.0.0.1", port=port, log_level="warning", access_log=False, lifespan="on"
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(30)
