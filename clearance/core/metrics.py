"""Judge samples from the router's records: windows cut into intervals, and the aggregation.

A rollout judges the canary against the baseline on per-interval samples. For a metric measured
with a :class:`~clearance.core.queries.BuiltinQuery` (the request records Clearance's own router
keeps, and the counters and gauges applications push to it), :func:`aggregate` turns one slot's
records into those samples; :func:`interval_starts` and :func:`format_timestamp` give every
source (``metrics/prometheus.py`` too) the same intervals and stamps.

A window ``[start, end)`` is cut into complete intervals ``[start + k*interval,
start + (k+1)*interval)``; a partial last interval is dropped. A sample is stamped with its
interval's start in ISO 8601 UTC (``2026-11-02T09:30:00Z``). An interval without requests has no
row (no data), never a zero. Pure: no I/O, no clock.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from clearance.core.judge import Sample
from clearance.core.queries import BuiltinQuery

__all__ = [
    "MAX_INTERVALS",
    "Span",
    "aggregate",
    "format_timestamp",
    "interval_starts",
]

#: At most this many intervals per window (Prometheus refuses more points per series).
MAX_INTERVALS = 11_000
QUANTILES = {"p50": 0.5, "p90": 0.9, "p95": 0.95, "p99": 0.99}
_LAST_YEAR = 253402300799.0  # 9999-12-31T23:59:59Z
Array = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]
Mask = npt.NDArray[np.bool_]


class Span(Protocol):
    """A window: ``[start, end)`` in Unix seconds cut into ``interval``-second intervals
    (``clearance.metrics.Window`` is one)."""

    @property
    def start(self) -> float: ...

    @property
    def end(self) -> float: ...

    @property
    def interval(self) -> float: ...


def interval_starts(window: Span) -> tuple[float, ...]:
    """The start of every complete interval of ``window``; ValueError for an unusable window."""
    return tuple(float(x) for x in _edges(window)[:-1])


def _edges(window: Span) -> Array:
    start, end, interval = window.start, window.end, window.interval
    if not all(math.isfinite(x) for x in (start, end, interval)):
        raise ValueError(f"the window {start}..{end} every {interval}s is not finite")
    if interval <= 0:
        raise ValueError(f"the interval must be > 0 seconds, got {interval}")
    if not 0 <= start <= end <= _LAST_YEAR:
        raise ValueError(f"the window {start}..{end} is not a span of Unix seconds")
    n = math.floor((end - start) / interval + 1e-9)
    if n > MAX_INTERVALS:
        raise ValueError(
            f"the window has {n} intervals of {interval:g}s; at most {MAX_INTERVALS}: use a "
            "longer interval"
        )
    return start + np.arange(n + 1, dtype=np.float64) * interval


def format_timestamp(seconds: float) -> str:
    """Unix seconds as ISO 8601 UTC with ``Z``, to the microsecond when needed."""
    moment = datetime.fromtimestamp(round(seconds, 6), UTC).replace(tzinfo=None)
    if moment.microsecond == 0:
        return moment.isoformat(timespec="seconds") + "Z"
    spec = "milliseconds" if moment.microsecond % 1000 == 0 else "microseconds"
    return moment.isoformat(timespec=spec) + "Z"


# --- aggregation of router records ------------------------------------------------------------


@lru_cache(maxsize=512)
def _route_matcher(route: str) -> Callable[[str, str], bool]:
    method, _, glob = route.rpartition(" ")
    pattern = re.compile(".*".join(re.escape(part) for part in glob.split("*")) + r"\Z", re.S)

    def matches(request_method: str, path: str) -> bool:
        if method and request_method.upper() != method:
            return False
        return pattern.match(path.partition("?")[0]) is not None

    return matches


class _Records:
    """One slot's records inside the window, as arrays: requests, and pushed counters/gauges."""

    def __init__(self, edges: Array) -> None:
        self.edges = edges
        self.n = edges.size - 1
        self.keys: dict[tuple[str, str], int] = {}
        self.bucket: Ints = np.zeros(0, np.int64)
        self.key: Ints = np.zeros(0, np.int64)
        self.status: Ints = np.zeros(0, np.int64)
        self.ms: Array = np.zeros(0, np.float64)
        self.pushed: dict[tuple[str, str], tuple[Ints, Array]] = {}
        self._masks: dict[str, Mask] = {}
        self._sorted: dict[str, tuple[Array, Ints]] = {}

    def buckets(self, times: list[float]) -> Ints:
        found: Ints = np.searchsorted(self.edges, np.asarray(times, np.float64), side="right") - 1
        return found

    def matching(self, route: str) -> Mask:
        """Which requests match ``route``: the pattern runs once per distinct (method, path)."""
        mask = self._masks.get(route)
        if mask is None:
            matches = _route_matcher(route)
            per_key = np.fromiter(
                (matches(m, p) for m, p in self.keys), dtype=np.bool_, count=len(self.keys)
            )
            mask = per_key[self.key] if self.key.size else np.zeros(0, np.bool_)
            self._masks[route] = mask
        return mask

    def latencies(self, route: str) -> tuple[Array, Ints]:
        """The matching requests' latencies sorted by interval then value, and counts per
        interval."""
        cached = self._sorted.get(route)
        if cached is None:
            mask = self.matching(route)
            b, v = self.bucket[mask], self.ms[mask]
            order = np.lexsort((v, b))
            cached = (v[order], np.bincount(b, minlength=self.n).astype(np.int64))
            self._sorted[route] = cached
        return cached


