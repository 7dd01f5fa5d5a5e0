"""The builtin metric source: samples from the request records Clearance's own router keeps.

The router records every request it forwards (method, path, status, latency, slot, version) and
the counters and gauges applications push to it. :class:`BuiltinSource` fetches one slot's
records for the window through a plain function (``LocalDeployer.records`` in production) and
aggregates them with :func:`clearance.core.metrics.aggregate`, keeping only records of the
target's version (a slot redeployed mid-window must not lend its old version's requests).

Every failure is per metric, in ``Collected.errors``: a metric without a builtin query, a fetch
that raised, a malformed record (then every metric: none can be trusted), a counter above its
request count. ``collect`` never raises.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from clearance.core.judge import Sample
from clearance.core.metrics import aggregate
from clearance.core.queries import BuiltinQuery
from clearance.metrics import Collected, Target, Window

__all__ = ["BuiltinSource", "Fetch"]

#: ``fetch(service, since, until, slot)``: the router's records of one slot, in any order.
Fetch = Callable[[str, float, float, str], list[dict[str, Any]]]


class BuiltinSource:
    """A :class:`~clearance.metrics.MetricSource` over the local router's records."""

    def __init__(self, fetch: Fetch, queries: Mapping[str, BuiltinQuery]) -> None:
        self._fetch = fetch
        self.queries = dict(queries)

    def collect(self, target: Target, window: Window, metrics: tuple[str, ...]) -> Collected:
        errors: dict[str, str] = {}
        queries: dict[str, BuiltinQuery] = {}
        for name in dict.fromkeys(metrics):
            query = self.queries.get(name)
            if query is None:
                errors[name] = (
                    f"no builtin query for metric {name!r}: declare how to measure it "
                    "(e.g. {route: 'POST /orders', measure: errors})"
                )
            else:
                queries[name] = query
        if not queries:
            return Collected((), errors)
        where = f"service {target.service!r}, slot {target.slot!r}"
        try:
            records = self._fetch(target.service, window.start, window.end, target.slot)
        except Exception as exc:  # whatever the fetch raises, each metric reports it, never a pass
            reason = f"could not read the router's records of {where}: {_describe(exc)}"
            return Collected((), {**errors, **dict.fromkeys(queries, reason)})
        samples: list[Sample]
        try:
            samples, failed = aggregate(
                records, queries, window, target.slot, version=target.version
            )
        except ValueError as exc:
            reason = f"cannot aggregate the router's records of {where}: {exc}"
            return Collected((), {**errors, **dict.fromkeys(queries, reason)})
        return Collected(tuple(samples), {**errors, **failed})


def _describe(exc: Exception) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
