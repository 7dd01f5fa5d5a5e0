"""``LocalDeployer``: the :class:`~clearance.deploy.Deployer` port over the local agent.

Every call is an HTTP request to the agent's admin API (``admin.py``) with bounded timeouts.
When no agent answers for the state directory (no ``agent.json``, a dead pid, or an admin API
that does not answer), the first call starts one, detached in a session of its own, and waits
(bounded) for its ``agent.json``; a lock file keeps two callers from starting two agents.

Every failure becomes a :class:`~clearance.deploy.DeployError` naming the step, the service and
the slot, with the agent's own message.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import math
import os
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

import httpx

from clearance.deploy import Deployer, DeployError, Routes, ServiceSpec, SlotSpec, SlotState
from clearance.deploy.local.processes import alive

__all__ = ["LocalDeployer"]

#: Seconds a call that drains or reloads may take beyond ``timeout``: the agent waits up to its
#: drain bound (10 s) for in-flight requests, and an nginx reload up to 10 s.
_DRAIN_MARGIN = 30.0


@dataclass(frozen=True)
class _AgentInfo:
    pid: int
    admin_url: str
    token: str
    router: str


class LocalDeployer:
    """Run a service's versions as processes on this host, behind the built-in router or nginx.

    ``state_dir`` holds the agent's files; ``router`` is ``"builtin"`` or ``"nginx"`` (for the
    agent this deployer starts; one already running must use the same); ``ports`` gives each
    service's traffic port on 127.0.0.1 (a service not listed gets a free port, kept for as long
    as the agent runs). ``timeout`` bounds each admin call, ``start_timeout`` an agent's start;
    ``agent_args`` are extra options for an agent this deployer starts (``--grace``,
    ``--drain``, ``--max-records``).
    """

    leases = True  # the agent returns an unrenewed split to stable by itself

    def __init__(
        self,
        state_dir: Path,
        router: str = "builtin",
        ports: Mapping[str, int] | None = None,
        *,
        timeout: float = 15.0,
        start_timeout: float = 15.0,
        agent_args: Sequence[str] = (),
    ) -> None:
        if router not in ("builtin", "nginx"):
            raise ValueError(f"router must be 'builtin' or 'nginx', got {router!r}")
        self.state_dir = Path(state_dir).resolve()
        self.router = router
        self.ports = dict(ports or {})
        self.timeout = timeout
        self.start_timeout = start_timeout
        self.agent_args = list(agent_args)
        self._agent: _AgentInfo | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._http = httpx.Client(trust_env=False, timeout=httpx.Timeout(timeout, connect=2.0))

    # -- the Deployer port ------------------------------------------------------------------

    def deploy(self, service: ServiceSpec, slot: SlotSpec) -> SlotState:
        """Start ``slot`` (replacing what ran there) and wait until it is healthy."""
        port = self.ports.get(service.name, 0)
        self._call(
            "declare",
            service.name,
            slot.slot,
            "PUT",
            f"/services/{service.name}",
            json={"port": port},
        )
        body = {
            "argv": self.command(service, slot),
            "env": dict(service.env),
            "health": service.health,
            "ready_timeout": float(service.ready_timeout),
            "digest": slot.digest,
            "version": slot.version,
        }
        state = self._call(
            "deploy",
            service.name,
            slot.slot,
            "PUT",
            f"/services/{service.name}/slots/{slot.slot}",
            json=body,
            timeout=service.ready_timeout + _DRAIN_MARGIN,
        )
        return _slot_state(state)

    def route(self, service: str, routes: Routes, *, lease: float | None = None) -> None:
        """Apply ``routes`` atomically; with ``lease``, back to stable unless renewed in time."""
        body = {**routes.to_json(), "lease": lease}
        path = f"/services/{service}/routes"
        self._call("route", service, "*", "PUT", path, json=body, timeout=self._long)

    def scale_down(self, service: str, slot: str) -> None:
        path = f"/services/{service}/slots/{slot}"
        self._call("scale down", service, slot, "DELETE", path, timeout=self._long)

    def promote(self, service: str, slot: str) -> None:
        path = f"/services/{service}/promote/{slot}"
        self._call("promote", service, slot, "POST", path, timeout=self._long)

    def slots(self, service: str) -> dict[str, SlotState]:
        """What runs now, by slot; nothing for a service the agent has not seen yet."""
        described = self.services().get(service)
        if described is None:
            return {}
        return {name: _slot_state(state) for name, state in described["slots"].items()}

    def routes(self, service: str) -> Routes | None:
        """The split in force now; None before the service ever took traffic."""
        described = self.services().get(service)
        if described is None or not described["routes"]["weights"]:
            return None
        return Routes(described["routes"]["weights"], described["routes"]["tenants"])

    # -- beyond the port --------------------------------------------------------------------

    def describe(self, service: str) -> dict[str, Any]:
        """``{"port", "slots", "routes", "lease_expires_at", "lease_expired_at"}`` of a service."""
        described: dict[str, Any] = self._call(
            "describe", service, "*", "GET", f"/services/{service}"
        )
        return described

    def services(self) -> dict[str, dict[str, Any]]:
        """Every declared service, described."""
        answer = self._call("list", "*", "*", "GET", "/services")
        services: dict[str, dict[str, Any]] = answer["services"]
        return services

    def remove(self, service: str) -> None:
        """Stop every slot of ``service`` and close its listener (the agent forgets it)."""
        self._call("remove", service, "*", "DELETE", f"/services/{service}", timeout=self._long)

    def records(
        self, service: str, since: float, until: float, slot: str | None = None
    ) -> list[dict[str, Any]]:
        """Request records and pushed values with ``since <= t <= until``, oldest first.

        Raises :class:`DeployError` when the agent's ring buffer no longer holds the start of
        the window: a cut window must not pass for a quiet one."""
        params: dict[str, Any] = {"since": since}
        if math.isfinite(until):
            params["until"] = until
        if slot is not None:
            params["slot"] = slot
        answer = self._call(
            "records", service, slot or "*", "GET", f"/services/{service}/records", params=params
        )
        records: list[dict[str, Any]] = answer["records"]
        if answer.get("dropped"):
            raise DeployError(
                f"records {service}/{slot or '*'}: the agent's buffer dropped up to "
                f"{answer['dropped']:,} records of the window starting at {since}",
                where=str(self.state_dir),
                hint="shorten the window, or start the agent with a larger --max-records",
            )
        return records

    def command(self, service: ServiceSpec, slot: SlotSpec) -> list[str]:
        """``service.run`` as argv: split like a shell would, then placeholders filled per
        argument (a path with spaces stays one argument); ``{port}`` is left to the agent."""
        try:
            tokens = shlex.split(service.run)
        except ValueError as exc:
            raise DeployError(
                f"deploy {service.name}/{slot.slot}: cannot split run: {exc}",
                where=f"services.{service.name}.run",
            ) from exc
        if not tokens:
            raise DeployError(
                f"deploy {service.name}/{slot.slot}: the run command is empty",
                where=f"services.{service.name}.run",
            )
        if slot.artifact is None and "{artifact}" in service.run:
            raise DeployError(
                f"deploy {service.name}/{slot.slot}: run needs {{artifact}} but the slot has "
                "no artifact path",
                where=f"services.{service.name}.run",
            )
        values = {"{artifact}": slot.artifact or "", "{slot}": slot.slot, "{version}": slot.version}
        argv = []
        for token in tokens:
            for placeholder, value in values.items():
                token = token.replace(placeholder, value)
            argv.append(token)
        return argv

    def stop(self) -> None:
        """Stop the agent and every process it runs (a no-op when none runs)."""
        info = self._read_info()
        try:
            if info is not None and alive(info.pid):
                os.kill(info.pid, signal.SIGTERM)
                if not self._wait_exit(info.pid, self.start_timeout + 15.0):
                    os.kill(info.pid, signal.SIGKILL)
                    self._wait_exit(info.pid, 5.0)
        finally:
            self._agent = None
            if self._process is not None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self._process.wait(timeout=5.0)
                self._process = None
            self._http.close()

    def close(self) -> None:
        """Close the HTTP client; the agent keeps running."""
        self._http.close()
        if self._process is not None and self._process.poll() is None:
            # The agent outlives this client by design (it supervises the environment); whoever
            # stops it reaps it by pid. Forget the handle without a "still running" warning.
            self._process.returncode = 0
            self._process = None

    def __enter__(self) -> LocalDeployer:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- the agent ---------------------------------------------------------------------------

    @property
    def _long(self) -> float:
        return self.timeout + _DRAIN_MARGIN

    def _call(
        self,
        step: str,
        service: str,
        slot: str,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        timeout: float | None = None,
    ) -> Any:
        what = f"{step} {service}/{slot}" if slot != "*" else f"{step} {service}"
        agent = self._ensure_agent(what)
        try:
            answer = self._http.request(
                method,
                agent.admin_url + path,
                json=json,
                params=params,
                headers={"Authorization": f"Bearer {agent.token}"},
                timeout=httpx.Timeout(timeout or self.timeout, connect=2.0),
            )
        except httpx.TimeoutException as exc:
            self._agent = None
            raise DeployError(
                f"{what}: the agent did not answer in time ({exc})", where=str(self.state_dir)
            ) from exc
        except httpx.HTTPError as exc:
            self._agent = None
            raise DeployError(
                f"{what}: cannot reach the agent at {agent.admin_url}: {exc}",
                where=str(self.state_dir),
            ) from exc
        try:
            data = answer.json()
        except ValueError:
            data = None
        if answer.is_success and data is not None:
            return data
        message = answer.text[:500]
        if isinstance(data, dict) and isinstance(data.get("error"), dict):
            message = str(data["error"].get("message"))
        raise DeployError(
            f"{what} failed ({answer.status_code}): {message}", where=str(self.state_dir)
        )

    def _read_info(self) -> _AgentInfo | None:
        try:
            data = json.loads((self.state_dir / "agent.json").read_text())
            return _AgentInfo(
                int(data["pid"]),
                str(data["admin_url"]),
                str(data["token"]),
                str(data.get("router", "builtin")),
            )
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def _answers(self, info: _AgentInfo) -> bool:
        if not alive(info.pid):
            return False
        try:
            answer = self._http.get(
                f"{info.admin_url}/services",
                headers={"Authorization": f"Bearer {info.token}"},
                timeout=2.0,
            )
        except httpx.HTTPError:
            return False
        return answer.status_code == 200

    def _ensure_agent(self, what: str) -> _AgentInfo:
        if self._agent is not None:
            return self._agent
        self.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        with self._start_lock():
            info = self._read_info()
            if info is None or not self._answers(info):
                info = self._start_agent(what)
        if info.router != self.router:
            raise DeployError(
                f"{what}: the agent for {self.state_dir} runs the {info.router} router, not "
                f"{self.router}",
                hint="stop it first (LocalDeployer.stop) or use the same router",
            )
        self._agent = info
        return info

    @contextlib.contextmanager
    def _start_lock(self) -> Iterator[None]:
        with (self.state_dir / "start.lock").open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            yield

    def _start_agent(self, what: str) -> _AgentInfo:
        (self.state_dir / "agent.json").unlink(missing_ok=True)
        log_path = self.state_dir / "agent.log"
        command = [
            sys.executable,
            "-m",
            "clearance.deploy.local.agent",
            "--state-dir",
            str(self.state_dir),
            "--router",
            self.router,
            *self.agent_args,
        ]
        with log_path.open("ab") as log_file:
            process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=log_file,
                start_new_session=True,
                close_fds=True,
            )
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            info = self._read_info()
            if info is not None and info.pid == process.pid:
                self._process = process
                return info
            if process.poll() is not None:
                break
            time.sleep(0.02)
        if process.poll() is None:
            process.kill()
        process.wait()
        tail = log_path.read_text(errors="replace").strip().splitlines()[-8:]
        raise DeployError(
            f"{what}: the local deployer agent did not start within {self.start_timeout:g}s "
            f"(exit code {process.returncode}): " + " | ".join(tail),
            where=str(log_path),
        )

    def _wait_exit(self, pid: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process is not None and self._process.pid == pid:
                if self._process.poll() is not None:
                    return True
            elif not alive(pid):
                return True
            time.sleep(0.02)
        return False


def _slot_state(data: Mapping[str, Any]) -> SlotState:
    return SlotState(
        slot=str(data["slot"]),
        digest=str(data["digest"]),
        version=str(data["version"]),
        healthy=bool(data["healthy"]),
        endpoint=data.get("endpoint"),
    )


if TYPE_CHECKING:  # mypy checks that LocalDeployer implements the port
    _conforms: Deployer = LocalDeployer(Path())
