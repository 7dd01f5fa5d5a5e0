"""The agent process: one long-lived asyncio process per environment, owning its slots and routers.

Run it as ``python -m clearance.deploy.local.agent --state-dir DIR [--router builtin|nginx]``
(``LocalDeployer`` starts it when none runs). It

1. takes an exclusive lock on ``DIR/agent.lock`` (one agent per state directory);
2. serves the admin API (``admin.py``) on 127.0.0.1 at a random free port, and writes
   ``DIR/agent.json`` (mode 0600, write-then-rename) with its pid, admin URL and bearer token;
3. supervises the slot processes (``slots.py``) and serves each declared service's traffic,
   with the built-in router (``router.py``) or with nginx (``nginx.py``, whose access log it
   tails into the same record buffers), through the :class:`~.operations.Agent` of
   ``operations.py``, which holds the state and runs every operation;
4. on SIGTERM or SIGINT stops every slot process first, then nginx and its listeners, and
   removes ``agent.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fcntl
import json
import logging
import os
import signal
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from clearance.deploy.local.admin import create_admin_app
from clearance.deploy.local.nginx import NGINX, AccessLogTail
from clearance.deploy.local.operations import Agent
from clearance.deploy.local.records import DEFAULT_CAPACITY
from clearance.deploy.local.services import listen, serve

__all__ = ["main", "run"]

log = logging.getLogger("clearance.deploy.local.agent")


async def run(agent: Agent, stop: asyncio.Event) -> None:
    """Serve ``agent`` until ``stop`` is set, then shut everything down."""
    sock = listen(0)
    agent.admin_url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    admin, admin_task = serve(create_admin_app(agent), sock)
    tail = None
    if agent.nginx is not None:
        await agent.nginx.stop(agent.grace)  # one left by an agent that was killed
        agent.nginx.access_log.unlink(missing_ok=True)
        tail = asyncio.create_task(AccessLogTail(agent.nginx, agent.record_access).run())
    info = agent.state_dir / "agent.json"
    try:
        while not admin.started and not admin_task.done():
            await asyncio.sleep(0.01)
        if admin_task.done():
            await admin_task  # raises what stopped it
        _write_private(
            info,
            {
                "pid": os.getpid(),
                "admin_url": agent.admin_url,
                "token": agent.token,
                "router": agent.router,
            },
        )
        log.info(
            "agent %d serves its admin API at %s (%s router)",
            os.getpid(),
            agent.admin_url,
            agent.router,
        )
        await stop.wait()
    finally:
        await agent.shutdown()
        admin.should_exit = True
        await admin_task
        if tail is not None:
            tail.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await tail
        await agent.aclose()
        info.unlink(missing_ok=True)
        log.info("agent %d stopped", os.getpid())


def _write_private(path: Path, data: Mapping[str, Any]) -> None:
    """Write ``data`` as JSON, mode 0600, atomically (a temporary file, then a rename)."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(data, handle)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m clearance.deploy.local.agent",
        description="Run one environment's slot processes and routers (the local deployer).",
    )
    parser.add_argument("--state-dir", type=Path, required=True)
    parser.add_argument("--router", choices=("builtin", "nginx"), default="builtin")
    parser.add_argument("--grace", type=float, default=5.0, help="SIGTERM to SIGKILL, seconds")
    parser.add_argument("--drain", type=float, default=10.0, help="in-flight drain bound, s")
    parser.add_argument("--max-records", type=int, default=DEFAULT_CAPACITY)
    parser.add_argument("--nginx", default=NGINX, help="the nginx binary")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    for chatty in ("httpx", "httpcore"):  # a line per health poll and per proxied request
        logging.getLogger(chatty).setLevel(logging.WARNING)
    state_dir: Path = args.state_dir.resolve()
    state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    lock = (state_dir / "agent.lock").open("a")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        print(f"another agent already runs for {state_dir}", file=sys.stderr)
        return 3
    agent = Agent(
        state_dir,
        router=args.router,
        grace=args.grace,
        drain=args.drain,
        capacity=args.max_records,
        nginx_binary=args.nginx,
    )

    async def until_signalled() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await run(agent, stop)

    try:
        asyncio.run(until_signalled())
    finally:
        lock.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
