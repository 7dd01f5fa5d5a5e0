"""The agent's admin HTTP API: loopback only, JSON, behind a bearer token.

Every route but ``POST /push`` needs ``Authorization: Bearer <token>`` (the token of
``agent.json``, compared in constant time); a missing or wrong one gets 401 before the body is
even read. Errors share one shape, ``{"error": {"type", "message", "where"}}``: 401 no valid
token, 404 unknown service or slot, 409 refused (conflicting state; nothing changed), 422 a bad
field (``where`` names it), 400 a command that cannot run, 503 a slot not ready or a router that
refused its configuration. Nothing answers with a traceback.

::

    PUT    /services/{service}                     {"port": int}            declare (idempotent)
    GET    /services                                                        every service
    GET    /services/{service}                     port, slots, routes, lease_expires_at
    DELETE /services/{service}                                              stop all, forget it
    PUT    /services/{service}/slots/{slot}        {"argv", "env", "health", "ready_timeout",
                                                    "digest", "version"}    start, wait, swap in
    DELETE /services/{service}/slots/{slot}                                 stop (409 if routed)
    POST   /services/{service}/promote/{slot}                               slot becomes stable
    PUT    /services/{service}/routes              {"weights", "tenants", "lease"}
    GET    /services/{service}/records?since=&until=&slot=                 {"records", "dropped"}
    POST   /push                                   {"service", "slot", "counter"|"gauge", "value"}
"""

from __future__ import annotations

import hmac
import json
import logging
import math
from typing import Annotated, Any, Literal

from fastapi import FastAPI, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from clearance.deploy.local.operations import Agent, AgentError

__all__ = ["create_admin_app"]

log = logging.getLogger(__name__)

