"""The FastAPI application: one instance per process, the API router, limits and error shape.

``create_app(settings)`` is what ``clearance serve`` runs under uvicorn and what tests mount in
process; ``clearance serve --workers N`` has each worker process build its own with
:func:`app_from_environment`. Bodies over ``max_body`` bytes are refused with 413 before they are
read.
"""

from __future__ import annotations

import gc
import os
import socket
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


def app_from_environment() -> FastAPI:
    """The app of one ``clearance serve --workers N`` process, from ``CLEARANCE_*`` variables."""
    return create_app(Settings.from_env(os.environ))


def serve(settings: Settings, *, host: str, port: int, workers: int = 1) -> None:
    """Serve the API until SIGTERM or Ctrl-C: in this process, or in ``workers`` processes.

    Workers are fresh processes (uvicorn spawns them and restarts one that dies) that share the
    listening socket and build their own app from the environment, so the home chosen here goes
    with them. The instance is opened once first, so that a bad database or key is one clear
    error rather than every worker failing.
    """
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    options: dict[str, Any] = {"host": host, "port": port, "log_level": "warning"}
    if workers == 1:
        uvicorn.run(create_app(settings), access_log=False, **options)
        return
    with open_instance(settings):
        pass
    os.environ["CLEARANCE_HOME"] = str(settings.home)
    config = uvicorn.Config(
        "clearance.server.app:app_from_environment",
        factory=True,
        workers=workers,
        access_log=False,
        **options,
    )
    with tcp_listener(config.bind_socket()) as listener:
        Multiprocess(config, sockets=[listener]).run()


def tcp_listener(sock: socket.socket) -> socket.socket:
    """``sock`` marked as TCP (``proto`` 6), so that its connections get TCP_NODELAY.

    uvicorn binds the workers' socket with ``proto`` 0, which accepted connections inherit, and
    asyncio only sets TCP_NODELAY on sockets that say they are TCP: every keep-alive response
    then waited ~40 ms for the client's delayed ACK (Nagle). Same descriptor, same binding.
    """
    if sock.family not in (socket.AF_INET, socket.AF_INET6) or sock.proto == socket.IPPROTO_TCP:
        return sock
    tcp = socket.socket(sock.family, sock.type, socket.IPPROTO_TCP, fileno=sock.detach())
    tcp.set_inheritable(True)
    return tcp
