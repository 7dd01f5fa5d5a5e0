"""Slot processes: start one version on a free loopback port, wait until healthy, stop it.

Every process runs in a session (process group) of its own, so stopping it stops whatever it
spawned: SIGTERM to the group, SIGKILL after a grace period. On Linux it also gets
``PR_SET_PDEATHSIG``: if the agent itself is killed outright, its slot processes go with it
rather than holding ports nobody manages. Standard output and error go to files under
``logs/`` in the state directory; a failed start quotes the last lines of standard error.

The environment is a minimal inherited one (:data:`INHERITED`), then the slot's own ``env``,
then what the agent tells every process: ``PORT``, ``CLEARANCE_SERVICE``, ``CLEARANCE_SLOT``,
``CLEARANCE_VERSION`` and ``CLEARANCE_PUSH_URL``.
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from clearance.deploy.local.processes import free_port, signal_group

__all__ = ["INHERITED", "Slot", "StartError", "start_slot"]

log = logging.getLogger(__name__)

#: The only variables a slot process inherits from the agent's environment.
INHERITED = (
    "PATH",
    "HOME",
    "USER",
    "LOGNAME",
    "LANG",
    "LC_ALL",
    "LC_CTYPE",
    "TZ",
    "TMPDIR",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
)
_TAIL_LINES = 12
_TAIL_BYTES = 8192


class StartError(Exception):
    """A slot process could not be started or never became healthy; ``status`` is the HTTP
    status the admin API answers with (400: the command itself is wrong, 503: not ready)."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


@dataclass(eq=False)
class Slot:
    """One running process of one version. ``name`` is the slot it serves now (a promotion
    renames ``canary`` to ``stable``); ``origin`` the slot it was started as."""

    service: str
    name: str
    origin: str
    digest: str
    version: str
    port: int
    process: asyncio.subprocess.Process
    stderr: Path
    healthy: bool = False
    inflight: int = 0
    stopping: bool = False
    watcher: asyncio.Task[None] | None = field(default=None, repr=False)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def label(self) -> str:
        return f"{self.service}/{self.name} {self.version} (pid {self.process.pid})"

    @property
    def ready(self) -> bool:
        """Passed its health check and still runs."""
        return self.healthy and self.process.returncode is None

    def state(self) -> dict[str, object]:
        return {
            "slot": self.name,
            "digest": self.digest,
            "version": self.version,
            "healthy": self.ready,
            "endpoint": self.endpoint,
        }

    async def drain(self, timeout: float) -> None:
        """Wait (at most ``timeout`` seconds) until no proxied request is in flight here."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self.inflight > 0 and loop.time() < deadline:
            await asyncio.sleep(0.02)
        if self.inflight > 0:
            log.warning(
                "%s: %d requests still in flight after %.1fs", self.label, self.inflight, timeout
            )

    async def stop(self, grace: float) -> None:
        """SIGTERM the process group, SIGKILL it after ``grace`` seconds. Idempotent."""
        self.stopping = True
        self.healthy = False
        if self.process.returncode is None:
            signal_group(self.process.pid, signal.SIGTERM)
            try:
                await asyncio.wait_for(self.process.wait(), grace)
            except TimeoutError:
                log.warning("%s ignored SIGTERM for %.1fs: SIGKILL", self.label, grace)
        signal_group(self.process.pid, signal.SIGKILL)  # and whatever it left behind
        await self.process.wait()
        if self.watcher is not None:
            await self.watcher
        log.info("stopped %s", self.label)

    def stderr_tail(self) -> str:
        return tail(self.stderr) or "(nothing on stderr)"


def tail(path: Path, lines: int = _TAIL_LINES) -> str:
    """The last ``lines`` lines of a log file (empty when there is none)."""
    try:
        with path.open("rb") as handle:
            handle.seek(max(0, path.stat().st_size - _TAIL_BYTES))
            text = handle.read().decode("utf-8", "replace")
    except OSError:
        return ""
    return "\n".join(text.strip().splitlines()[-lines:])


def _die_with_parent() -> Callable[[], None] | None:
    """A ``preexec_fn`` that asks Linux to SIGTERM the child when the agent dies."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    pr_set_pdeathsig = 1

    def preexec() -> None:
        prctl(pr_set_pdeathsig, signal.SIGTERM)

    return preexec


