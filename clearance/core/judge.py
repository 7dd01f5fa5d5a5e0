"""The canary judge: is the canary worse than the baseline, metric by metric, and what then.

``judge(specs, thresholds, baseline, canary)`` returns a :class:`Verdict` (pass, marginal or
fail) with every statistic behind it; ``Verdict.to_json()`` is the evidence that gets recorded.
Pure: no I/O, no clock, no randomness. The steps, in order:

1. Each declared metric's series is looked up in both groups. A series that reported an error is
   ``error``; a group without requests (rates) or without samples (continuous) is ``nodata``.
2. Continuous series (one value per interval, e.g. a p95 latency per minute) lose far outliers
   (Tukey fences at 3 IQR of the pooled series, applied to both groups: a rule blind to the
   group keeps the test exact) unless the metric says ``outliers: keep``.
3. The false-positive budget ``alpha`` of the whole verdict is split evenly (Bonferroni) over the
   metrics that have data, so an A/A comparison fails with probability at most ``alpha``.
4. Rates are tested on their summed counts with Fisher's exact test (one-sided for ``increase`` or
   ``decrease``): exact for any group sizes and sensitive to sparse error increases, where a rank
   test on per-interval rates sees mostly ties. Continuous series get a Mann-Whitney U test (exact
   for small untied samples) with the Hodges-Lehmann shift and its distribution-free confidence
   interval (the Kayenta method; ``ranktests.py``), applied to per-interval quantiles so a
   tail-only regression shows.
5. A significant change in the harmful direction is ``high`` or ``low`` unless its relative effect
   is within ``allowed_effect``. A continuous series too short to ever reach significance at its
   alpha is ``nodata``, never a silent pass.
6. Score = weighted share of passing metrics per group, groups weighted; ``pass_score`` and
   ``marginal_score`` give the verdict. Then the overrides: a failing ``critical`` metric, or an
   effect beyond ``critical_effect``, fails the verdict; ``nodata`` and ``error`` follow the
   metric's ``no_data`` policy (``fail``, ``marginal`` -- the default -- or ``ignore``; an error is
   never ignored). Nothing judged at all is ``marginal``, never a pass.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from statistics import NormalDist
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import stats  # type: ignore[import-untyped]

from clearance.core.ranktests import best_p_value, mann_whitney

__all__ = [
    "METHOD",
    "Classification",
    "Direction",
    "GroupScore",
    "GroupStats",
    "Kind",
    "MetricResult",
    "MetricSpec",
    "NoData",
    "Outcome",
    "Outliers",
    "Sample",
    "Series",
    "Thresholds",
    "Verdict",
    "judge",
    "series_from_samples",
]

#: Names the statistical method in the evidence, so a later change of method is visible.
METHOD = "clearance-judge/1 (fisher-exact on counts; mann-whitney-u + hodges-lehmann on series)"
OUTLIER_FACTOR = 3.0
MAX_PAIRS = 4_000_000  # pairwise differences a continuous comparison may hold in memory
_NORMAL = NormalDist()
Array = npt.NDArray[np.float64]


class Kind(StrEnum):
    RATE = "rate"
    CONTINUOUS = "continuous"


class Direction(StrEnum):
    """Which change is harmful: ``increase`` (errors, latency), ``decrease``, or ``either``."""

    INCREASE = "increase"
    DECREASE = "decrease"
    EITHER = "either"


class NoData(StrEnum):
    FAIL = "fail"
    MARGINAL = "marginal"
    IGNORE = "ignore"


class Outliers(StrEnum):
    REMOVE = "remove"
    KEEP = "keep"


class Classification(StrEnum):
    PASS = "pass"  # noqa: S105 (a verdict, not a password)
    HIGH = "high"
    LOW = "low"
    NODATA = "nodata"
    ERROR = "error"


class Outcome(StrEnum):
    PASS = "pass"  # noqa: S105 (a verdict, not a password)
    MARGINAL = "marginal"
    FAIL = "fail"


_RANK = {Outcome.PASS: 0, Outcome.MARGINAL: 1, Outcome.FAIL: 2}


@dataclass(frozen=True)
class MetricSpec:
    """One judged metric. Effects are relative (0.1 = 10% of the baseline)."""

    name: str
    kind: Kind
    direction: Direction = Direction.INCREASE
    critical: bool = False
    no_data: NoData = NoData.MARGINAL
    allowed_effect: float = 0.0
    critical_effect: float | None = None
    weight: float = 1.0
    group: str = "default"
    outliers: Outliers = Outliers.REMOVE

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("a metric needs a name")
        if not (math.isfinite(self.allowed_effect) and self.allowed_effect >= 0):
            raise ValueError(f"{self.name}: allowed_effect must be a number >= 0")
        if self.critical_effect is not None and not (
            math.isfinite(self.critical_effect) and self.critical_effect > self.allowed_effect
        ):
            raise ValueError(f"{self.name}: critical_effect must be larger than allowed_effect")
        if not (math.isfinite(self.weight) and self.weight > 0):
            raise ValueError(f"{self.name}: weight must be a number > 0")

    @property
    def must_have_data(self) -> bool:
        return self.no_data is NoData.FAIL


@dataclass(frozen=True)
class Thresholds:
    """Scores (0-100) for pass and marginal, and the false-positive budget of one verdict."""

    pass_score: float = 95.0
    marginal_score: float = 75.0
    alpha: float = 0.01

    def __post_init__(self) -> None:
        if not 0 <= self.marginal_score <= self.pass_score <= 100:
            raise ValueError("thresholds need 0 <= marginal <= pass <= 100")
        if not 0 < self.alpha < 0.5:
            raise ValueError("alpha must be between 0 and 0.5")

    def to_json(self) -> dict[str, float]:
        return {"pass": self.pass_score, "marginal": self.marginal_score, "alpha": self.alpha}


@dataclass(frozen=True)
class Sample:
    """One row of an exported sample file: a value, or counts, of one metric in one interval."""

    timestamp: str
    metric: str
    value: float | None = None
    numerator: int | None = None
    denominator: int | None = None


@dataclass(frozen=True)
class Series:
    """One metric in one group: values per interval, or counts per interval, or an error."""

    values: tuple[float, ...] = ()
    numerators: tuple[int, ...] = ()
    denominators: tuple[int, ...] = ()
    error: str | None = None


def series_from_samples(samples: Iterable[Sample]) -> dict[str, Series]:
    """Samples (in any order) grouped per metric, in order of first appearance."""
    values: dict[str, list[float]] = {}
    nums: dict[str, list[int]] = {}
    dens: dict[str, list[int]] = {}
    order: dict[str, None] = {}
    for s in samples:
        order.setdefault(s.metric)
        if s.value is not None:
            values.setdefault(s.metric, []).append(s.value)
        if s.numerator is not None and s.denominator is not None:
            nums.setdefault(s.metric, []).append(s.numerator)
            dens.setdefault(s.metric, []).append(s.denominator)
    return {
        m: Series(tuple(values.get(m, ())), tuple(nums.get(m, ())), tuple(dens.get(m, ())))
        for m in order
    }


@dataclass(frozen=True)
class GroupStats:
    """What one group contributed to a metric's test."""

    intervals: int = 0
    numerator: int | None = None
    denominator: int | None = None
    rate: float | None = None
    n: int | None = None
    removed: int | None = None
    median: float | None = None
    mean: float | None = None
    minimum: float | None = None
    maximum: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v is not None}