def _read(
    records: Iterable[Mapping[str, Any]],
    edges: Array,
    slot: str,
    version: str | None,
    wanted: set[tuple[str, str]],
) -> _Records:
    low, high = float(edges[0]), float(edges[-1])
    keys: dict[tuple[str, str], int] = {}
    times: list[float] = []
    key_ids: list[int] = []
    statuses: list[int] = []
    latencies: list[float] = []
    pushed: dict[tuple[str, str], tuple[list[float], list[float]]] = {w: ([], []) for w in wanted}
    record: Any = None
    try:
        for record in records:
            if record.get("slot") != slot or (
                version is not None and record.get("version") != version
            ):
                continue
            t = record["t"]
            if type(t) is not float and type(t) is not int:
                raise ValueError("'t' is not a number")
            if not low <= t < high:
                if not math.isfinite(t):
                    raise ValueError("'t' is not finite")
                continue
            if "status" in record:
                method, path, status, ms = (
                    record["method"],
                    record["path"],
                    record["status"],
                    record["ms"],
                )
                if type(method) is not str or type(path) is not str or type(status) is not int:
                    raise ValueError("'method', 'path' and 'status' must be text, text, integer")
                if (type(ms) is not float and type(ms) is not int) or not math.isfinite(ms):
                    raise ValueError("'ms' is not a finite number")
                key = (method, path)
                kid = keys.get(key)
                if kid is None:
                    kid = keys[key] = len(keys)
                times.append(t)
                key_ids.append(kid)
                statuses.append(status)
                latencies.append(ms)
                continue
            kind = "counter" if "counter" in record else "gauge" if "gauge" in record else None
            if kind is None:
                continue  # a record kind this version does not know: not a measurement of ours
            lists = pushed.get((kind, record[kind]))
            if lists is None:
                continue
            value = record["value"]
            if (type(value) is not float and type(value) is not int) or not math.isfinite(value):
                raise ValueError("'value' is not a finite number")
            lists[0].append(t)
            lists[1].append(value)
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        what = f"record seq={record.get('seq')!r}" if isinstance(record, Mapping) else "record"
        reason = f"no {exc}" if isinstance(exc, KeyError) else str(exc)
        raise ValueError(f"the router returned a malformed {what}: {reason}") from exc
    out = _Records(edges)
    out.keys = keys
    out.bucket = out.buckets(times)
    out.key = np.asarray(key_ids, np.int64)
    out.status = np.asarray(statuses, np.int64)
    out.ms = np.asarray(latencies, np.float64)
    out.pushed = {
        w: (out.buckets(ts), np.asarray(vs, np.float64)) for w, (ts, vs) in pushed.items()
    }
    return out


_Rows = list[tuple[int, Sample]]


def aggregate(
    records: Iterable[Mapping[str, Any]],
    queries: Mapping[str, BuiltinQuery],
    window: Span,
    slot: str,
    *,
    version: str | None = None,
) -> tuple[list[Sample], dict[str, str]]:
    """One slot's router records as samples: one per metric per complete interval with data.

    Records of other slots (and, with ``version``, of other versions) are ignored. Returns the
    samples, in interval order then query order, and per metric an error that replaces all its
    samples (a counter above its request count). Raises ValueError for an unusable window or a
    malformed record: then no metric can be trusted.
    """
    edges = _edges(window)
    wanted = {w for q in queries.values() if (w := _pushed_name(q)) is not None}
    data = _read(records, edges, slot, version, wanted)
    stamps: dict[int, str] = {}

    def stamp(k: int) -> str:
        text = stamps.get(k)
        if text is None:
            text = stamps[k] = format_timestamp(float(edges[k]))
        return text

    rows: list[tuple[int, int, Sample]] = []
    errors: dict[str, str] = {}
    for order, (name, query) in enumerate(queries.items()):
        found = _measure(name, query, data, stamp)
        if isinstance(found, str):
            errors[name] = found
        else:
            rows.extend((k, order, s) for k, s in found)
    rows.sort(key=lambda row: (row[0], row[1]))
    return [s for _, _, s in rows], errors


