"""The ``local`` deployer: each version of a service runs as processes on this host.

The embedded default for single-host installs and for ``clearance demo``; on VMs nginx is the
router. Two halves:

- :class:`LocalDeployer` (``client.py``) implements :class:`clearance.deploy.Deployer` by
  calling the agent's admin API, starting an agent when none runs;
- the agent (``python -m clearance.deploy.local.agent --state-dir DIR``), one long-lived
  asyncio process per environment:

  =================  ==========================================================================
  ``agent.py``       the process: admin server, ``agent.json``, signals, ``main``
  ``operations.py``  the state of every service and the operations on it
  ``admin.py``       the loopback admin HTTP API (bearer token), the only way in
  ``slots.py``       slot processes: start on a free port, wait for health, stop the group
  ``router.py``      the built-in router: weighted and tenant-pinned reverse proxy per service
  ``nginx.py``       the nginx router: render, check, reload; tail its JSON access log
  ``records.py``     the per-service ring buffer of request records and pushed values
  ``services.py``    a declared service's view of its slots and routes; the uvicorn servers
  ``processes.py``   liveness, children and free ports
  =================  ==========================================================================
"""

from __future__ import annotations

from clearance.deploy.local.client import LocalDeployer

__all__ = ["LocalDeployer"]