@dataclass(frozen=True)
class MetricResult:
    spec: MetricSpec
    classification: Classification
    reason: str
    baseline: GroupStats = GroupStats()
    canary: GroupStats = GroupStats()
    test: str | None = None
    alternative: str | None = None
    alpha: float | None = None
    p_value: float | None = None
    statistic: float | None = None
    effect: float | None = None  # relative to the baseline; None when the baseline is 0
    ci: tuple[float | None, float | None] | None = None  # relative, like ``effect``
    ci_confidence: float | None = None
    shift: float | None = None  # continuous: Hodges-Lehmann shift, in the metric's unit
    shift_ci: tuple[float | None, float | None] | None = None
    critical_effect_exceeded: bool = False

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def failed(self) -> bool:
        return self.classification in (Classification.HIGH, Classification.LOW)

    def to_json(self) -> dict[str, Any]:
        s = self.spec
        return {
            "name": s.name,
            "kind": s.kind.value,
            "direction": s.direction.value,
            "critical": s.critical,
            "no_data": s.no_data.value,
            "allowed_effect": s.allowed_effect,
            "critical_effect": s.critical_effect,
            "weight": s.weight,
            "group": s.group,
            "outliers": s.outliers.value,
            "classification": self.classification.value,
            "reason": self.reason,
            "test": self.test,
            "alternative": self.alternative,
            "alpha": self.alpha,
            "p_value": self.p_value,
            "statistic": self.statistic,
            "effect": self.effect,
            "ci": list(self.ci) if self.ci else None,
            "ci_confidence": self.ci_confidence,
            "shift": self.shift,
            "shift_ci": list(self.shift_ci) if self.shift_ci else None,
            "critical_effect_exceeded": self.critical_effect_exceeded,
            "baseline": self.baseline.to_json(),
            "canary": self.canary.to_json(),
        }


