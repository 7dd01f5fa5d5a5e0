"""The ``command`` deployer: the user's own scripts drive any platform (Kubernetes with Argo
Rollouts, a PaaS, VMs), Clearance decides when and how much.

Each command is a template from ``deploy.<env>.commands`` in ``clearance.yaml``, split like a
shell line (no shell runs it) with these placeholders filled: ``{service}``, ``{slot}``,
``{digest}``, ``{version}``, ``{artifact}``, ``{weight}`` (the canary's percent), ``{weights}``
and ``{tenants}`` (JSON). The same values are in the environment as ``CLEARANCE_SERVICE``,
``CLEARANCE_SLOT``, ``CLEARANCE_DIGEST``, ``CLEARANCE_VERSION``, ``CLEARANCE_ARTIFACT``,
``CLEARANCE_WEIGHT``, ``CLEARANCE_WEIGHTS`` and ``CLEARANCE_TENANTS``. A command that exits
non-zero or outlives ``timeout`` fails the step with its last lines of output; the controller
then stops the rollout in a safe state. What each slot runs is remembered in ``state.json``
beside the deployer, since a script cannot be asked.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from clearance.core.rollout import Commands
from clearance.deploy import CANARY, STABLE, DeployError, Routes, ServiceSpec, SlotSpec, SlotState
from clearance.files import write_text


class CommandDeployer:
    leases = False  # a script sets a split once; nothing returns it to stable on its own

    def __init__(self, commands: Commands, state_dir: Path, timeout: float = 60.0) -> None:
        self.commands = commands
        self.state_dir = state_dir
        self.timeout = timeout

    # -- the port --------------------------------------------------------------------------------

    def deploy(self, service: ServiceSpec, slot: SlotSpec) -> SlotState:
        values = {
            "service": service.name,
            "slot": slot.slot,
            "digest": slot.digest,
            "version": slot.version,
            "artifact": slot.artifact or "",
        }
        self._run("deploy", self.commands.deploy, values)
        state = SlotState(slot.slot, slot.digest, slot.version, healthy=True)
        self._remember(service.name, lambda slots: slots.__setitem__(slot.slot, _json(state)))
        return state

    def route(self, service: str, routes: Routes, *, lease: float | None = None) -> None:
        values = {
            "service": service,
            "weight": str(routes.weights.get(CANARY, 0)),
            "weights": json.dumps(dict(routes.weights), sort_keys=True),
            "tenants": json.dumps(dict(routes.tenants), sort_keys=True),
        }
        self._run("route", self.commands.route, values)
        self._remember_routes(service, routes)

    def scale_down(self, service: str, slot: str) -> None:
        self._run("scale_down", self.commands.scale_down, {"service": service, "slot": slot})
        self._remember(service, lambda slots: slots.pop(slot, None))

    def promote(self, service: str, slot: str) -> None:
        if self.commands.promote:
            self._run("promote", self.commands.promote, {"service": service, "slot": slot})

        def swap(slots: dict[str, Any]) -> None:
            if slot in slots:
                slots[STABLE] = {**slots.pop(slot), "slot": STABLE}

        self._remember(service, swap)

    def routes(self, service: str) -> Routes | None:
        path = self.state_dir / "routes.json"
        found = json.loads(path.read_text()).get(service) if path.exists() else None
        return Routes(found["weights"], found["tenants"]) if found else None

    def slots(self, service: str) -> dict[str, SlotState]:
        return {
            name: SlotState(s["slot"], s["digest"], s["version"], s["healthy"])
            for name, s in self._state().get(service, {}).items()
        }

    # -- internals -------------------------------------------------------------------------------

    def _run(self, step: str, template: str, values: Mapping[str, str]) -> None:
        try:
            argv = [_fill(token, values) for token in shlex.split(template)]
        except ValueError as exc:
            raise DeployError(f"deploy.commands.{step}: cannot split {template!r}: {exc}") from exc
        if not argv:
            raise DeployError(f"deploy.commands.{step} is empty")
        env = {**os.environ, **{f"CLEARANCE_{k.upper()}": v for k, v in values.items()}}
        what = f"{step} of {values.get('service')}" + (
            f" slot {values['slot']}" if "slot" in values else ""
        )
        try:
            done = subprocess.run(
                argv,
                env=env,
                capture_output=True,
                text=True,
                timeout=self.timeout,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise DeployError(
                f"{what}: {argv[0]} did not finish within {self.timeout:g}s and was killed"
            ) from exc
        except OSError as exc:
            raise DeployError(f"{what}: cannot run {argv[0]}: {exc.strerror}") from exc
        if done.returncode != 0:
            tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-5:])
            raise DeployError(
                f"{what}: {argv[0]} exited with {done.returncode}" + (f": {tail}" if tail else "")
            )

    def _state(self) -> dict[str, dict[str, Any]]:
        path = self.state_dir / "state.json"
        if not path.exists():
            return {}
        data: dict[str, dict[str, Any]] = json.loads(path.read_text())
        return data

    def _remember_routes(self, service: str, routes: Routes) -> None:
        path = self.state_dir / "routes.json"
        known = json.loads(path.read_text()) if path.exists() else {}
        known[service] = routes.to_json()
        self.state_dir.mkdir(parents=True, exist_ok=True)
        write_text(path, json.dumps(known, indent=1, sort_keys=True))

    def _remember(self, service: str, edit: Any) -> None:
        state = self._state()
        edit(state.setdefault(service, {}))
        self.state_dir.mkdir(parents=True, exist_ok=True)
        write_text(self.state_dir / "state.json", json.dumps(state, indent=1, sort_keys=True))


def _fill(token: str, values: Mapping[str, str]) -> str:
    for key, value in values.items():
        token = token.replace("{" + key + "}", value)
    return token


def _json(state: SlotState) -> dict[str, Any]:
    return {
        "slot": state.slot,
        "digest": state.digest,
        "version": state.version,
        "healthy": state.healthy,
    }