def _pushed_name(query: BuiltinQuery) -> tuple[str, str] | None:
    if query.counter is not None:
        return ("counter", query.counter)
    if query.gauge is not None:
        return ("gauge", query.gauge)
    return None


def _measure(
    name: str, query: BuiltinQuery, data: _Records, stamp: Callable[[int], str]
) -> _Rows | str:
    n = data.n
    if query.gauge is not None:
        b, v = data.pushed[("gauge", query.gauge)]
        count = np.bincount(b, minlength=n)
        total = np.bincount(b, weights=v, minlength=n)
        return [
            (k, Sample(stamp(k), name, value=float(total[k] / count[k])))
            for k in np.flatnonzero(count).tolist()
        ]
    assert query.route is not None  # by BuiltinQuery._shape
    mask = data.matching(query.route)
    requests = np.bincount(data.bucket[mask], minlength=n)
    if query.counter is not None:
        return _counter(name, query.counter, query.route, data, requests, stamp)
    if query.measure in ("errors", "successes"):
        hit = data.status >= 500 if query.measure == "errors" else data.status < 400
        events = np.bincount(data.bucket[mask & hit], minlength=n)
        return [
            (k, Sample(stamp(k), name, numerator=int(events[k]), denominator=int(requests[k])))
            for k in np.flatnonzero(requests).tolist()
        ]
    ms, counts = data.latencies(query.route)
    nonempty = np.flatnonzero(counts)
    if query.measure == "mean":
        sums = np.bincount(data.bucket[mask], weights=data.ms[mask], minlength=n)
        values = sums[nonempty] / counts[nonempty]
    else:
        values = _quantiles(ms, counts, nonempty, QUANTILES[str(query.measure)])
    return [
        (k, Sample(stamp(k), name, value=float(x)))
        for k, x in zip(nonempty.tolist(), values.tolist(), strict=True)
    ]


def _quantiles(ms: Array, counts: Ints, nonempty: Ints, q: float) -> Array:
    """Per interval, the ``q`` quantile of its values (sorted per interval in ``ms``), with
    numpy's default linear interpolation."""
    offsets = np.concatenate(([0], np.cumsum(counts)[:-1]))[nonempty]
    size = counts[nonempty]
    position = q * (size - 1)
    lower = np.floor(position).astype(np.int64)
    upper = np.minimum(lower + 1, size - 1)
    a, b = ms[offsets + lower], ms[offsets + upper]
    result: Array = np.clip(a + (b - a) * (position - lower), a, b)
    return result


def _counter(
    name: str,
    counter: str,
    route: str,
    data: _Records,
    requests: Ints,
    stamp: Callable[[int], str],
) -> _Rows | str:
    b, v = data.pushed[("counter", counter)]
    n = data.n
    pushes = np.bincount(b, minlength=n)
    sums = np.bincount(b, weights=v, minlength=n)
    rows: _Rows = []
    bad: list[str] = []
    # An app pushes while it handles a request, and the router records the request when it has
    # answered: at an interval boundary the push can fall into the interval before its request.
    # Counts above an interval's requests therefore carry into the next interval; what is left at
    # the end of the window is an error unless it came from the window's last interval (whose
    # requests may be answered after the window closes).
    carry = 0
    last = -1
    for k in np.flatnonzero((requests > 0) | (pushes > 0)).tolist():
        pushed, den = math.floor(float(sums[k]) + 0.5), int(requests[k])
        if pushed < 0:
            bad.append(f"{pushed} at {stamp(k)} (pushed values must be >= 0)")
            continue
        if carry and k != last + 1:  # an interval without requests between: it cannot carry
            bad.append(f"{carry} more at {stamp(last)} than requests")
            carry = 0
        events = pushed + carry
        carry = max(0, events - den)
        events -= carry
        last = k
        if den:
            rows.append((k, Sample(stamp(k), name, numerator=events, denominator=den)))
    if carry and last != n - 1:
        bad.append(f"{carry} more at {stamp(last)} than requests")
    if bad:
        more = f" (and {len(bad) - 1} more intervals)" if len(bad) > 1 else ""
        return (
            f"counter {counter!r} counted more than the requests matching {route!r}: "
            f"{bad[0]}{more}; push it at most once per matching request, in the same interval"
        )
    return rows
