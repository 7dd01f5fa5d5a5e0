"""The agent's state and the operations behind its admin API (``admin.py`` only translates HTTP).

An :class:`Agent` holds every declared service of one environment: its listener, the slot
processes that serve it, its routes and their lease, and its record buffer. The operations
(declare, deploy, scale down, promote, route, remove; read records, take pushed values) refuse
what the state does not allow with an :class:`AgentError` that says the HTTP status to answer.

Every change to a service is computed as a new :class:`View` and applied whole under one lock
(for nginx that is a checked reload); nothing is committed if applying fails. Only the swap is
under the lock: a slot's start and health wait are not, so a rollback never waits for a deploy.
A route lease that runs out unrenewed sends all traffic back to stable, by the agent alone.
The process around it (admin server, ``agent.json``, signals) is ``agent.py``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx

from clearance.deploy import HELD, SLOTS, STABLE
from clearance.deploy.local.nginx import NGINX, Nginx, NginxError, NginxService
from clearance.deploy.local.nginx import render as render_nginx
from clearance.deploy.local.records import DEFAULT_CAPACITY, RecordBuffer, Window
from clearance.deploy.local.router import Proxy, RouteTable
from clearance.deploy.local.services import Service, View, listen, serve
from clearance.deploy.local.slots import Slot, StartError, start_slot

__all__ = ["Agent", "AgentError"]

log = logging.getLogger("clearance.deploy.local.agent")  # one name for all the agent logs


class AgentError(Exception):
    """A refused or failed admin operation: the HTTP status and error type it answers with."""

    def __init__(self, status: int, kind: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.kind = kind
        self.message = message


class Agent:
    """The state and operations behind the admin API (``admin.py`` only translates HTTP)."""

    def __init__(
        self,
        state_dir: Path,
        *,
        router: str = "builtin",
        grace: float = 5.0,
        drain: float = 10.0,
        capacity: int = DEFAULT_CAPACITY,
        nginx_binary: str = NGINX,
    ) -> None:
        if router not in ("builtin", "nginx"):
            raise ValueError(f"router must be builtin or nginx, got {router!r}")
        self.state_dir = state_dir
        self.router = router
        self.grace = grace
        self.drain = drain
        self.capacity = capacity
        self.token = secrets.token_urlsafe(32)  # 256 bits
        self.admin_url = ""
        self.services: dict[str, Service] = {}
        self.lock = asyncio.Lock()
        self.closing = False
        self.nginx = Nginx(state_dir / "nginx", nginx_binary) if router == "nginx" else None
        self._processes: set[Slot] = set()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._http = httpx.AsyncClient(
            trust_env=False,
            follow_redirects=False,
            timeout=httpx.Timeout(120.0, connect=2.0, pool=5.0),
            limits=httpx.Limits(
                max_connections=512, max_keepalive_connections=64, keepalive_expiry=2.0
            ),
        )

    # -- operations --------------------------------------------------------------------------

    def service(self, name: str) -> Service:
        try:
            return self.services[name]
        except KeyError:
            raise AgentError(
                404, "not_found", f"service {name!r} is not declared (PUT /services/{name} first)"
            ) from None

    async def declare(self, name: str, port: int) -> dict[str, Any]:
        async with self.lock:
            if name in self.services:
                known = self.services[name]
                if port not in (0, known.port):
                    raise AgentError(
                        409, "conflict", f"service {name!r} already listens on port {known.port}"
                    )
                return known.describe()
            try:
                sock = listen(port)
            except OSError as exc:
                raise AgentError(
                    409, "conflict", f"service {name!r}: cannot listen on 127.0.0.1:{port}: {exc}"
                ) from exc
            view = View({}, {STABLE: 100})
            service = Service(
                name,
                sock.getsockname()[1],
                RecordBuffer(self.capacity),
                view,
                RouteTable.build(view.weights, view.tenants, view.slots),
            )
            if self.nginx is None:
                proxy = Proxy(name, lambda: service.table, service.records, self._http)
                # Idle client connections stay open 75 s (nginx's default), longer
                # than client pools keep theirs (httpx: 5 s): a client never sends on a
                # connection the router is closing.
                service.server, service.server_task = serve(proxy, sock, keep_alive=75)
            else:
                sock.close()  # nginx binds it
                self.services[name] = service
                try:
                    await self._apply(service, view)
                except AgentError:
                    del self.services[name]
                    raise
            self.services[name] = service
            log.info("service %s listens on 127.0.0.1:%d", name, service.port)
            return service.describe()

    async def deploy(
        self,
        name: str,
        slot: str,
        *,
        argv: list[str],
        env: Mapping[str, str],
        health: str,
        ready_timeout: float,
        digest: str,
        version: str,
    ) -> dict[str, Any]:
        service = self.service(name)
        if self.closing:
            raise AgentError(503, "shutting_down", "the agent is shutting down")
        if slot in service.deploying:
            raise AgentError(409, "conflict", f"a deploy into {name}/{slot} is already running")
        service.deploying.add(slot)
        try:
            try:
                started = await start_slot(
                    service=name,
                    slot=slot,
                    argv=argv,
                    env=env,
                    health=health,
                    ready_timeout=ready_timeout,
                    digest=digest,
                    version=version,
                    push_url=f"{self.admin_url}/push",
                    logs=self.state_dir / "logs",
                    http=self._http,
                    registry=self._processes,
                )
            except StartError as exc:
                kind = "not_ready" if exc.status == 503 else "input"
                raise AgentError(exc.status, kind, exc.message) from exc
            async with self.lock:
                old = service.view.slots.get(slot)
                view = View(
                    {**service.view.slots, slot: started},
                    service.view.weights,
                    service.view.tenants,
                )
                try:
                    if self.services.get(name) is not service:
                        raise AgentError(409, "conflict", f"service {name!r} was removed")
                    await self._apply(service, view)
                except AgentError:
                    await self._retire(started, drain=False)
                    raise
            log.info("%s/%s now runs %s", name, slot, started.label)
            if old is not None:
                await self._retire(old)
            return started.state()
        finally:
            service.deploying.discard(slot)

    async def remove(self, name: str) -> dict[str, Any]:
        """Forget a service: its listener closes, then every one of its slots stops."""
        async with self.lock:
            service = self.service(name)
            del self.services[name]
            if service.lease_timer is not None:
                service.lease_timer.cancel()
            if self.nginx is not None and self.services:
                any_service = next(iter(self.services.values()))
                try:
                    await self._apply(any_service, any_service.view)
                except AgentError:
                    self.services[name] = service
                    raise
            elif self.nginx is not None:
                await self.nginx.stop(self.grace)
        if service.server is not None and service.server_task is not None:
            service.server.should_exit = True
            await service.server_task
        for slot in service.view.slots.values():
            await self._retire(slot)
        log.info("service %s removed", name)
        return {"service": name, "removed": True}

    async def scale_down(self, name: str, slot: str) -> dict[str, Any]:
        service = self.service(name)
        async with self.lock:
            view = service.view
            target = view.slots.get(slot)
            if target is None:
                raise AgentError(404, "not_found", f"{name}/{slot} runs nothing")
            if view.takes_traffic(slot):
                raise AgentError(
                    409,
                    "conflict",
                    f"{name}/{slot} still takes traffic (weights {dict(view.weights)}, tenants "
                    f"{dict(view.tenants)}): route it away first",
                )
            slots = {k: v for k, v in view.slots.items() if k != slot}
            await self._apply(service, View(slots, view.weights, view.tenants))
        await self._retire(target)
        return {"service": name, "slot": slot, "stopped": True}

    async def promote(self, name: str, slot: str) -> dict[str, Any]:
        service = self.service(name)
        async with self.lock:
            view = service.view
            target = view.slots.get(slot)
            if target is None:
                raise AgentError(404, "not_found", f"{name}/{slot} runs nothing to promote")
            if not target.ready:
                raise AgentError(409, "conflict", f"{name}/{slot} is not healthy")
            if slot == STABLE:
                return target.state()
            old = view.slots.get(STABLE)

            def rename(s: str) -> str:
                return STABLE if s in (slot, STABLE) else s

            weights: dict[str, int] = {}
            for s, w in view.weights.items():
                weights[rename(s)] = weights.get(rename(s), 0) + w
            tenants = {t: rename(s) for t, s in view.tenants.items()}
            slots = {k: v for k, v in view.slots.items() if k not in (slot, STABLE)}
            slots[STABLE] = target
            await self._apply(service, View(slots, weights, tenants))
            target.name = STABLE
        log.info("%s: %s %s is now stable", name, slot, target.version)
        if old is not None:
            await self._retire(old)
        return target.state()

    async def route(
        self,
        name: str,
        weights: Mapping[str, int],
        tenants: Mapping[str, str],
        lease: float | None,
    ) -> dict[str, Any]:
        service = self.service(name)
        async with self.lock:
            view = View(service.view.slots, dict(weights), dict(tenants))
            problems = [
                f"{s}: {'not healthy' if s in view.slots else 'runs nothing'}"
                for s in SLOTS
                if view.takes_traffic(s) and (s not in view.slots or not view.slots[s].ready)
            ]
            if problems:
                raise AgentError(
                    409,
                    "conflict",
                    f"routes for {name} refused, nothing changed: " + "; ".join(problems),
                )
            await self._apply(service, view)
            self._arm_lease(service, lease)
        log.info(
            "%s routes: weights %s, %d tenant pins, lease %s",
            name,
            dict(weights),
            len(tenants),
            lease,
        )
        if self.nginx is not None:
            await self.nginx.settled(self.drain)
        return service.describe()

    def records(self, name: str, since: float, until: float, slot: str | None) -> Window:
        return self.service(name).records.window(since, until, slot)

    def push(self, name: str, slot: str, kind: str, metric: str, value: float) -> int:
        service = self.service(name)
        running = service.view.slots.get(slot)
        if running is None:  # a promoted process still says the slot it was started as
            running = next((s for s in service.view.slots.values() if s.origin == slot), None)
        if running is None:
            raise AgentError(404, "not_found", f"{name}/{slot} runs nothing")
        return service.records.pushed(
            slot=running.name, version=running.version, kind=kind, name=metric, value=value
        )

    def record_access(self, entry: Mapping[str, Any]) -> None:
        """Record one request of nginx's JSON access log (``AccessLogTail`` calls it)."""
        service = self.services.get(str(entry.get("service")))
        if service is None:
            return
        try:
            service.records.request(
                slot=str(entry["slot"]),
                version=str(entry["version"]) or None,
                tenant=str(entry["tenant"]) or None,
                method=str(entry["method"]),
                path=str(entry["path"]),
                status=int(entry["status"]),
                ms=float(entry["request_time"]) * 1000.0,
                t=float(entry["t"]),
            )
        except (KeyError, ValueError) as exc:
            log.warning("skipped an access log entry without %s", exc)

    # -- internals ---------------------------------------------------------------------------

    async def _apply(self, service: Service, view: View) -> None:
        """Make ``view`` the service's traffic (the caller holds the lock)."""
        if self.closing:
            raise AgentError(503, "shutting_down", "the agent is shutting down")
        if self.nginx is not None:
            services = [
                self._nginx_service(s, view if s is service else s.view)
                for s in self.services.values()
            ]
            text = render_nginx(services, self.nginx.prefix, as_root=os.geteuid() == 0)
            try:
                await self.nginx.apply(text)
            except NginxError as exc:
                raise AgentError(503, "router", f"{service.name}: {exc}") from exc
        service.table = RouteTable.build(view.weights, view.tenants, view.slots)
        service.view = view

    @staticmethod
    def _nginx_service(service: Service, view: View) -> NginxService:
        backends = {name: (slot.port, slot.version) for name, slot in view.slots.items()}
        return NginxService(service.name, service.port, view.weights, view.tenants, backends)

    async def _retire(self, slot: Slot, *, drain: bool = True) -> None:
        if drain:
            if self.nginx is not None:
                await self.nginx.settled(self.drain)
            await slot.drain(self.drain)
        await slot.stop(self.grace)
        self._processes.discard(slot)

    def _arm_lease(self, service: Service, lease: float | None) -> None:
        if service.lease_timer is not None:
            service.lease_timer.cancel()
            service.lease_timer = None
        service.lease_expires_at = None
        if lease is None:
            return
        service.lease_expires_at = time.time() + lease
        service.lease_expired_at = None
        loop = asyncio.get_running_loop()
        service.lease_timer = loop.call_later(lease, self._expire_soon, service)

    def _expire_soon(self, service: Service) -> None:
        task = asyncio.ensure_future(self._expire(service))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _expire(self, service: Service) -> None:
        """The lease ran out: all traffic to stable, by the agent alone; only the pins of held
        tenants (on the ``held`` slot, a previous version) stay."""
        async with self.lock:
            expires = service.lease_expires_at
            if self.closing or expires is None or time.time() < expires - 0.01:
                return  # renewed or cleared meanwhile
            try:
                held = {t: s for t, s in service.view.tenants.items() if s == HELD}
                await self._apply(service, View(service.view.slots, {STABLE: 100}, held))
            except AgentError as exc:
                log.error(
                    "%s: lease expired but the rollback failed, retrying: %s",
                    service.name,
                    exc.message,
                )
                loop = asyncio.get_running_loop()
                service.lease_timer = loop.call_later(1.0, self._expire_soon, service)
                return
            service.lease_timer = None
            service.lease_expires_at = None
        if self.nginx is not None:
            await self.nginx.settled(self.drain)
        if service.lease_expires_at is None:  # not leased again meanwhile
            service.lease_expired_at = time.time()
        log.warning(
            "%s: the route lease expired unrenewed: all traffic back to stable", service.name
        )

    # -- shutting down -----------------------------------------------------------------------

    async def shutdown(self) -> None:
        """Stop every slot process, then nginx and the traffic listeners."""
        self.closing = True
        for service in self.services.values():
            if service.lease_timer is not None:
                service.lease_timer.cancel()
        await asyncio.gather(*(slot.stop(self.grace) for slot in list(self._processes)))
        self._processes.clear()
        if self.nginx is not None:
            await self.nginx.stop(self.grace)
        for service in self.services.values():
            if service.server is not None:
                service.server.should_exit = True
        await asyncio.gather(*(s.server_task for s in self.services.values() if s.server_task))

    async def aclose(self) -> None:
        """Close the pooled HTTP client (health polls and proxied requests): after ``shutdown``
        and once the admin API has stopped."""
        await self._http.aclose()