@dataclass(frozen=True)
class GroupScore:
    name: str
    weight: float
    score: float
    metrics: int


@dataclass(frozen=True)
class Verdict:
    verdict: Outcome
    score: float | None  # None when no metric had data to score
    metrics: tuple[MetricResult, ...]
    reasons: tuple[str, ...]
    thresholds: Thresholds = field(default_factory=Thresholds)
    alpha_per_metric: float | None = None
    groups: tuple[GroupScore, ...] = ()

    def metric(self, name: str) -> MetricResult:
        return next(m for m in self.metrics if m.name == name)

    def to_json(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict.value,
            "score": self.score,
            "reasons": list(self.reasons),
            "thresholds": self.thresholds.to_json(),
            "alpha_per_metric": self.alpha_per_metric,
            "groups": [g.__dict__ for g in self.groups],
            "metrics": [m.to_json() for m in self.metrics],
            "method": METHOD,
        }


# --- the judge --------------------------------------------------------------------------------


def judge(
    specs: Iterable[MetricSpec],
    thresholds: Thresholds,
    baseline: Mapping[str, Series],
    canary: Mapping[str, Series],
    *,
    group_weights: Mapping[str, float] | None = None,
) -> Verdict:
    """Judge the canary against the baseline (see the module docstring for the steps)."""
    specs = tuple(specs)
    if not specs:
        raise ValueError("the judge needs at least one metric")
    if len({s.name for s in specs}) != len(specs):
        raise ValueError("metric names must be unique")
    prepared = [
        _prepare(s, baseline.get(s.name, Series()), canary.get(s.name, Series())) for s in specs
    ]
    with_data = sum(1 for p in prepared if isinstance(p, _Data))
    alpha = thresholds.alpha / with_data if with_data else None
    results = tuple(
        p if isinstance(p, MetricResult) else _test(p, alpha or thresholds.alpha) for p in prepared
    )
    return _verdict(results, thresholds, alpha, group_weights or {})


@dataclass(frozen=True)
class _Data:
    spec: MetricSpec
    baseline: GroupStats
    canary: GroupStats
    b: Array = field(default_factory=lambda: np.empty(0))  # continuous, after outlier removal
    c: Array = field(default_factory=lambda: np.empty(0))


def _prepare(spec: MetricSpec, b: Series, c: Series) -> _Data | MetricResult:
    for group, s in (("baseline", b), ("canary", c)):
        if s.error is not None:
            return MetricResult(spec, Classification.ERROR, f"the {group} query failed: {s.error}")
    if spec.kind is Kind.RATE:
        return _prepare_rate(spec, b, c)
    return _prepare_continuous(spec, b, c)


def _prepare_rate(spec: MetricSpec, b: Series, c: Series) -> _Data | MetricResult:
    for group, s in (("baseline", b), ("canary", c)):
        if s.values and not s.denominators:
            return MetricResult(spec, Classification.ERROR, f"the {group} has values, not counts")
        if len(s.numerators) != len(s.denominators):
            return MetricResult(spec, Classification.ERROR, f"the {group} counts are unpaired")
        if any(d < 0 or not 0 <= n <= d for n, d in zip(s.numerators, s.denominators, strict=True)):
            return MetricResult(
                spec, Classification.ERROR, f"the {group} has counts outside 0 <= num <= den"
            )
    bs, cs = _rate_stats(b), _rate_stats(c)
    empty = [g for g, st in (("baseline", bs), ("canary", cs)) if not st.denominator]
    if empty:
        why = f"no requests in the {' and '.join(empty)} (denominator 0)"
        return MetricResult(spec, Classification.NODATA, why, bs, cs)
    return _Data(spec, bs, cs)


