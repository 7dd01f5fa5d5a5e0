"""Deployers: how a version is started, given traffic and stopped, behind one port.

The rollout controller (``clearance/usecases/rollouts.py``) drives a :class:`Deployer`; it never
knows whether versions run as local processes behind Clearance's own router or nginx
(``deploy/local``), or on a platform the user drives with their own scripts (``deploy/command``).

Vocabulary, shared by every deployer:

- a *service* is one declared in ``clearance.yaml`` (``services.orders.run``...);
- a *slot* is one running version of a service: ``stable`` (what serves now), ``baseline`` (a
  fresh copy of stable started beside the canary, so the judge compares like with like),
  ``canary`` (the new version) and ``held`` (the previous version, kept for tenants that are held
  back from the current one: a hold or an unmet prerequisite);
- :class:`Routes` say which slot gets which share of requests and which tenants are pinned to a
  slot (ring rollouts). Weights are whole percent and sum to 100. A request carrying the tenant
  header (``X-Tenant``) of a pinned tenant goes to that slot; every other request is split by
  weight.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from clearance.errors import InfrastructureError

__all__ = [
    "BASELINE",
    "CANARY",
    "HELD",
    "SLOTS",
    "STABLE",
    "TENANT_HEADER",
    "DeployError",
    "Deployer",
    "Routes",
    "ServiceSpec",
    "SlotSpec",
    "SlotState",
]

STABLE = "stable"
BASELINE = "baseline"
CANARY = "canary"
HELD = "held"
SLOTS = (STABLE, BASELINE, CANARY, HELD)
TENANT_HEADER = "X-Tenant"


class DeployError(InfrastructureError):
    """A deployer step failed or timed out; the message names the step, service and slot."""


@dataclass(frozen=True)
class ServiceSpec:
    """How a service runs, as declared in the policy: never code, always configuration.

    ``run`` is a command template with the placeholders ``{artifact}`` (path of the artifact
    file), ``{port}`` (the port the process must listen on, 127.0.0.1), ``{slot}`` and
    ``{version}``. ``health`` is the HTTP path that answers 2xx once the process is ready;
    ``ready_timeout`` (seconds) bounds the wait. ``env`` is the environment configuration passed
    to the process (never baked into the artifact).
    """

    name: str
    run: str
    health: str = "/healthz"
    ready_timeout: float = 30.0
    env: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class SlotSpec:
    """One version to run in one slot."""

    slot: str
    digest: str
    version: str
    artifact: str | None = None  # local path of the artifact bytes, when the deployer needs them


@dataclass(frozen=True)
class Routes:
    """Traffic split for one service. ``weights`` maps slot to whole percent (sum 100);
    ``tenants`` pins tenants to a slot, overriding the weights for their requests."""

    weights: Mapping[str, int]
    tenants: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if sum(self.weights.values()) != 100 or any(w < 0 for w in self.weights.values()):
            raise ValueError(f"weights must be >= 0 and sum to 100, got {dict(self.weights)}")

    @classmethod
    def only(cls, slot: str) -> Routes:
        return cls({slot: 100})

    def to_json(self) -> dict[str, object]:
        return {"weights": dict(self.weights), "tenants": dict(self.tenants)}


@dataclass(frozen=True)
class SlotState:
    """What a deployer reports about one running slot."""

    slot: str
    digest: str
    version: str
    healthy: bool
    endpoint: str | None = None  # e.g. http://127.0.0.1:41234 for local slots


class Deployer(Protocol):
    """One environment's deployment target. Every call is bounded in time and raises
    :class:`DeployError` on failure; none leaves a half-applied route behind (a route change is
    applied whole or not at all)."""

    #: Whether ``route`` honours a lease (the router returns to stable by itself when it runs
    #: out). A deployer without them gets lasting splits, renewed by nobody.
    leases: bool

    def deploy(self, service: ServiceSpec, slot: SlotSpec) -> SlotState:
        """Start ``slot`` (replacing what ran there), wait until healthy; no traffic yet."""
        ...

    def route(self, service: str, routes: Routes, *, lease: float | None = None) -> None:
        """Apply a traffic split atomically. With ``lease`` (seconds), a router that supports it
        returns all traffic to ``stable`` by itself unless the split is renewed in time (tenants
        pinned to ``held`` stay there): a split is never left with nobody watching."""
        ...

    def scale_down(self, service: str, slot: str) -> None:
        """Stop a slot (no traffic must reach it any more)."""
        ...

    def promote(self, service: str, slot: str) -> None:
        """Make ``slot`` the new ``stable`` (it already takes all traffic); the old stable stops."""
        ...

    def slots(self, service: str) -> dict[str, SlotState]:
        """What runs now, by slot."""
        ...

    def routes(self, service: str) -> Routes | None:
        """The traffic split in force now (None: the service takes no traffic yet)."""
        ...
