"""The built-in router: a loopback listener per service that proxies every request to a slot.

Which slot serves a request:

1. a request whose tenant header (``X-Tenant``) names a pinned tenant goes to that tenant's slot
   (tenant ids match ignoring case, as nginx's ``map`` matches them);
2. every other request is split by weight with a *deterministic smooth weighted round-robin*
   (nginx's upstream algorithm) over the weights divided by their greatest common divisor:
   75/25 sends stable, canary, stable, stable, stable, canary... Each routing table starts its
   own cycle; the shares are exact over every cycle and never come in random runs, and the same
   request sequence always meets the same slots (replayable tests, no seed to keep).

A route change swaps one immutable :class:`RouteTable`. A request reads the table once, as it
starts, and counts itself in flight on the backend it picked, both before its first ``await``;
it finishes there whatever the table says next, and a backend is stopped only once its
in-flight count drained to zero. Switching weights therefore never fails a request.

Upstream calls go through one pooled ``httpx.AsyncClient``. Request bodies are read whole
before they are forwarded (the APIs behind a clinical router take small JSON bodies), which
lets a request that could not even connect be retried once, and an idempotent one that lost a
pooled connection before any answer too. Responses stream through untouched, with the
``X-Clearance-Slot`` and ``X-Clearance-Version`` headers added.
"""

from __future__ import annotations

import itertools
import json
import math
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import reduce
from typing import Protocol

import httpx
from starlette.types import Receive, Scope, Send

from clearance.deploy import SLOTS, TENANT_HEADER
from clearance.deploy.local.records import RecordBuffer

__all__ = ["Backend", "Proxy", "RouteTable", "smooth_cycle"]

SLOT_HEADER = b"x-clearance-slot"
VERSION_HEADER = b"x-clearance-version"
_TENANT = TENANT_HEADER.lower().encode()
_TENANT_MAX = 128
_HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"te",
        b"trailer",
        b"trailers",
        b"transfer-encoding",
        b"upgrade",
    }
)
_NOT_FORWARDED = _HOP_BY_HOP | {b"content-length", b"x-forwarded-for"}
_NOT_RETURNED = _HOP_BY_HOP | {SLOT_HEADER, VERSION_HEADER}
_IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"})


class Backend(Protocol):
    """What the router needs of a running slot (``slots.Slot`` is one)."""

    port: int
    version: str
    inflight: int