def _rate_stats(s: Series) -> GroupStats:
    num, den = sum(s.numerators), sum(s.denominators)
    return GroupStats(len(s.denominators), num, den, num / den if den else None)


def _prepare_continuous(spec: MetricSpec, b: Series, c: Series) -> _Data | MetricResult:
    arrays: list[Array] = []
    for group, s in (("baseline", b), ("canary", c)):
        if s.denominators and not s.values:
            return MetricResult(spec, Classification.ERROR, f"the {group} has counts, not values")
        a = np.asarray(s.values, dtype=np.float64)
        if not np.all(np.isfinite(a)):
            return MetricResult(spec, Classification.ERROR, f"the {group} has non-finite values")
        arrays.append(a)
    kept = _without_outliers(arrays) if spec.outliers is Outliers.REMOVE else arrays
    bs, cs = (_value_stats(a, k) for a, k in zip(arrays, kept, strict=True))
    empty = [g for g, k in zip(("baseline", "canary"), kept, strict=True) if k.size == 0]
    if empty:
        return MetricResult(
            spec, Classification.NODATA, f"no samples in the {' and '.join(empty)}", bs, cs
        )
    if kept[0].size * kept[1].size > MAX_PAIRS:
        return MetricResult(
            spec,
            Classification.ERROR,
            f"{kept[0].size} x {kept[1].size} intervals is too many: use coarser intervals",
            bs,
            cs,
        )
    return _Data(spec, bs, cs, kept[0], kept[1])


def _without_outliers(arrays: list[Array]) -> list[Array]:
    """Drop values beyond Tukey's far-out fences (3 IQR) of the *pooled* series, in each group.

    The fences ignore which group a value came from, so with no real change the labels of the
    values left are still a uniform random split and the exact test stays exact (fences per group
    would make the baseline's lost extremes look like a canary shift). Nothing is dropped when
    the pooled IQR is 0 or there are fewer than 8 values.
    """
    pooled = np.concatenate(arrays)
    if pooled.size < 8:
        return arrays
    q1, q3 = (float(q) for q in np.percentile(pooled, [25.0, 75.0]))
    iqr = q3 - q1
    if iqr <= 0:
        return arrays
    low, high = q1 - OUTLIER_FACTOR * iqr, q3 + OUTLIER_FACTOR * iqr
    return [a[(a >= low) & (a <= high)] for a in arrays]


def _value_stats(raw: Array, kept: Array) -> GroupStats:
    if kept.size == 0:
        return GroupStats(intervals=raw.size, n=0, removed=raw.size - kept.size)
    return GroupStats(
        intervals=raw.size,
        n=kept.size,
        removed=raw.size - kept.size,
        median=float(np.median(kept)),
        mean=float(np.mean(kept)),
        minimum=float(np.min(kept)),
        maximum=float(np.max(kept)),
    )


def _test(d: _Data, alpha: float) -> MetricResult:
    return _test_rate(d, alpha) if d.spec.kind is Kind.RATE else _test_continuous(d, alpha)


_ALTERNATIVE = {
    Direction.INCREASE: "greater",
    Direction.DECREASE: "less",
    Direction.EITHER: "two-sided",
}


def _sided(direction: Direction, greater: float, less: float) -> tuple[float, bool]:
    """The p-value for ``direction`` and whether the observed change is upwards."""
    if direction is Direction.INCREASE:
        return greater, True
    if direction is Direction.DECREASE:
        return less, False
    return min(1.0, 2 * min(greater, less)), greater <= less


