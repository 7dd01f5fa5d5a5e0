"""Metric sources: where a rollout's per-version samples come from, behind one port.

A source turns the judge's declared metrics into :class:`~clearance.core.judge.Sample` rows for
one slot (one version) over a time window, one row per metric per interval: exactly the rows of
an exported sample file, so a rollout's samples can be replayed with ``clearance judge``.

- ``metrics/builtin.py`` reads the request records the local router keeps (and counters apps
  push to it) and aggregates them with ``clearance/core/metrics.py``;
- ``metrics/prometheus.py`` runs PromQL range queries, with the version label filled in.

A query that fails is reported per metric (the judge then sees an ``error`` series and the
rollout stops in a safe state), never as missing data and never as a pass.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from clearance.core.judge import Sample

__all__ = ["Collected", "MetricSource", "Target", "Window"]


@dataclass(frozen=True)
class Target:
    """Whose samples: one service's slot, running one version."""

    service: str
    slot: str
    version: str
    digest: str


@dataclass(frozen=True)
class Window:
    """[start, end) in Unix seconds, cut into intervals of ``interval`` seconds."""

    start: float
    end: float
    interval: float


@dataclass(frozen=True)
class Collected:
    """Samples of every metric that could be read, and why each other metric could not."""

    samples: tuple[Sample, ...] = ()
    errors: Mapping[str, str] = field(default_factory=dict)


class MetricSource(Protocol):
    def collect(self, target: Target, window: Window, metrics: tuple[str, ...]) -> Collected:
        """Samples of ``metrics`` for ``target`` over ``window``; a metric with no traffic has no
        rows (no data), a metric whose query failed is in ``errors``."""
        ...