def smooth_cycle(weights: Mapping[str, int]) -> tuple[str, ...]:
    """One period of the smooth weighted round-robin over ``weights`` (slots in SLOTS order)."""
    order = {name: i for i, name in enumerate(SLOTS)}
    items = sorted(((s, w) for s, w in weights.items() if w > 0), key=lambda i: order.get(i[0], 9))
    if not items:
        return ()
    divisor = reduce(math.gcd, (w for _, w in items))
    items = [(s, w // divisor) for s, w in items]
    total = sum(w for _, w in items)
    current = dict.fromkeys((s for s, _ in items), 0)
    cycle = []
    for _ in range(total):
        for slot, weight in items:
            current[slot] += weight
        best = max(items, key=lambda item: current[item[0]])[0]
        current[best] -= total
        cycle.append(best)
    return tuple(cycle)


@dataclass(frozen=True)
class RouteTable:
    """An immutable routing decision: weights, tenant pins, and the backend of each slot."""

    weights: Mapping[str, int]
    tenants: Mapping[str, str]
    backends: Mapping[str, Backend]
    cycle: tuple[str, ...]
    _turns: Iterator[int] = field(default_factory=itertools.count, compare=False, repr=False)

    @classmethod
    def build(
        cls, weights: Mapping[str, int], tenants: Mapping[str, str], backends: Mapping[str, Backend]
    ) -> RouteTable:
        return cls(
            dict(weights),
            {tenant.lower(): slot for tenant, slot in tenants.items()},
            dict(backends),
            smooth_cycle(weights),
        )

    def pick(self, tenant: str | None) -> str:
        """The slot for one request (``tenant``: its tenant header, if any)."""
        if tenant is not None and self.tenants:
            pinned = self.tenants.get(tenant.lower())
            if pinned is not None:
                return pinned
        return self.cycle[next(self._turns) % len(self.cycle)]


class Proxy:
    """The ASGI app behind one service's listener. ``table`` returns the current routing."""

    def __init__(
        self,
        service: str,
        table: Callable[[], RouteTable],
        records: RecordBuffer,
        http: httpx.AsyncClient,
    ) -> None:
        self.service = service
        self.table = table
        self.records = records
        self.http = http

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return  # no websockets; lifespan is off
        began = time.perf_counter()
        table = self.table()
        tenant = _tenant(scope)
        slot = table.pick(tenant)
        backend = table.backends.get(slot)
        method: str = scope["method"]
        version = backend.version if backend is not None else None
        status = 502
        if backend is None:
            status = 503
            await _answer(send, status, slot, None, f"no process runs {self.service}/{slot}")
            self._record(slot, version, tenant, method, scope, status, began)
            return
        backend.inflight += 1
        try:
            status = await self._forward(scope, receive, send, slot, backend)
        finally:
            backend.inflight -= 1
            self._record(slot, version, tenant, method, scope, status, began)

    async def _forward(
        self, scope: Scope, receive: Receive, send: Send, slot: str, backend: Backend
    ) -> int:
        body = await _read_body(receive)
        raw_path = scope.get("raw_path") or scope["path"].encode()
        query = scope.get("query_string", b"")
        target = httpx.URL(
            scheme="http",
            host="127.0.0.1",
            port=backend.port,
            raw_path=raw_path + b"?" + query if query else raw_path,
        )
        headers = _request_headers(scope)
        request = self.http.build_request(scope["method"], target, headers=headers, content=body)
        for attempt in (1, 2):
            try:
                response = await self.http.send(request, stream=True)
                break
            except (httpx.ConnectError, httpx.NetworkError, httpx.RemoteProtocolError) as exc:
                # Nothing reached the backend, or a pooled connection died under a request
                # that is safe to send twice.
                retry = isinstance(exc, httpx.ConnectError) or scope["method"] in _IDEMPOTENT
                if attempt == 2 or not retry:
                    return await self._fail(send, slot, backend, exc)
            except httpx.HTTPError as exc:
                return await self._fail(send, slot, backend, exc)
        try:
            raw = [(k, v) for k, v in response.headers.raw if k.lower() not in _NOT_RETURNED]
            raw += [(SLOT_HEADER, slot.encode()), (VERSION_HEADER, backend.version.encode())]
            start = {"type": "http.response.start", "status": response.status_code, "headers": raw}
            await send(start)
            try:
                async for chunk in response.aiter_raw():
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
            except httpx.HTTPError:
                # The answer broke off: the backend failed to answer. Leaving the response
                # unfinished makes the server drop the connection, so the client sees it too.
                return 502
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            return response.status_code
        finally:
            await response.aclose()

    async def _fail(self, send: Send, slot: str, backend: Backend, exc: Exception) -> int:
        reason = f"{self.service}/{slot} ({backend.version}) did not answer: {type(exc).__name__}"
        await _answer(send, 502, slot, backend.version, reason)
        return 502

    def _record(
        self,
        slot: str,
        version: str | None,
        tenant: str | None,
        method: str,
        scope: Scope,
        status: int,
        began: float,
    ) -> None:
        self.records.request(
            slot=slot,
            version=version,
            tenant=tenant,
            method=method,
            path=scope["path"],
            status=status,
            ms=(time.perf_counter() - began) * 1000.0,
        )


def _tenant(scope: Scope) -> str | None:
    for key, value in scope["headers"]:
        if key == _TENANT:
            text: str = value.decode("latin-1")[:_TENANT_MAX]
            return text or None
    return None


def _request_headers(scope: Scope) -> list[tuple[bytes, bytes]]:
    """The client's headers (its ``Host`` too, as nginx is told to pass it), without hop-by-hop
    ones, and with the client's address appended to ``X-Forwarded-For``."""
    headers = [(k, v) for k, v in scope["headers"] if k not in _NOT_FORWARDED]
    client = scope.get("client")
    forwarded_for = client[0].encode() if client else b"unknown"
    for key, value in scope["headers"]:
        if key == b"x-forwarded-for":
            forwarded_for = value + b", " + forwarded_for
    headers.append((b"x-forwarded-for", forwarded_for))
    return headers


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


async def _answer(send: Send, status: int, slot: str, version: str | None, reason: str) -> None:
    body = json.dumps({"error": {"type": "bad_gateway", "message": reason}}).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (SLOT_HEADER, slot.encode()),
    ]
    if version is not None:
        headers.append((VERSION_HEADER, version.encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})