def _test_rate(d: _Data, alpha: float) -> MetricResult:
    spec, bs, cs = d.spec, d.baseline, d.canary
    xb, nb, xc, nc = bs.numerator or 0, bs.denominator or 0, cs.numerator or 0, cs.denominator or 0
    total, events = nb + nc, xb + xc
    up_tail, down_tail = (
        spec.direction is not Direction.DECREASE,
        spec.direction is not Direction.INCREASE,
    )
    greater = min(1.0, float(stats.hypergeom.sf(xc - 1, total, events, nc))) if up_tail else 1.0
    less = min(1.0, float(stats.hypergeom.cdf(xc, total, events, nc))) if down_tail else 1.0
    p, up = _sided(spec.direction, greater, less)
    rb, rc = xb / nb, xc / nc
    effect = 0.0 if rb == rc == 0 else (rc / rb - 1 if rb > 0 else None)
    level = alpha if spec.direction is Direction.EITHER else 2 * alpha
    ci = _rate_ratio_ci(xb, nb, xc, nc, 1 - level)
    what = (
        f"canary {xc}/{nc} ({_pct(rc)}) vs baseline {xb}/{nb} ({_pct(rb)}), "
        f"effect {_rel(effect)}; Fisher exact p={p:.3g}"
    )
    return _classify(
        d,
        alpha,
        p,
        up,
        effect,
        what,
        test="fisher-exact",
        statistic=float(xc),
        ci=ci,
        ci_confidence=1 - level,
    )


def _rate_ratio_ci(
    xb: int, nb: int, xc: int, nc: int, confidence: float
) -> tuple[float | None, float | None] | None:
    """Katz log rate-ratio interval (0.5 added to each cell when a count is 0), as ratio - 1."""
    if xb == 0 or xc == 0:
        xb_, nb_, xc_, nc_ = xb + 0.5, nb + 1.0, xc + 0.5, nc + 1.0
    else:
        xb_, nb_, xc_, nc_ = float(xb), float(nb), float(xc), float(nc)
    if xb == xc == 0:
        return None
    log_rr = math.log((xc_ / nc_) / (xb_ / nb_))
    se = math.sqrt(max(0.0, 1 / xc_ - 1 / nc_ + 1 / xb_ - 1 / nb_))
    z = _NORMAL.inv_cdf(0.5 + confidence / 2)
    return (math.exp(log_rr - z * se) - 1, math.exp(log_rr + z * se) - 1)


def _test_continuous(d: _Data, alpha: float) -> MetricResult:
    spec, b, c = d.spec, d.b, d.c
    n, m = c.size, b.size
    two_sided = spec.direction is Direction.EITHER
    best = best_p_value(n, m, two_sided=two_sided)
    if best > alpha:
        why = (
            f"too few samples to judge: {m} baseline and {n} canary intervals cannot reach "
            f"p <= {alpha:.3g} (best possible p={best:.3g})"
        )
        return MetricResult(spec, Classification.NODATA, why, d.baseline, d.canary, alpha=alpha)
    per_side = alpha / 2 if two_sided else alpha
    mw = mann_whitney(c, b, per_side)
    p, up = _sided(spec.direction, mw.greater, mw.less)
    shift, shift_ci = mw.shift, mw.shift_ci
    base = abs(d.baseline.median or 0.0)
    effect = shift / base if base > 0 else (0.0 if shift == 0 else None)
    ci = tuple(x / base if (x is not None and base > 0) else None for x in shift_ci)
    what = (
        f"canary median {_num(d.canary.median)} vs baseline {_num(d.baseline.median)} "
        f"({n} vs {m} intervals), shift {_num(shift)} ({_rel(effect)}); Mann-Whitney p={p:.3g}"
    )
    return _classify(
        d,
        alpha,
        p,
        up,
        effect,
        what,
        test="mann-whitney-u",
        statistic=mw.u,
        ci=(ci[0], ci[1]),
        ci_confidence=1 - 2 * per_side,
        shift=shift,
        shift_ci=shift_ci,
    )


