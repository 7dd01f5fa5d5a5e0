"""One declared service as the agent holds it, and the uvicorn servers the agent runs.

A :class:`View` is a service's traffic as a value (which process serves each slot, the weights,
the tenant pins); the agent builds a new one for every change and commits it whole. The
:class:`Service` keeps the current view, the :class:`~clearance.deploy.local.router.RouteTable`
built from it, its lease and its record buffer.

Several uvicorn servers share the agent's event loop (the admin API and one listener per
service under the built-in router): :class:`Server` leaves signal handling to the agent, and
:func:`listen` binds the sockets they serve.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import uvicorn

from clearance.deploy.local.records import RecordBuffer
from clearance.deploy.local.router import RouteTable
from clearance.deploy.local.slots import Slot

__all__ = ["Server", "Service", "View", "listen", "serve"]


@dataclass(frozen=True)
class View:
    """One service's traffic as a value: the process of each slot, weights and tenant pins."""

    slots: Mapping[str, Slot]
    weights: Mapping[str, int]
    tenants: Mapping[str, str] = field(default_factory=dict)

    def takes_traffic(self, slot: str) -> bool:
        return self.weights.get(slot, 0) > 0 or slot in self.tenants.values()


class Server(uvicorn.Server):
    """A uvicorn server that leaves signals to the agent (several run in one event loop)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Any:
        yield


def serve(app: Any, sock: socket.socket, keep_alive: int = 5) -> tuple[Server, asyncio.Task[None]]:
    """Serve ``app`` on ``sock`` in the running loop; idle connections close after
    ``keep_alive`` seconds."""
    config = uvicorn.Config(
        app,
        lifespan="off",
        access_log=False,
        log_config=None,
        log_level="warning",
        proxy_headers=False,
        server_header=False,
        date_header=False,
        timeout_graceful_shutdown=2,
        timeout_keep_alive=keep_alive,
    )
    server = Server(config)
    return server, asyncio.create_task(server.serve(sockets=[sock]))


def listen(port: int) -> socket.socket:
    """A listening loopback socket. Its protocol is IPPROTO_TCP (not 0) so that asyncio sets
    TCP_NODELAY on the connections it accepts: a response's header and body writes would
    otherwise wait 40 ms for a delayed ACK on every kept-alive connection."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(("127.0.0.1", port))
        sock.listen(1024)
    except OSError:
        sock.close()
        raise
    sock.setblocking(False)
    return sock


@dataclass(eq=False)
class Service:
    """One declared service: its port, records, current view and routing table."""

    name: str
    port: int
    records: RecordBuffer
    view: View
    table: RouteTable
    lease_expires_at: float | None = None
    lease_expired_at: float | None = None
    lease_timer: asyncio.TimerHandle | None = None
    deploying: set[str] = field(default_factory=set)
    server: Server | None = None
    server_task: asyncio.Task[None] | None = None

    def describe(self) -> dict[str, Any]:
        return {
            "service": self.name,
            "port": self.port,
            "slots": {name: slot.state() for name, slot in self.view.slots.items()},
            "routes": {"weights": dict(self.view.weights), "tenants": dict(self.view.tenants)},
            "lease_expires_at": self.lease_expires_at,
            "lease_expired_at": self.lease_expired_at,
        }
