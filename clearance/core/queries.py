"""How each judged metric is measured: the query a policy declares per metric, per source.

- :class:`BuiltinQuery` reads the request records Clearance's own router keeps, and the counters
  and gauges applications push to it (aggregated by ``metrics.py``, served by
  ``metrics/builtin.py``).
- :class:`PromQuery` is PromQL for a Prometheus server, with ``$version``, ``$slot``,
  ``$service``, ``$interval`` and ``$digest`` filled in per slot from :func:`promql_values`
  (``metrics/prometheus.py``).

Both are valid by construction: a shape that cannot be measured is refused with a message
saying what to write instead. Pure: no I/O.
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, field_validator, model_validator

from clearance.core.judge import Kind

__all__ = [
    "PLACEHOLDERS",
    "BuiltinQuery",
    "PromQuery",
    "promql_duration",
    "promql_values",
]

#: What a PromQL expression may refer to, as ``$name``.
PLACEHOLDERS = ("version", "slot", "service", "interval", "digest")
Measure = Literal["errors", "successes", "p50", "p90", "p95", "p99", "mean"]
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.:-]*\Z")
_ROUTE = re.compile(r"(?:(?P<method>[A-Za-z]+)\s+)?(?P<path>[/*]\S*)\Z")
_SAFE_VALUE = re.compile(r"[A-Za-z0-9._:+@/-]*\Z")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BuiltinQuery(_Model):
    """A metric measured from the local router's records. The shapes (anything else is refused):

    - ``{route, measure: errors}``: rate, requests with status >= 500 of the matching requests;
    - ``{route, measure: successes}``: rate, requests with status < 400 of the matching requests;
    - ``{route, measure: p50|p90|p95|p99|mean}``: continuous, that latency (ms) per interval;
    - ``{counter, route}``: rate, the pushed counter's sum of the matching requests (a counter
      above the request count is an error, never clamped);
    - ``{gauge}``: continuous, the mean of the values pushed in each interval.

    ``route`` is ``"POST /orders"``, ``"/orders"`` or ``"PUT /charts/*"``: an optional method,
    then a pattern for the request path without its query string, where ``*`` matches any run
    of characters (``/`` included) and everything else matches itself.
    """

    route: str | None = None
    measure: Measure | None = None
    counter: str | None = None
    gauge: str | None = None

    @field_validator("route")
    @classmethod
    def _route(cls, value: str | None) -> str | None:
        if value is None:
            return None
        match = _ROUTE.match(value.strip())
        if not match:
            raise ValueError(
                f"{value!r} is not a route: write a path pattern such as '/orders' or "
                "'/charts/*', optionally after a method ('POST /orders')"
            )
        if "?" in match["path"]:
            raise ValueError(
                f"{value!r}: routes match the path without its query string; drop the '?...'"
            )
        method = match["method"]
        return f"{method.upper()} {match['path']}" if method else match["path"]

    @field_validator("counter", "gauge")
    @classmethod
    def _name(cls, value: str | None) -> str | None:
        if value is not None and not _NAME.match(value):
            raise ValueError(f"{value!r} is not a counter or gauge name (letters, digits, _.:-)")
        return value

    @model_validator(mode="after")
    def _shape(self) -> Self:
        given = [k for k in ("route", "measure", "counter", "gauge") if getattr(self, k)]
        if self.gauge is not None:
            if given != ["gauge"]:
                raise ValueError(
                    f"a gauge query has only 'gauge'; drop {', '.join(repr(k) for k in given[:-1])}"
                )
            return self
        if self.counter is not None:
            if self.measure is not None:
                raise ValueError("give 'counter' or 'measure', not both")
            if self.route is None:
                raise ValueError(
                    f"counter {self.counter!r} needs 'route': the requests it is counted against"
                )
            return self
        if self.measure is not None:
            if self.route is None:
                raise ValueError(
                    f"measure {self.measure!r} needs 'route': which requests to measure "
                    "(e.g. 'POST /orders', or '*' for all)"
                )
            return self
        raise ValueError(
            "a builtin query is {route, measure: errors|successes|p50|p90|p95|p99|mean}, "
            "{route, counter} or {gauge}"
        )

    @property
    def kind(self) -> Kind:
        if self.gauge is not None or self.measure not in (None, "errors", "successes"):
            return Kind.CONTINUOUS
        return Kind.RATE


class PromQuery(_Model):
    """A metric measured with PromQL: ``query`` (continuous: one value per interval) or
    ``numerator`` and ``denominator`` (rate: event counts per interval, e.g. ``increase()``).

    Each expression is evaluated at the end of every interval and should look back
    ``$interval``. Placeholders use ``$name`` (``string.Template``; PromQL needs its braces):
    ``$version``, ``$slot``, ``$service``, ``$digest`` and ``$interval`` (a PromQL duration such
    as ``10s``); ``$$`` is a literal ``$``. Any other ``$name`` is refused.
    """

    query: str | None = None
    numerator: str | None = None
    denominator: str | None = None

    @field_validator("query", "numerator", "denominator")
    @classmethod
    def _template(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not value.strip():
            raise ValueError("is empty: write a PromQL expression")
        template = string.Template(value)
        for match in template.pattern.finditer(value):
            if match["invalid"] is not None:
                at = match.start("invalid")
                raise ValueError(
                    f"{value[at : at + 8]!r} (character {at + 1}) is not a placeholder: the "
                    f"placeholders are {_names()}; write $$ for a literal $"
                )
        unknown = [n for n in template.get_identifiers() if n not in PLACEHOLDERS]
        if unknown:
            raise ValueError(f"unknown placeholder ${unknown[0]}: the placeholders are {_names()}")
        return value

    @model_validator(mode="after")
    def _shape(self) -> Self:
        pair = (self.numerator is not None, self.denominator is not None)
        if self.query is not None and any(pair):
            raise ValueError(
                "give 'query' (a continuous metric) or 'numerator' and 'denominator' (a rate), "
                "not both"
            )
        if self.query is None and not all(pair):
            if any(pair):
                missing = "denominator" if pair[0] else "numerator"
                raise ValueError(
                    f"a rate needs both 'numerator' and 'denominator': add {missing!r}"
                )
            raise ValueError(
                "a Prometheus query needs 'query' (continuous) or 'numerator' and 'denominator' "
                "(rate)"
            )
        return self

    @property
    def kind(self) -> Kind:
        return Kind.CONTINUOUS if self.query is not None else Kind.RATE

    @property
    def expressions(self) -> tuple[tuple[str, str], ...]:
        """``(role, template)`` pairs: ``("query", ...)`` or numerator then denominator."""
        if self.query is not None:
            return (("query", self.query),)
        assert self.numerator is not None and self.denominator is not None  # by _shape
        return (("numerator", self.numerator), ("denominator", self.denominator))

    def render(self, values: Mapping[str, str]) -> tuple[str, ...]:
        """The expressions with the placeholders filled from :func:`promql_values`."""
        return tuple(string.Template(t).substitute(values) for _, t in self.expressions)


def _names() -> str:
    return ", ".join(f"${p}" for p in PLACEHOLDERS)


def promql_duration(seconds: float) -> str:
    """``10`` -> ``10s``, ``1.5`` -> ``1500ms`` (PromQL durations are whole units)."""
    ms = round(seconds * 1000)
    if ms <= 0:
        raise ValueError(f"{seconds!r} seconds is not a positive duration")
    return f"{ms // 1000}s" if ms % 1000 == 0 else f"{ms}ms"


def promql_values(
    *, service: str, slot: str, version: str, digest: str, interval: float
) -> dict[str, str]:
    """The placeholder values for one slot. Raises ValueError for a value that cannot be put
    into a PromQL string literal as it is (quotes, backslashes, spaces)."""
    values = {"service": service, "slot": slot, "version": version, "digest": digest}
    for name, value in values.items():
        if not _SAFE_VALUE.match(value):
            raise ValueError(
                f"the {name} {value!r} cannot be put into PromQL safely (only letters, digits "
                "and ._:+@/- are)"
            )
    return {**values, "interval": promql_duration(interval)}