def _classify(
    d: _Data,
    alpha: float,
    p: float,
    up: bool,
    effect: float | None,
    what: str,
    **evidence: Any,
) -> MetricResult:
    spec = d.spec
    significant = p <= alpha
    harm = None if effect is None else (effect if up else -effect)
    big = harm is None or harm > spec.allowed_effect
    if significant and big:
        cls = Classification.HIGH if up else Classification.LOW
        critical = spec.critical_effect is not None and (
            harm is None or harm >= spec.critical_effect
        )
        word = "higher" if up else "lower"
        reason = f"{what} <= alpha {alpha:.3g}: significantly {word}"
        if critical:
            reason += f", beyond the critical effect {_rel(spec.critical_effect)}"
    else:
        cls, critical = Classification.PASS, False
        if significant:
            reason = f"{what}: significant, within the allowed effect {_rel(spec.allowed_effect)}"
        else:
            reason = f"{what} > alpha {alpha:.3g}"
    return MetricResult(
        spec,
        cls,
        reason,
        d.baseline,
        d.canary,
        alternative=_ALTERNATIVE[spec.direction],
        alpha=alpha,
        p_value=p,
        effect=effect,
        critical_effect_exceeded=critical,
        **evidence,
    )


# --- the verdict ------------------------------------------------------------------------------


def _verdict(
    results: tuple[MetricResult, ...],
    thresholds: Thresholds,
    alpha: float | None,
    group_weights: Mapping[str, float],
) -> Verdict:
    scored = [r for r in results if r.classification in _SCORED]
    groups: list[GroupScore] = []
    for name in dict.fromkeys(r.spec.group for r in scored):
        members = [r for r in scored if r.spec.group == name]
        total = sum(r.spec.weight for r in members)
        passed = sum(r.spec.weight for r in members if not r.failed)
        groups.append(
            GroupScore(name, group_weights.get(name, 1.0), 100 * passed / total, len(members))
        )
    reasons: list[str] = []
    score: float | None = None
    if groups:
        score = sum(g.weight * g.score for g in groups) / sum(g.weight for g in groups)
        if score >= thresholds.pass_score:
            outcome = Outcome.PASS
            reasons.append(f"score {score:.1f} >= pass threshold {thresholds.pass_score:g}")
        elif score >= thresholds.marginal_score:
            outcome = Outcome.MARGINAL
            reasons.append(
                f"score {score:.1f} is below the pass threshold {thresholds.pass_score:g}"
            )
        else:
            outcome = Outcome.FAIL
            reasons.append(
                f"score {score:.1f} is below the marginal threshold {thresholds.marginal_score:g}"
            )
    else:
        outcome = Outcome.MARGINAL
        reasons.append("no metric had data to judge: nothing may be called a pass")
    for r in results:
        floor, why = _override(r)
        if why:
            reasons.append(f"{r.name}: {why}")
        if _RANK[floor] > _RANK[outcome]:
            outcome = floor
    return Verdict(outcome, score, results, tuple(reasons), thresholds, alpha, tuple(groups))


_SCORED = (Classification.PASS, Classification.HIGH, Classification.LOW)


def _override(r: MetricResult) -> tuple[Outcome, str | None]:
    """The least verdict this metric allows, and the reason to print (None for a quiet pass)."""
    spec = r.spec
    if r.failed:
        if r.critical_effect_exceeded:
            return Outcome.FAIL, f"{r.classification.value} beyond critical effect: {r.reason}"
        if spec.critical:
            return Outcome.FAIL, f"critical metric is {r.classification.value}: {r.reason}"
        return Outcome.PASS, f"{r.classification.value}: {r.reason}"
    if r.classification in (Classification.NODATA, Classification.ERROR):
        policy = spec.no_data
        if r.classification is Classification.ERROR and policy is NoData.IGNORE:
            policy = NoData.MARGINAL
        word = r.classification.value
        if policy is NoData.IGNORE:
            return Outcome.PASS, f"{word} (ignored, no_data: ignore): {r.reason}"
        floor = Outcome.FAIL if policy is NoData.FAIL else Outcome.MARGINAL
        return floor, f"{word} -> {floor.value} (no_data: {spec.no_data.value}): {r.reason}"
    return Outcome.PASS, None


def _pct(x: float) -> str:
    return f"{100 * x:.3g}%"


def _rel(x: float | None) -> str:
    return "unbounded" if x is None else f"{100 * x:+.3g}%"


def _num(x: float | None) -> str:
    return "-" if x is None else f"{x:.4g}"