SlotName = Literal["stable", "baseline", "canary", "held"]
SERVICE = r"^[a-z0-9][a-z0-9_-]{0,63}$"
TENANT = r"^[A-Za-z0-9][A-Za-z0-9_.:@-]{0,127}$"
LABEL = r"^[A-Za-z0-9][A-Za-z0-9._+:~@/-]{0,199}$"
#: A build number as CI spells it; no quote, backslash, ``$`` or control character (it goes into
#: nginx's configuration and a response header), no space at either end.
_VERSION_CHAR = r"[^\s\"'\\$\x00-\x1f\x7f]"
VERSION = rf"^{_VERSION_CHAR}([^\"'\\$\x00-\x1f\x7f]{{0,198}}{_VERSION_CHAR})?$"
METRIC = r"^[A-Za-z_][A-Za-z0-9_.:]{0,127}$"
ENV_NAME = r"^[A-Za-z_][A-Za-z0-9_]{0,127}$"
ServicePath = Annotated[str, Path(pattern=SERVICE)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class ServiceBody(_Body):
    port: int = Field(ge=0, le=65535, description="0: the agent picks a free port")


class SlotBody(_Body):
    argv: list[Annotated[str, Field(min_length=1, max_length=8192)]] = Field(
        min_length=1, max_length=512
    )
    env: dict[Annotated[str, Field(pattern=ENV_NAME)], Annotated[str, Field(max_length=65536)]] = (
        Field(default_factory=dict)
    )
    health: str = Field(default="/healthz", pattern=r"^/\S*$", max_length=2048)
    ready_timeout: float = Field(default=20.0, gt=0, le=600, allow_inf_nan=False)
    digest: str = Field(pattern=LABEL)
    version: str = Field(pattern=VERSION)

    @field_validator("argv", "env")
    @classmethod
    def _no_nul(cls, value: Any) -> Any:
        texts = value if isinstance(value, list) else [*value.keys(), *value.values()]
        if any("\0" in text for text in texts):
            raise ValueError("must not contain NUL characters")
        return value


class RoutesBody(_Body):
    weights: dict[SlotName, Annotated[int, Field(ge=0, le=100)]]
    tenants: dict[Annotated[str, Field(pattern=TENANT)], SlotName] = Field(
        default_factory=dict, max_length=10_000
    )
    lease: float | None = Field(default=None, gt=0, le=86_400, allow_inf_nan=False)

    @field_validator("weights")
    @classmethod
    def _sum_100(cls, value: dict[str, int]) -> dict[str, int]:
        if sum(value.values()) != 100:
            raise ValueError(f"weights must sum to 100, got {sum(value.values())}")
        return value

    @field_validator("tenants")
    @classmethod
    def _distinct(cls, value: dict[str, str]) -> dict[str, str]:
        if len({tenant.lower() for tenant in value}) != len(value):
            raise ValueError("tenant ids match ignoring case: two of them differ only in case")
        return value


class PushBody(_Body):
    service: str = Field(pattern=SERVICE)
    slot: SlotName
    counter: str | None = Field(default=None, pattern=METRIC)
    gauge: str | None = Field(default=None, pattern=METRIC)
    value: float = Field(allow_inf_nan=False)

    @model_validator(mode="after")
    def _one_name(self) -> PushBody:
        if (self.counter is None) == (self.gauge is None):
            raise ValueError("give exactly one of counter or gauge")
        return self


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    body = json.dumps(data, separators=(",", ":"), allow_nan=False)
    return Response(body, status_code=status, media_type="application/json", headers=headers)


def _error(status: int, kind: str, message: str, where: str | None = None) -> Response:
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    body = {"error": {"type": kind, "message": message, "where": where}}
    return _json(body, status, headers)


class BearerAuth:
    """401 for every request but ``POST /push`` without the right bearer token; ``/push``
    only from the loopback interface."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self.expected = f"Bearer {token}".encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            if scope["path"] == "/push":
                client = scope.get("client")
                if not client or client[0] not in ("127.0.0.1", "::1"):
                    await _error(403, "forbidden", "push only from this host")(scope, receive, send)
                    return
            else:
                given = dict(scope["headers"]).get(b"authorization", b"")
                if not hmac.compare_digest(given, self.expected):
                    response = _error(401, "unauthorized", "missing or wrong bearer token")
                    await response(scope, receive, send)
                    return
        await self.app(scope, receive, send)


def create_admin_app(agent: Agent) -> FastAPI:
    """The admin API over ``agent``."""
    app = FastAPI(
        title="Clearance local deployer agent", openapi_url=None, docs_url=None, redoc_url=None
    )
    app.add_middleware(BearerAuth, token=agent.token)

    @app.exception_handler(AgentError)
    async def agent_error(request: Request, exc: AgentError) -> Response:
        return _error(exc.status, exc.kind, exc.message)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> Response:
        problems, fields = [], []
        for err in exc.errors():
            skip = ("body", "path", "query", "[key]")  # "[key]": the dict key itself is wrong
            parts = [str(p) for p in err.get("loc", ()) if p not in skip]
            name = ".".join(parts) if parts and err.get("type") != "json_invalid" else "body"
            fields.append(name)
            problems.append(f"{name}: {err.get('msg', 'invalid')}")
        return _error(422, "validation", "; ".join(problems), ", ".join(dict.fromkeys(fields)))

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        kinds = {404: "not_found", 405: "method_not_allowed"}
        return _error(exc.status_code, kinds.get(exc.status_code, "error"), str(exc.detail))

    @app.exception_handler(Exception)
    async def internal(request: Request, exc: Exception) -> Response:
        log.exception("admin %s %s failed", request.method, request.url.path)
        return _error(500, "internal", f"{type(exc).__name__}: {exc} (see the agent log)")

    @app.get("/services")
    async def list_services() -> Response:
        return _json({"services": {n: s.describe() for n, s in agent.services.items()}})

    @app.put("/services/{service}")
    async def declare(service: ServicePath, body: ServiceBody) -> Response:
        return _json(await agent.declare(service, body.port))

    @app.delete("/services/{service}")
    async def remove(service: ServicePath) -> Response:
        return _json(await agent.remove(service))

    @app.get("/services/{service}")
    async def describe(service: ServicePath) -> Response:
        return _json(agent.service(service).describe())

    @app.put("/services/{service}/slots/{slot}")
    async def deploy(service: ServicePath, slot: SlotName, body: SlotBody) -> Response:
        state = await agent.deploy(
            service,
            slot,
            argv=body.argv,
            env=body.env,
            health=body.health,
            ready_timeout=body.ready_timeout,
            digest=body.digest,
            version=body.version,
        )
        return _json(state)

    @app.delete("/services/{service}/slots/{slot}")
    async def scale_down(service: ServicePath, slot: SlotName) -> Response:
        return _json(await agent.scale_down(service, slot))

    @app.post("/services/{service}/promote/{slot}")
    async def promote(service: ServicePath, slot: SlotName) -> Response:
        return _json(await agent.promote(service, slot))

    @app.put("/services/{service}/routes")
    async def route(service: ServicePath, body: RoutesBody) -> Response:
        weights = {str(slot): weight for slot, weight in body.weights.items()}
        tenants = {tenant: str(slot) for tenant, slot in body.tenants.items()}
        return _json(await agent.route(service, weights, tenants, body.lease))

    @app.get("/services/{service}/records")
    async def records(
        service: ServicePath,
        since: Annotated[float, Query(allow_inf_nan=False)] = 0.0,
        until: Annotated[float, Query()] = math.inf,
        slot: SlotName | None = None,
    ) -> Response:
        window = agent.records(service, since, until, slot)
        return _json({"service": service, "records": window.records, "dropped": window.dropped})

    @app.post("/push", status_code=202)
    async def push(body: PushBody) -> Response:
        kind, name = (
            ("counter", body.counter) if body.counter is not None else ("gauge", body.gauge)
        )
        seq = agent.push(body.service, body.slot, kind, str(name), body.value)
        return _json({"seq": seq}, 202)

    return app