_PREEXEC = _die_with_parent()


async def start_slot(
    *,
    service: str,
    slot: str,
    argv: Sequence[str],
    env: Mapping[str, str],
    health: str,
    ready_timeout: float,
    digest: str,
    version: str,
    push_url: str,
    logs: Path,
    http: httpx.AsyncClient,
    registry: set[Slot],
) -> Slot:
    """Start ``argv`` (``{port}`` replaced by a free port) and wait until ``health`` answers 2xx.

    Raises :class:`StartError` (the process is stopped) when it cannot be spawned, exits early
    or is not ready within ``ready_timeout`` seconds. The process is in ``registry`` from the
    moment it runs (a shutdown finds it even while it starts) until a failed start stopped it.
    """
    port = free_port()
    command = [arg.replace("{port}", str(port)) for arg in argv]
    environment = {k: os.environ[k] for k in INHERITED if k in os.environ}
    environment.update(env)
    environment.update(
        PORT=str(port),
        CLEARANCE_SERVICE=service,
        CLEARANCE_SLOT=slot,
        CLEARANCE_VERSION=version,
        CLEARANCE_PUSH_URL=push_url,
    )
    logs.mkdir(parents=True, exist_ok=True)
    stem = f"{service}.{slot}.{version}.{port}"
    stdout, stderr = logs / f"{stem}.out", logs / f"{stem}.err"
    where = f"{service}/{slot}"
    try:
        with stdout.open("wb") as out, stderr.open("wb") as err:
            process = await asyncio.create_subprocess_exec(
                *command,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                env=environment,
                start_new_session=True,
                preexec_fn=_PREEXEC,  # a single prctl call: takes no lock
            )
    except OSError as exc:
        raise StartError(f"{where}: cannot run {command[0]!r}: {exc.strerror or exc}", 400) from exc
    started = Slot(service, slot, slot, digest, version, port, process, stderr)
    registry.add(started)
    log.info("starting %s on port %d", started.label, port)
    try:
        await _wait_ready(started, f"http://127.0.0.1:{port}{health}", ready_timeout, http)
    except BaseException:
        await started.stop(grace=1.0)
        registry.discard(started)
        raise
    started.healthy = True

    async def watch() -> None:
        code = await process.wait()
        if not started.stopping:
            started.healthy = False
            log.error(
                "%s exited by itself (code %s): %s", started.label, code, started.stderr_tail()
            )

    started.watcher = asyncio.create_task(watch())
    return started


async def _wait_ready(slot: Slot, url: str, timeout: float, http: httpx.AsyncClient) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    exited = asyncio.ensure_future(slot.process.wait())
    delay, last = 0.02, "no answer yet"
    try:
        while True:
            if exited.done():
                raise StartError(
                    f"{slot.service}/{slot.name}: the process exited with code "
                    f"{exited.result()} before it was ready. stderr:\n{slot.stderr_tail()}",
                    503,
                )
            try:
                answer = await http.get(url, timeout=max(0.05, min(1.0, deadline - loop.time())))
                if 200 <= answer.status_code < 300:
                    return
                last = f"{url} answered {answer.status_code}"
            except httpx.HTTPError as exc:
                last = f"{url}: {type(exc).__name__}"
            if loop.time() >= deadline:
                raise StartError(
                    f"{slot.service}/{slot.name}: not ready after {timeout:g}s ({last}). "
                    f"stderr:\n{slot.stderr_tail()}",
                    503,
                )
            await asyncio.wait({exited}, timeout=min(delay, max(0.0, deadline - loop.time())))
            delay = min(delay * 1.5, 0.25)
    finally:
        if not exited.done():
            exited.cancel()
