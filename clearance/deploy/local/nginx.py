"""nginx as the router: render its configuration, validate and reload it, read its access log.

The production router on VMs. The agent (``--router nginx``) keeps one nginx master whose every
file lives in ``<state>/nginx/``: ``nginx.conf``, ``nginx.pid``, ``error.log``, ``access.log``
and ``tmp/`` (never ``/etc/nginx``). It runs as the current user with ``daemon on``; as root it
says ``user root;`` so that workers may write the logs in the private state directory.

Per service the configuration (:func:`render`) holds:

- an ``upstream`` per slot (a slot that runs nothing gets a ``down`` server: 502, never a
  request to a stranger's port);
- a ``split_clients`` on ``$request_id`` for the weights (a hash of a random id per request:
  the shares hold on average, not exactly per cycle as in the built-in router);
- a ``map $http_x_tenant`` for tenant pins (nginx matches those strings ignoring case);
- ``add_header X-Clearance-Slot`` / ``X-Clearance-Version`` and a JSON ``log_format`` with
  time, slot, version, tenant, method, path, status and request time, to ``access.log``, which
  :class:`AccessLogTail` feeds into the same record buffers as the built-in router.

:meth:`Nginx.apply` writes a candidate file, checks it with ``nginx -t``, moves it into place
and reloads (or starts) nginx; it returns once new workers run the new configuration.
:meth:`Nginx.settled` waits until the old workers have finished their last requests: from then
on no request is served by the previous configuration.

Client connections are not kept alive (``keepalive_timeout 0``): on a reload the old workers
close their idle kept-alive connections at once, and a client that was just sending its next
request on one loses it (in the tests, a request failed within a few switches under load). A
new loopback connection per request costs a Python client about 0.3 ms, and a switch then
fails nothing. Upstream connections to the slots are kept alive.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import signal
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from clearance.deploy import SLOTS, TENANT_HEADER
from clearance.deploy.local.processes import alive, children

__all__ = [
    "NGINX",
    "AccessLogTail",
    "Nginx",
    "NginxError",
    "NginxService",
    "render",
    "variable_id",
]

log = logging.getLogger(__name__)

NGINX = "/usr/sbin/nginx"
_TENANT_VARIABLE = "$http_" + TENANT_HEADER.lower().replace("-", "_")
_MAP_SPECIAL = frozenset({"default", "hostnames", "include", "volatile"})


class NginxError(Exception):
    """nginx refused the configuration, or did not start, reload or stop in time."""


@dataclass(frozen=True)
class NginxService:
    """One service as nginx sees it: its port, routes, and ``(port, version)`` per slot."""

    name: str
    port: int
    weights: Mapping[str, int]
    tenants: Mapping[str, str] = field(default_factory=dict)
    backends: Mapping[str, tuple[int, str]] = field(default_factory=dict)


def variable_id(service: str) -> str:
    """An nginx variable name part for ``service`` (service names may hold ``-``)."""
    if "-" not in service:
        return service
    suffix = hashlib.sha256(service.encode()).hexdigest()[:6]
    return f"{service.replace('-', '_')}_{suffix}"


def render(services: Sequence[NginxService], prefix: Path, *, as_root: bool) -> str:
    """The whole nginx configuration for ``services``, every path inside ``prefix``."""
    lines = [
        "# Written by the Clearance agent on every change; edits here are overwritten.",
        "daemon on;",
        f"pid {prefix}/nginx.pid;",
        f"error_log {prefix}/error.log warn;",
        "worker_processes 1;",
        *(["user root;"] if as_root else []),
        "events { worker_connections 1024; }",
        "http {",
        *(f"    {kind}_temp_path {prefix / 'tmp' / kind};" for kind in _TEMP_KINDS),
        "    access_log off;",
        "    server_tokens off;",
        "    proxy_http_version 1.1;",
        '    proxy_set_header Connection "";',
        "    proxy_set_header Host $http_host;",
        "    proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;",
        "    proxy_connect_timeout 2s;",
        "    proxy_read_timeout 120s;",
        "    map_hash_bucket_size 128;",
        "    variables_hash_bucket_size 128;",
        "    variables_hash_max_size 4096;",
    ]
    for service in services:
        lines += _render_service(service, prefix)
    lines.append("}")
    return "\n".join(lines) + "\n"


_TEMP_KINDS = ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")


def _render_service(service: NginxService, prefix: Path) -> list[str]:
    vid = variable_id(service.name)
    slot_var, version_var = f"$clr_{vid}_slot", f"$clr_{vid}_version"
    fields = {
        "t": "$msec",
        "service": service.name,
        "slot": slot_var,
        "version": version_var,
        "tenant": _TENANT_VARIABLE,
        "method": "$request_method",
        "path": "$uri",
        "status": "$status",
        "request_time": "$request_time",
    }
    log_line = json.dumps(fields, separators=(",", ":"))
    lines = [f"    log_format clr_{vid} escape=json '{log_line}';"]
    for slot in SLOTS:
        if slot in service.backends:
            port, _ = service.backends[slot]
            lines.append(
                f"    upstream clr_{vid}_{slot} {{ server 127.0.0.1:{port}; keepalive 16; }}"
            )
        else:
            lines.append(f"    upstream clr_{vid}_{slot} {{ server 127.0.0.1:9 down; }}")
    shares = [(slot, service.weights.get(slot, 0)) for slot in SLOTS]
    shares = [(slot, weight) for slot, weight in shares if weight > 0]
    lines.append(f'    split_clients "${{request_id}}" $clr_{vid}_split {{')
    lines += [f"        {weight}% {slot};" for slot, weight in shares[:-1]]
    lines.append(f"        * {shares[-1][0]};")
    lines.append("    }")
    lines.append(f"    map {_TENANT_VARIABLE} {slot_var} {{")
    lines.append(f"        default $clr_{vid}_split;")
    for tenant, slot in sorted(service.tenants.items()):
        key = f"\\{tenant}" if tenant.lower() in _MAP_SPECIAL else tenant
        lines.append(f'        "{key}" {slot};')
    lines.append("    }")
    lines.append(f"    map {slot_var} {version_var} {{")
    lines.append('        default "";')
    for slot, (_, version) in sorted(service.backends.items()):
        lines.append(f'        {slot} "{version}";')
    lines.append("    }")
    lines += [
        "    server {",
        f"        listen 127.0.0.1:{service.port};",
        "        keepalive_timeout 0;",
        f"        access_log {prefix}/access.log clr_{vid};",
        "        location / {",
        f"            proxy_pass http://clr_{vid}_{slot_var};",
        f"            add_header X-Clearance-Slot {slot_var} always;",
        f"            add_header X-Clearance-Version {version_var} always;",
        "        }",
        "    }",
    ]
    return lines


class Nginx:
    """One nginx master with every file under ``prefix``."""

    def __init__(self, prefix: Path, binary: str = NGINX, timeout: float = 10.0) -> None:
        self.prefix = prefix
        self.binary = binary
        self.timeout = timeout
        self.conf = prefix / "nginx.conf"
        self.pid_file = prefix / "nginx.pid"
        self.access_log = prefix / "access.log"
        self.error_log = prefix / "error.log"
        self._retiring: set[int] = set()
        for kind in _TEMP_KINDS:
            (prefix / "tmp" / kind).mkdir(parents=True, exist_ok=True)

    def master(self) -> int | None:
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        return pid if alive(pid) else None

    async def apply(self, text: str) -> None:
        """Check ``text`` with ``nginx -t``, put it in place, and reload (or start) nginx."""
        candidate = self.prefix / "nginx.conf.new"
        _write(candidate, text)
        try:
            await self._run("-t", "-c", str(candidate))
        finally:
            candidate.unlink(missing_ok=True)
        previous = self.conf.read_text() if self.conf.exists() else None
        _write(self.conf, text)
        master = self.master()
        try:
            if master is None:
                await self._run("-c", str(self.conf))
                await self._until(lambda: self.master() is not None, "nginx did not start")
            else:
                before = children(master)
                mark = self._error_log_size()
                await self._run("-c", str(self.conf), "-s", "reload")
                await self._until(
                    lambda: bool(children(master) - before),
                    "nginx did not reload (it keeps its previous configuration)",
                    errors_after=mark,
                )
                self._retiring |= before
        except NginxError:
            if previous is not None:
                _write(self.conf, previous)
            raise

    async def settled(self, timeout: float) -> bool:
        """Wait until workers of older configurations exited; whether they did in time."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            self._retiring = {pid for pid in self._retiring if alive(pid)}
            if not self._retiring or loop.time() >= deadline:
                return not self._retiring
            await asyncio.sleep(0.01)

    def reopen_logs(self) -> None:
        master = self.master()
        if master is not None:
            os.kill(master, signal.SIGUSR1)

    async def stop(self, grace: float) -> None:
        """Graceful quit (SIGQUIT), then SIGTERM, then SIGKILL; idempotent."""
        master = self.master()
        if master is None:
            return
        workers = children(master)
        for sig in (signal.SIGQUIT, signal.SIGTERM, signal.SIGKILL):
            with contextlib.suppress(ProcessLookupError):
                os.kill(master, sig)
            with contextlib.suppress(NginxError):
                await self._until(lambda: not alive(master), "", grace)
                break
        for pid in workers:
            with contextlib.suppress(ProcessLookupError):
                if alive(pid):
                    os.kill(pid, signal.SIGKILL)
        log.info("stopped nginx (pid %d)", master)

    async def _run(self, *args: str) -> None:
        command = [self.binary, "-p", f"{self.prefix}/", "-e", str(self.error_log), *args]
        process = await asyncio.create_subprocess_exec(
            *command,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        try:
            output, _ = await asyncio.wait_for(process.communicate(), self.timeout)
        except TimeoutError as exc:
            process.kill()
            await process.wait()
            raise NginxError(f"nginx {' '.join(args)} took over {self.timeout:g}s") from exc
        if process.returncode != 0:
            text = output.decode("utf-8", "replace").strip()
            raise NginxError(f"nginx {' '.join(args)} failed: {text}")

    async def _until(
        self,
        done: Callable[[], bool],
        problem: str,
        timeout: float | None = None,
        errors_after: int | None = None,
    ) -> None:
        """Poll ``done``; fail after ``timeout``, or at once when nginx logs an ``[emerg]``
        after byte ``errors_after`` of its error log (a reload it refused)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + (self.timeout if timeout is None else timeout)
        while not done():
            emergency = self._emergency(errors_after) if errors_after is not None else None
            if emergency is not None:
                raise NginxError(f"{problem}: {emergency}")
            if loop.time() >= deadline:
                raise NginxError(f"{problem}; error.log: {_tail(self.error_log)}")
            await asyncio.sleep(0.005)

    def _error_log_size(self) -> int:
        try:
            return self.error_log.stat().st_size
        except OSError:
            return 0

    def _emergency(self, offset: int) -> str | None:
        try:
            with self.error_log.open("rb") as handle:
                handle.seek(offset)
                text = handle.read().decode("utf-8", "replace")
        except OSError:
            return None
        return next((line for line in text.splitlines() if "[emerg]" in line), None)


class AccessLogTail:
    """Follow nginx's JSON access log and hand each line, parsed, to ``sink``.

    Reads from where it left off every ``interval`` seconds; when the file grows over
    ``max_bytes`` it is renamed to ``access.log.1`` and nginx told to reopen its logs.
    """

    def __init__(
        self,
        nginx: Nginx,
        sink: Callable[[dict[str, Any]], None],
        interval: float = 0.05,
        max_bytes: int = 64 << 20,
    ) -> None:
        self.nginx = nginx
        self.sink = sink
        self.interval = interval
        self.max_bytes = max_bytes
        self._handle: Any = None
        self._partial = b""

    async def run(self) -> None:
        try:
            while True:
                self.poll()
                await asyncio.sleep(self.interval)
        finally:
            if self._handle is not None:
                self._handle.close()

    def poll(self) -> None:
        """Read every complete line written since the last call."""
        path = self.nginx.access_log
        if self._handle is None:
            try:
                self._handle = path.open("rb")
            except FileNotFoundError:
                return
        self._consume(self._handle.read())
        try:
            current = path.stat().st_ino
        except FileNotFoundError:
            current = None
        if current is not None and current != os.fstat(self._handle.fileno()).st_ino:
            self._consume(self._handle.read())
            self._handle.close()
            self._handle = path.open("rb")
            self._consume(self._handle.read())
        elif current is not None and self._handle.tell() > self.max_bytes:
            os.replace(path, path.with_name("access.log.1"))
            self.nginx.reopen_logs()

    def _consume(self, data: bytes) -> None:
        if not data:
            return
        *lines, self._partial = (self._partial + data).split(b"\n")
        for line in lines:
            try:
                entry = json.loads(line)
            except ValueError:
                log.warning("unreadable access log line: %r", line[:200])
                continue
            if isinstance(entry, dict):
                self.sink(entry)


def _write(path: Path, text: str) -> None:
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(text)
    os.replace(temporary, path)


def _tail(path: Path) -> str:
    try:
        lines = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return "(none)"
    return " | ".join(lines[-5:]) or "(empty)"
