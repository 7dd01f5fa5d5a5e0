"""Two `clearance serve` processes on one PostgreSQL, 50 concurrent clients: one consistent log."""

from __future__ import annotations

import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from clearance.core.roles import Role
from clearance.settings import Settings
from clearance.usecases.artifacts import BuildInfo, register_artifact
from clearance.usecases.identity import create_token
from clearance.usecases.instance import init, open_instance
from clearance.usecases.ledger import verify_ledger
from clearance.vcs.git import GitRepo
from tests.conftest import portal_repo
from tests.server.conftest import server_process

CLIENTS = 50
ROUNDS = 4


@pytest.fixture
def two_servers(
    pg_url: str, tmp_path: Path
) -> Iterator[tuple[list[str], Settings, dict[str, str]]]:
    home = tmp_path / "home"
    settings = Settings.from_env({"CLEARANCE_DATABASE_URL": pg_url}, home=home)
    repo = portal_repo(tmp_path / "clinic")
    digests = []
    with init(settings, actor="admin", origin="clearance.test/pg") as inst:
        for i in range(5):
            artifact = tmp_path / f"portal-{i}.zip"
            artifact.write_bytes(f"portal build {i}".encode())
            digests.append(
                register_artifact(
                    inst,
                    build=BuildInfo("HEAD"),
                    actor="ci",
                    path=artifact,
                    repo=GitRepo(repo),
                    base="HEAD~1",
                ).digest
            )
        tokens = {
            "ci": create_token(inst, name="ci", role=Role.CI, actor="admin").token,
            "deployer": create_token(
                inst, name="deployer", role=Role.DEPLOYER, actor="admin"
            ).token,
        }
    env = {**os.environ, "CLEARANCE_HOME": str(home), "CLEARANCE_DATABASE_URL": pg_url}
    with server_process(env) as first, server_process(env) as second:
        yield [first, second], settings, {"digests": ",".join(digests), **tokens}


@pytest.mark.postgres
def test_two_servers_fifty_clients_one_consistent_ledger(
    two_servers: tuple[list[str], Settings, dict[str, str]],
) -> None:
    urls, settings, secrets = two_servers
    digests = secrets["digests"].split(",")
    with open_instance(settings) as inst:
        before = inst.ledger.size()

    def client(n: int) -> tuple[int, int]:
        url = urls[n % 2]
        attested = promoted = 0
        with httpx.Client(base_url=url + "/api/v1", timeout=120) as http:
            for r in range(ROUNDS):
                digest = digests[(n + r) % len(digests)]
                if (n + r) % 3 == 0:
                    response = http.post(
                        f"/artifacts/{digest}/promotions",
                        json={"env": "dev"},
                        headers={"Authorization": f"Bearer {secrets['deployer']}"},
                    )
                    assert response.status_code == 200, response.text
                    promoted += 1
                else:
                    response = http.post(
                        f"/artifacts/{digest}/evidence",
                        headers={"Authorization": f"Bearer {secrets['ci']}"},
                        data={"type": "contract-tests"},
                        files={
                            "report": (
                                "c.json",
                                f'{{"passed": true, "client": {n}, "round": {r}}}'.encode(),
                                "application/json",
                            )
                        },
                    )
                    assert response.status_code == 200, response.text
                    attested += 1
        return attested, promoted

    with ThreadPoolExecutor(CLIENTS) as pool:
        results = list(pool.map(client, range(CLIENTS)))
    attested = sum(a for a, _ in results)
    promoted = sum(p for _, p in results)
    with open_instance(settings) as inst:
        result = verify_ledger(inst)
        assert result.ok, result.problems[:3]
        assert result.size == before + attested + promoted
        kinds = [e.kind for e in inst.ledger.find()][before:]
    assert kinds.count("evidence.attested") == attested
    assert kinds.count("promotion.recorded") == promoted
