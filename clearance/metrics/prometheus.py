"""Prometheus as a metric source: PromQL range queries over the HTTP API.

Each expression of a metric's :class:`~clearance.core.queries.PromQuery` is run with
``GET /api/v1/query_range`` (``start`` = the end of the window's first interval, ``step`` = the
interval), so it is evaluated at the end of every complete interval and should look back
``$interval`` (``increase(x[$interval])``); the sample is stamped with the interval's start,
like a builtin sample. Rules, per metric:

- the result must be one series (aggregate with ``sum``/``max``/...); several series are an
  error, none is no data;
- ``NaN`` and infinite values are skipped: not data;
- a rate's counts are rounded to whole events (``increase()`` extrapolates); a count below 0,
  a numerator above its denominator, or a numerator missing where the denominator counted
  requests is an error (``... or vector(0)`` makes "no errors" a 0);
- an HTTP error, a refused query, a timeout, an unreachable server or a response that is not
  the Prometheus API's is an error naming the query and the reason. After a timeout or an
  unreachable server the remaining metrics are not queried (they report the same reason), so a
  ``collect`` takes about ``timeout`` seconds at worst.

``collect`` never raises, and a failure is never a pass.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Mapping
from typing import Any

import httpx

from clearance.core.judge import Kind, Sample
from clearance.core.metrics import format_timestamp, interval_starts
from clearance.core.queries import PromQuery, promql_duration, promql_values
from clearance.errors import InputError
from clearance.metrics import Collected, Target, Window

__all__ = ["PrometheusSource"]

MAX_BYTES = 32 << 20  # a range query of one series over at most 11,000 steps is far smaller
_SHOWN = 240  # characters of an expression or a response body quoted in a message


class _Failed(Exception):
    """One query could not give a series; the message says why."""


class _Down(_Failed):
    """Prometheus did not answer at all: the remaining queries of this collect are skipped."""


class PrometheusSource:
    """A :class:`~clearance.metrics.MetricSource` running PromQL against ``url`` (the server's
    base URL, e.g. ``http://prometheus:9090``); every HTTP call is bounded by ``timeout``."""

    def __init__(self, url: str, queries: Mapping[str, PromQuery], timeout: float = 10.0) -> None:
        try:
            parsed = httpx.URL(url)
        except (httpx.InvalidURL, TypeError) as exc:
            raise InputError(f"{url!r} is not a Prometheus URL: {exc}") from exc
        if parsed.scheme not in ("http", "https") or not parsed.host:
            raise InputError(
                f"{url!r} is not a Prometheus URL", hint="write http(s)://host:port[/prefix]"
            )
        if not (math.isfinite(timeout) and timeout > 0):
            raise InputError(f"the Prometheus timeout must be > 0 seconds, got {timeout!r}")
        self.url = url.rstrip("/")
        self.queries = dict(queries)
        self.timeout = timeout

    def collect(self, target: Target, window: Window, metrics: tuple[str, ...]) -> Collected:
        names = tuple(dict.fromkeys(metrics))
        try:
            starts = interval_starts(window)
            values = promql_values(
                service=target.service,
                slot=target.slot,
                version=target.version,
                digest=target.digest,
                interval=window.interval,
            )
        except ValueError as exc:
            return Collected((), dict.fromkeys(names, f"cannot query Prometheus: {exc}"))
        errors: dict[str, str] = {}
        rows: list[tuple[int, int, Sample]] = []
        with httpx.Client(timeout=self.timeout) as client:
            session = _Session(client, self.url, self.timeout, window.interval, starts)
            for order, name in enumerate(names):
                query = self.queries.get(name)
                if query is None:
                    errors[name] = (
                        f"no Prometheus query for metric {name!r}: declare its 'query', or its "
                        "'numerator' and 'denominator'"
                    )
                    continue
                try:
                    found = _metric(session, name, query, values)
                except _Failed as exc:
                    errors[name] = str(exc)
                    continue
                except Exception as exc:  # a bug of ours must stop the rollout, not crash it
                    errors[name] = f"reading it from Prometheus failed unexpectedly: {exc!r}"
                    continue
                rows.extend((k, order, s) for k, s in found)
        rows.sort(key=lambda row: (row[0], row[1]))
        return Collected(tuple(s for _, _, s in rows), errors)


def _metric(
    session: _Session, name: str, query: PromQuery, values: Mapping[str, str]
) -> list[tuple[int, Sample]]:
    expressions = dict(zip((r for r, _ in query.expressions), query.render(values), strict=True))
    stamp = session.stamp
    if query.kind is Kind.CONTINUOUS:
        series = session.series("query", expressions["query"])
        return [(k, Sample(stamp(k), name, value=v)) for k, v in sorted(series.items())]
    num_expr, den_expr = expressions["numerator"], expressions["denominator"]
    den = session.series("denominator", den_expr)
    num = session.series("numerator", num_expr) if den else {}
    rows: list[tuple[int, Sample]] = []
    for k in sorted(den.keys() | num.keys()):
        events = _count(num.get(k), "numerator", num_expr, stamp(k))
        requests = _count(den.get(k), "denominator", den_expr, stamp(k))
        if requests is None:
            if events:  # events where nothing was counted: not a rate of anything
                raise _Failed(
                    f"numerator query {_quote(num_expr)} counted {events} at {stamp(k)}, where "
                    f"denominator query {_quote(den_expr)} has no value"
                )
            continue
        if events is None:
            if requests == 0:
                continue
            raise _Failed(
                f"numerator query {_quote(num_expr)} has no value at {stamp(k)}, where the "
                f"denominator counted {requests}: make it return 0 when nothing happened "
                "(append 'or vector(0)')"
            )
        if events > requests:
            raise _Failed(
                f"numerator query {_quote(num_expr)} counted {events} at {stamp(k)}, more than "
                f"the {requests} of denominator query {_quote(den_expr)}: the numerator must "
                "count a subset of the denominator's events"
            )
        if requests:
            rows.append((k, Sample(stamp(k), name, numerator=events, denominator=requests)))
    return rows


def _count(value: float | None, role: str, expr: str, when: str) -> int | None:
    if value is None:
        return None
    events = math.floor(value + 0.5)
    if events < 0:
        raise _Failed(f"{_what(role, expr)} gave {value:g} at {when}: counts are >= 0")
    return events


class _Session:
    """The HTTP calls of one ``collect``: same window, same client, one shared outage."""

    def __init__(
        self,
        client: httpx.Client,
        url: str,
        timeout: float,
        interval: float,
        starts: tuple[float, ...],
    ) -> None:
        self.client = client
        self.url = url
        self.timeout = timeout
        self.interval = interval
        self.starts = starts
        self.down: str | None = None

    def stamp(self, k: int) -> str:
        return format_timestamp(self.starts[k])

    def series(self, role: str, expr: str) -> dict[int, float]:
        """The expression's finite values by interval index; {} for no series (no data)."""
        if not self.starts:
            return {}
        if self.down is not None:
            raise _Failed(f"{_what(role, expr)} was not run: {self.down}")
        try:
            result = self._query_range(expr)
        except _Down as exc:
            self.down = str(exc)
            raise _Failed(f"{_what(role, expr)} failed: {exc}") from exc
        except _Failed as exc:
            raise _Failed(f"{_what(role, expr)} failed: {exc}") from exc
        if not result:
            return {}
        if len(result) > 1:
            labels = "; ".join(_labels(s) for s in result[:3])
            more = f" and {len(result) - 3} more" if len(result) > 3 else ""
            raise _Failed(
                f"{_what(role, expr)} returned {len(result)} series ({labels}{more}): "
                "it must give one, aggregate it (e.g. sum(...) or max(...))"
            )
        return self._values(role, expr, result[0])

    def _values(self, role: str, expr: str, series: Any) -> dict[int, float]:
        points = series.get("values") if isinstance(series, dict) else None
        if not isinstance(points, list):
            raise _Failed(f"{_what(role, expr)}: a series without 'values'")
        first = self.starts[0] + self.interval
        found: dict[int, float] = {}
        for point in points:
            try:
                at, text = float(point[0]), point[1]
                if not isinstance(text, str):  # the API sends values as strings, "NaN" too
                    raise TypeError(text)
                value = float(text)
            except (TypeError, ValueError, IndexError, KeyError):
                raise _Failed(
                    f"{_what(role, expr)}: not a [time, value] point: {point!r:.80}"
                ) from None
            if not math.isfinite(value):
                continue  # NaN and +-Inf are not data
            k = round((at - first) / self.interval)
            if 0 <= k < len(self.starts):
                found[k] = value
        return found

    def _query_range(self, expr: str) -> list[Any]:
        params = {
            "query": expr,
            "start": f"{self.starts[0] + self.interval:.3f}",
            "end": f"{self.starts[-1] + self.interval:.3f}",
            "step": promql_duration(self.interval),
            "timeout": promql_duration(max(self.timeout, 0.001)),
        }
        where = f"Prometheus at {self.url}"
        deadline = time.monotonic() + self.timeout
        try:
            with self.client.stream(
                "GET", f"{self.url}/api/v1/query_range", params=params
            ) as response:
                body = bytearray()
                for chunk in response.iter_bytes():
                    body += chunk
                    if len(body) > MAX_BYTES:
                        raise _Failed(f"{where} sent more than {MAX_BYTES >> 20} MiB")
                    if time.monotonic() > deadline:
                        raise _Down(f"{where} did not answer within {self.timeout:g}s")
        except httpx.TimeoutException as exc:
            raise _Down(f"{where} did not answer within {self.timeout:g}s") from exc
        except (httpx.ConnectError, httpx.RemoteProtocolError, httpx.ProxyError) as exc:
            raise _Down(f"{where} is unreachable ({_reason(exc)})") from exc
        except httpx.HTTPError as exc:
            raise _Failed(f"{where}: {_reason(exc)}") from exc
        return _result(bytes(body), response.status_code, where)


def _result(body: bytes, status: int, where: str) -> list[Any]:
    """The ``data.result`` of a range query's response, or why there is none."""
    try:
        payload = json.loads(body)
    except ValueError:
        payload = None
    if not isinstance(payload, dict) or payload.get("status") not in ("success", "error"):
        shown = body[:_SHOWN].decode("utf-8", "replace").strip()
        raise _Failed(
            f"{where} answered HTTP {status} with something other than the Prometheus API's "
            f"JSON: {shown!r} (is the URL the server's base URL?)"
        )
    if payload["status"] == "error":
        raise _Failed(
            f"{where} refused it (HTTP {status}, {payload.get('errorType', 'error')}): "
            f"{payload.get('error', 'no reason given')}"
        )
    data = payload.get("data")
    if status != 200 or not isinstance(data, dict):
        raise _Failed(f"{where} answered HTTP {status} without a result")
    if data.get("resultType") != "matrix" or not isinstance(data.get("result"), list):
        raise _Failed(f"{where} returned a {data.get('resultType')!r} result, not a matrix")
    result: list[Any] = data["result"]
    return result


def _labels(series: Any) -> str:
    metric = series.get("metric") if isinstance(series, dict) else None
    if not isinstance(metric, dict) or not metric:
        return "{}"
    return "{" + ", ".join(f'{k}="{v}"' for k, v in sorted(metric.items())) + "}"


def _what(role: str, expr: str) -> str:
    """``query '...'``, ``numerator query '...'`` or ``denominator query '...'``."""
    return f"query {_quote(expr)}" if role == "query" else f"{role} query {_quote(expr)}"


def _quote(expr: str) -> str:
    return repr(expr if len(expr) <= _SHOWN else expr[: _SHOWN - 3] + "...")


def _reason(exc: Exception) -> str:
    return str(exc).strip() or type(exc).__name__
