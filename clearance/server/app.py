"""The FastAPI application: one instance per process, the API router, limits and error shape.

``create_app(settings)`` is what ``clearance serve`` runs under uvicorn and what tests mount in
process. Bodies over ``max_body`` bytes are refused with 413 before they are read.
"""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from clearance import __version__, web
from clearance.server import api, errors
from clearance.server.errors import error_body
from clearance.settings import Settings
from clearance.usecases.instance import open_instance
from clearance.usecases.service import LocalService

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

DEFAULT_MAX_BODY = 64 << 20


class BodyLimit:
    """Refuse request bodies larger than ``limit`` (by Content-Length, or while streaming)."""

    def __init__(self, app: Callable[[Scope, Receive, Send], Awaitable[None]], limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.limit):
            await self._refuse(send)
            return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit:
                raise _TooLarge
            return message

        try:
            await self.app(scope, limited, send)
        except _TooLarge:
            await self._refuse(send)

    async def _refuse(self, send: Send) -> None:
        import json

        body = json.dumps(error_body("too_large", f"request body over {self.limit} bytes")).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


class _TooLarge(Exception):
    pass


def create_app(settings: Settings, *, max_body: int = DEFAULT_MAX_BODY) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.service = LocalService(open_instance(settings))
        gc.collect()
        gc.freeze()  # long-lived start-up objects out of the collector's way: steadier p99
        try:
            yield
        finally:
            app.state.service.close()

    app = FastAPI(
        title="Clearance",
        version=__version__,
        description="Release governance for regulated software: the same operations as the "
        "`clearance` CLI. Authenticate with `Authorization: Bearer <token>`.",
        lifespan=lifespan,
    )
    errors.install(app)
    app.include_router(api.router)
    web.install(app)  # the browser UI: /, /releases, /search, /ledger, /login, /static
    app.add_middleware(BodyLimit, limit=max_body)
    return app
