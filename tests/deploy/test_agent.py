"""The agent's life: started on demand, one per state directory, stopping what it started."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from clearance.deploy import DeployError
from clearance.deploy.local import LocalDeployer
from clearance.deploy.local.processes import alive
from tests.deploy.conftest import spec, version, wait_for


@pytest.fixture
def deployer(tmp_path: Path) -> Iterator[LocalDeployer]:
    local = LocalDeployer(tmp_path / "env")
    try:
        yield local
    finally:
        local.stop()


def slot_pid(deployer: LocalDeployer, service: str, slot: str) -> int:
    endpoint = deployer.slots(service)[slot].endpoint
    return int(httpx.get(f"{endpoint}/whoami", trust_env=False).json()["pid"])


def info(deployer: LocalDeployer) -> dict[str, object]:
    data: dict[str, object] = json.loads((deployer.state_dir / "agent.json").read_text())
    return data


class TestLifeCycle:
    def test_sigterm_stops_slots_then_the_agent(self, deployer: LocalDeployer) -> None:
        deployer.deploy(spec("orders"), version("1.0.0"))
        deployer.deploy(spec("orders"), version("1.1.0", "canary"))
        children = [slot_pid(deployer, "orders", slot) for slot in ("stable", "canary")]
        agent = info(deployer)
        assert set(agent) == {"pid", "admin_url", "token", "router"}
        assert len(str(agent["token"])) >= 43  # 32 random bytes, base64
        pid = int(str(agent["pid"]))
        os.kill(pid, signal.SIGTERM)
        assert deployer._process is not None  # this client started the agent: it reaps it
        assert deployer._process.wait(15) == 0
        assert not any(alive(child) for child in children)
        assert not (deployer.state_dir / "agent.json").exists()
        log = (deployer.state_dir / "agent.log").read_text()
        assert str(agent["token"]) not in log

    def test_a_dead_agent_is_replaced_on_the_next_call(self, deployer: LocalDeployer) -> None:
        deployer.deploy(spec("orders"), version("1.0.0"))
        child = slot_pid(deployer, "orders", "stable")
        first = int(str(info(deployer)["pid"]))
        os.kill(first, signal.SIGKILL)
        assert deployer._process is not None
        deployer._process.wait(5)
        wait_for(lambda: not alive(child), 5, "the slot process dies with its agent")
        with pytest.raises(DeployError, match="cannot reach the agent"):
            deployer.slots("orders")
        assert deployer.services() == {}  # a fresh agent, started on demand
        assert int(str(info(deployer)["pid"])) != first

    def test_one_agent_per_state_directory(self, deployer: LocalDeployer) -> None:
        deployer.services()
        second = subprocess.run(
            [
                sys.executable,
                "-m",
                "clearance.deploy.local.agent",
                "--state-dir",
                str(deployer.state_dir),
            ],
            capture_output=True,
            text=True,
            timeout=20,
        )
        assert second.returncode == 3
        assert "another agent already runs" in second.stderr

    def test_a_second_client_shares_the_agent_but_not_another_router(
        self, deployer: LocalDeployer
    ) -> None:
        deployer.deploy(spec("orders"), version("1.0.0"))
        with LocalDeployer(deployer.state_dir) as other:
            assert other.slots("orders") == deployer.slots("orders")
        with (
            LocalDeployer(deployer.state_dir, router="nginx") as nginx,
            pytest.raises(DeployError, match="runs the builtin router, not nginx"),
        ):
            nginx.slots("orders")

    def test_stop_without_an_agent_is_a_no_op(self, tmp_path: Path) -> None:
        LocalDeployer(tmp_path / "nothing").stop()

    def test_a_cut_records_window_is_an_error(self, tmp_path: Path) -> None:
        local = LocalDeployer(tmp_path / "small", agent_args=["--max-records", "5"])
        try:
            local.deploy(spec("orders"), version("1.0.0"))
            front = f"http://127.0.0.1:{local.describe('orders')['port']}/orders"
            answered = []
            with httpx.Client(trust_env=False) as http:
                for _ in range(8):
                    http.get(front)
                    time.sleep(0.03)  # the router records a response just after sending it
                    answered.append(time.time())
            with pytest.raises(DeployError, match="dropped up to 3 records"):
                local.records("orders", answered[0] - 1, time.time())
            kept = local.records("orders", answered[2], time.time())  # after what was evicted
            assert [r["seq"] for r in kept] == [4, 5, 6, 7, 8]
        finally:
            local.stop()
