"""The judge's configuration: which metrics to judge and how, and the verdict thresholds.

One form, read from a metrics file (``clearance judge --metrics``) or from a policy's
``analysis`` section (a rollout's judge)::

    thresholds: {pass: 95, marginal: 75, alpha: 0.01}   # all optional, these are the defaults
    groups: {errors: 2, latency: 1}                      # optional group weights
    metrics:
      order_errors:   {kind: rate, direction: increase, critical: true, group: errors}
      chart_save_p95: {kind: continuous, direction: increase, allowed_effect: 0.1}

Per metric: ``kind`` (required: rate | continuous), ``direction`` (increase | decrease | either;
default increase), ``critical``, ``must_have_data`` (true means ``no_data: fail``), ``no_data``
(fail | marginal | ignore; default marginal), ``allowed_effect`` and ``critical_effect`` (relative,
0.1 = 10%), ``weight``, ``group``, ``outliers`` (remove | keep). Unknown keys are errors: a typo
must not silently change what a verdict means. Every error names file, line and field.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, TypeVar

from clearance.core.judge import (
    Direction,
    Kind,
    MetricSpec,
    NoData,
    Outliers,
    Thresholds,
)
from clearance.core.yamlmap import Path as YamlPath
from clearance.core.yamlmap import line_of
from clearance.errors import InputError

E = TypeVar("E", bound=StrEnum)
_TOP = {"thresholds", "groups", "metrics"}
_METRIC_KEYS = {
    "kind",
    "direction",
    "critical",
    "must_have_data",
    "no_data",
    "allowed_effect",
    "critical_effect",
    "weight",
    "group",
    "outliers",
}


@dataclass(frozen=True)
class JudgeConfig:
    specs: tuple[MetricSpec, ...]
    thresholds: Thresholds = field(default_factory=Thresholds)
    group_weights: Mapping[str, float] = field(default_factory=dict)
    inferred: bool = False

    def spec(self, name: str) -> MetricSpec | None:
        return next((s for s in self.specs if s.name == name), None)


def config_from_data(
    data: Any, name: str, lines: dict[YamlPath, int], prefix: YamlPath = ()
) -> JudgeConfig:
    """A metrics mapping already loaded with ``yamlmap.load`` (a metrics file, or a policy's
    ``analysis`` section at ``prefix``) -> :class:`JudgeConfig`; stops at the first problem with
    an :class:`InputError` naming file, line and field."""
    return _Reader(name, lines, prefix).config(data)


class _Reader:
    def __init__(self, name: str, lines: dict[YamlPath, int], prefix: YamlPath = ()) -> None:
        self.name = name
        self.lines = lines
        self.prefix = prefix

    def fail(self, path: YamlPath, message: str, hint: str | None = None) -> InputError:
        path = (*self.prefix, *path)
        line = line_of(self.lines, path) or 1
        where = f"{self.name}:{line}"
        label = ".".join(str(p) for p in path)
        return InputError(f"{label}: {message}" if label else message, where=where, hint=hint)

    def mapping(self, value: Any, path: YamlPath) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(path, "must be a mapping")
        return value

    def number(self, value: Any, path: YamlPath) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.fail(path, f"must be a number, got {value!r}")
        return float(value)

    def boolean(self, value: Any, path: YamlPath) -> bool:
        if not isinstance(value, bool):
            raise self.fail(path, f"must be true or false, got {value!r}")
        return value

    def choice(self, enum: type[E], value: Any, path: YamlPath) -> E:
        try:
            return enum(value)
        except ValueError:
            allowed = " | ".join(e.value for e in enum)
            raise self.fail(path, f"must be one of {allowed}, got {value!r}") from None

    def config(self, data: Any) -> JudgeConfig:
        top = self.mapping(data, ())
        for key in top:
            if key not in _TOP:
                raise self.fail((key,), "unknown key", hint=f"expected {', '.join(sorted(_TOP))}")
        thresholds = self.thresholds(top.get("thresholds", {}))
        groups = {
            str(k): self.positive(v, ("groups", k))
            for k, v in self.mapping(top.get("groups", {}), ("groups",)).items()
        }
        if "metrics" not in top:
            raise self.fail((), "no 'metrics' mapping: declare the metrics to judge")
        metrics = self.mapping(top["metrics"], ("metrics",))
        if not metrics:
            raise self.fail(("metrics",), "declares no metric")
        specs = tuple(self.metric(str(k), v) for k, v in metrics.items())
        if groups:
            for spec in specs:
                if spec.group not in groups:
                    raise self.fail(
                        ("metrics", spec.name, "group"),
                        f"group {spec.group!r} has no weight in 'groups'",
                    )
        return JudgeConfig(specs, thresholds, groups)

    def positive(self, value: Any, path: YamlPath) -> float:
        number = self.number(value, path)
        if number <= 0:
            raise self.fail(path, "must be larger than 0")
        return number

    def thresholds(self, value: Any) -> Thresholds:
        path: YamlPath = ("thresholds",)
        raw = self.mapping(value, path)
        for key in raw:
            if key not in ("pass", "marginal", "alpha"):
                raise self.fail((*path, key), "unknown key", hint="expected pass, marginal, alpha")
        default = Thresholds()
        passing = self.number(raw.get("pass", default.pass_score), (*path, "pass"))
        marginal = self.number(raw.get("marginal", default.marginal_score), (*path, "marginal"))
        alpha = self.number(raw.get("alpha", default.alpha), (*path, "alpha"))
        if not 0 <= passing <= 100:
            raise self.fail((*path, "pass"), "must be a score between 0 and 100")
        if not 0 <= marginal <= passing:
            raise self.fail((*path, "marginal"), "must be between 0 and the pass score")
        if not 0 < alpha < 0.5:
            raise self.fail((*path, "alpha"), "must be between 0 and 0.5 (0.01 is usual)")
        return Thresholds(passing, marginal, alpha)

    def metric(self, name: str, value: Any) -> MetricSpec:
        path: YamlPath = ("metrics", name)
        raw = self.mapping(value, path)
        for key in raw:
            if key not in _METRIC_KEYS:
                raise self.fail(
                    (*path, key), "unknown key", hint=f"expected {', '.join(sorted(_METRIC_KEYS))}"
                )
        if "kind" not in raw:
            raise self.fail(path, "needs 'kind: rate' or 'kind: continuous'")
        kind = self.choice(Kind, raw["kind"], (*path, "kind"))
        no_data = self.choice(NoData, raw.get("no_data", "marginal"), (*path, "no_data"))
        if self.boolean(raw.get("must_have_data", False), (*path, "must_have_data")):
            if "no_data" in raw and no_data is not NoData.FAIL:
                raise self.fail(
                    (*path, "no_data"), "contradicts must_have_data: true (which means fail)"
                )
            no_data = NoData.FAIL
        allowed = self.number(raw.get("allowed_effect", 0.0), (*path, "allowed_effect"))
        if allowed < 0:
            raise self.fail((*path, "allowed_effect"), "must be >= 0 (0.1 means 10%)")
        critical_effect = None
        if raw.get("critical_effect") is not None:
            critical_effect = self.number(raw["critical_effect"], (*path, "critical_effect"))
            if critical_effect <= allowed:
                raise self.fail((*path, "critical_effect"), "must be larger than allowed_effect")
        group = raw.get("group", "default")
        if not isinstance(group, str) or not group:
            raise self.fail((*path, "group"), "must be a name")
        return MetricSpec(
            name=name,
            kind=kind,
            direction=self.choice(
                Direction, raw.get("direction", "increase"), (*path, "direction")
            ),
            critical=self.boolean(raw.get("critical", False), (*path, "critical")),
            no_data=no_data,
            allowed_effect=allowed,
            critical_effect=critical_effect,
            weight=self.positive(raw.get("weight", 1.0), (*path, "weight")),
            group=group,
            outliers=self.choice(Outliers, raw.get("outliers", "remove"), (*path, "outliers")),
        )
