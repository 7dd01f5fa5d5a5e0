"""The canary judge from values alone: tests, effects, no data, scores, overrides, evidence."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats  # type: ignore[import-untyped]

from clearance.core.judge import (
    Classification,
    Direction,
    Kind,
    MetricSpec,
    NoData,
    Outcome,
    Outliers,
    Sample,
    Series,
    Thresholds,
    Verdict,
    judge,
    series_from_samples,
)
from clearance.core.ranktests import u_critical, u_cumulative, u_tails

ERRORS = MetricSpec("order_errors", Kind.RATE)
P95 = MetricSpec("chart_save_p95", Kind.CONTINUOUS)
RNG_SEED = 20261102


def rate(errors: int, requests: int, intervals: int = 1) -> Series:
    """``errors`` out of ``requests`` spread evenly over ``intervals``."""
    nums = [errors // intervals + (1 if i < errors % intervals else 0) for i in range(intervals)]
    dens = [
        requests // intervals + (1 if i < requests % intervals else 0) for i in range(intervals)
    ]
    return Series(numerators=tuple(nums), denominators=tuple(dens))


def values(*xs: float) -> Series:
    return Series(values=tuple(xs))


def one(spec: MetricSpec, b: Series, c: Series, **kw: Any) -> Verdict:
    return judge([spec], Thresholds(**kw), {spec.name: b}, {spec.name: c})


def json_round_trip(verdict: Verdict) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(json.dumps(verdict.to_json(), allow_nan=False))
    return loaded


class TestMannWhitneyDistribution:
    def test_counts_are_the_binomial_coefficient(self) -> None:
        for n, m in [(1, 1), (3, 4), (10, 10), (7, 12)]:
            cum, total = u_cumulative(n, m)
            assert total == math.comb(n + m, n) and len(cum) == n * m + 1

    @settings(max_examples=40, deadline=None)
    @given(
        st.lists(st.floats(0, 1000, allow_nan=False), min_size=1, max_size=9, unique=True),
        st.lists(st.floats(0, 1000, allow_nan=False), min_size=1, max_size=9, unique=True),
    )
    def test_exact_p_values_match_scipy(self, c: list[float], b: list[float]) -> None:
        if set(b) & set(c):
            return
        u = float(sum(x > y for x in c for y in b))
        pooled = np.array(b + c)
        greater, less = u_tails(u, len(c), len(b), pooled, exact=True)
        for alternative, mine in (("greater", greater), ("less", less)):
            ref = stats.mannwhitneyu(c, b, alternative=alternative, method="exact").pvalue
            assert mine == pytest.approx(ref, abs=1e-12)

    def test_confidence_bound_agrees_with_the_test(self) -> None:
        rng = np.random.default_rng(RNG_SEED)
        for _ in range(200):
            n, m = (int(x) for x in rng.integers(3, 12, 2))
            c, b = rng.normal(0.8, 1, n), rng.normal(0, 1, m)
            diffs = np.sort(np.subtract.outer(c, b).ravel())
            pooled = np.concatenate([b, c])
            k = u_critical(n, m, 0.01, pooled, exact=True)
            greater, _ = u_tails(float(np.sum(diffs > 0)), n, m, pooled, exact=True)
            assert (k >= 0 and diffs[k] > 0) == (greater <= 0.01)


class TestRates:
    def test_doubled_errors_fail_with_the_statistics_as_evidence(self) -> None:
        v = one(ERRORS, rate(30, 3000, 10), rate(70, 3000, 10))
        m = v.metric("order_errors")
        assert v.verdict is Outcome.FAIL and m.classification is Classification.HIGH
        assert m.test == "fisher-exact" and m.p_value is not None and m.p_value < 1e-4
        assert m.effect == pytest.approx(70 / 30 - 1)
        assert m.ci is not None and m.ci[0] is not None and m.ci[0] > 0
        assert m.baseline.numerator == 30 and m.canary.denominator == 3000
        assert "70/3000" in m.reason and "Fisher exact" in m.reason

    def test_sparse_errors_are_seen(self) -> None:
        """0 errors against 8: per-interval rates are mostly tied zeros, the counts are not."""
        v = one(ERRORS, rate(0, 2000, 10), rate(8, 2000, 10))
        assert v.metric("order_errors").classification is Classification.HIGH
        assert v.metric("order_errors").effect is None  # from 0: unbounded
        assert json_round_trip(v)["metrics"][0]["effect"] is None

    def test_unequal_group_sizes(self) -> None:
        """5% of traffic on the canary at the baseline's rate passes; at twice the rate fails."""
        assert one(ERRORS, rate(95, 9500), rate(5, 500)).verdict is Outcome.PASS
        assert one(ERRORS, rate(95, 9500), rate(20, 500)).verdict is Outcome.FAIL

    def test_no_errors_at_all_is_data_and_passes(self) -> None:
        v = one(ERRORS, rate(0, 500), rate(0, 500))
        assert v.verdict is Outcome.PASS and v.metric("order_errors").effect == 0.0

    def test_direction_decrease_tests_the_lower_tail(self) -> None:
        logins = MetricSpec("login_success", Kind.RATE, direction=Direction.DECREASE)
        assert one(logins, rate(990, 1000), rate(950, 1000)).verdict is Outcome.FAIL
        assert one(logins, rate(950, 1000), rate(990, 1000)).verdict is Outcome.PASS
        assert one(ERRORS, rate(50, 1000), rate(10, 1000)).verdict is Outcome.PASS

    def test_counts_outside_bounds_are_an_error(self) -> None:
        bad = Series(numerators=(5,), denominators=(3,))
        assert one(ERRORS, rate(1, 10), bad).metric("order_errors").classification == "error"
        assert one(ERRORS, rate(1, 10), values(1.0)).metric("order_errors").classification == (
            Classification.ERROR
        )


class TestContinuous:
    BASE = (410.0, 402.0, 398.0, 415.0, 405.0, 399.0, 420.0, 401.0, 396.0, 408.0)

    def test_tail_regression_on_the_p95_series(self) -> None:
        canary = tuple(x * 1.3 for x in self.BASE)
        v = one(P95, values(*self.BASE), values(*canary))
        m = v.metric("chart_save_p95")
        assert m.classification is Classification.HIGH and m.test == "mann-whitney-u"
        assert m.p_value == pytest.approx(1 / math.comb(20, 10))
        assert m.effect == pytest.approx(0.3, abs=0.03)
        assert m.ci is not None and m.ci[0] is not None and m.ci[0] > 0
        assert m.shift_ci is not None and m.shift is not None
        assert m.shift_ci[0] is not None and m.shift_ci[0] <= m.shift

    def test_too_few_intervals_is_no_data_not_a_pass(self) -> None:
        v = one(P95, values(400, 410, 405), values(900, 950, 990))
        m = v.metric("chart_save_p95")
        assert m.classification is Classification.NODATA and "too few samples" in m.reason
        assert v.verdict is Outcome.MARGINAL

    def test_outliers_are_dropped_by_pooled_fences_and_recorded(self) -> None:
        glitch = (*self.BASE[:9], 40_000.0)
        v = one(P95, values(*glitch), values(*self.BASE))
        m = v.metric("chart_save_p95")
        assert m.baseline.removed == 1 and m.canary.removed == 0 and m.baseline.n == 9
        kept = MetricSpec("chart_save_p95", Kind.CONTINUOUS, outliers=Outliers.KEEP)
        assert (
            one(kept, values(*glitch), values(*self.BASE)).metric("chart_save_p95").baseline.removed
            == 0
        )

    def test_non_finite_values_are_an_error(self) -> None:
        v = one(P95, values(*self.BASE), values(math.nan, *self.BASE[1:]))
        assert v.metric("chart_save_p95").classification is Classification.ERROR

    def test_ties_use_the_normal_approximation(self) -> None:
        b = values(*([400.0] * 6 + [410.0] * 6))
        c = values(*([500.0] * 6 + [510.0] * 6))
        m = one(P95, b, c).metric("chart_save_p95")
        assert m.classification is Classification.HIGH and m.effect == pytest.approx(0.25, abs=0.01)

    @settings(max_examples=30, deadline=None)
    @given(st.floats(1e-3, 1e3), st.integers(0, 2**32 - 1))
    def test_relative_effects_are_scale_invariant(self, scale: float, seed: int) -> None:
        rng = np.random.default_rng(seed)
        b, c = rng.lognormal(5, 0.3, 12), rng.lognormal(5.1, 0.3, 12)
        m1 = one(P95, values(*b), values(*c)).metric("chart_save_p95")
        m2 = one(P95, values(*(b * scale)), values(*(c * scale))).metric("chart_save_p95")
        assert m1.classification == m2.classification
        assert m1.p_value == pytest.approx(m2.p_value)
        assert m1.effect == pytest.approx(m2.effect, rel=1e-6, abs=1e-9)


class TestEffectGates:
    def test_a_small_significant_change_within_allowed_effect_passes(self) -> None:
        spec = MetricSpec("order_errors", Kind.RATE, allowed_effect=0.5)
        m = one(spec, rate(1000, 100_000), rate(1200, 100_000)).metric("order_errors")
        assert m.p_value is not None and m.p_value < 0.001
        assert m.classification is Classification.PASS and "within the allowed" in m.reason

    def test_critical_effect_fails_the_verdict_whatever_the_score(self) -> None:
        spec = MetricSpec("order_errors", Kind.RATE, critical_effect=1.0)
        others = [MetricSpec(f"m{i}", Kind.RATE) for i in range(30)]
        base = {s.name: rate(10, 1000) for s in others} | {"order_errors": rate(30, 3000)}
        can = {s.name: rate(10, 1000) for s in others} | {"order_errors": rate(95, 3000)}
        v = judge([spec, *others], Thresholds(), base, can)
        assert v.score is not None and v.score > 95
        assert v.verdict is Outcome.FAIL and v.metric("order_errors").critical_effect_exceeded
        assert any("beyond critical effect" in r for r in v.reasons)

    def test_a_failing_critical_metric_fails_the_verdict(self) -> None:
        critical = MetricSpec("order_errors", Kind.RATE, critical=True)
        others = [MetricSpec(f"m{i}", Kind.RATE) for i in range(30)]
        base = {s.name: rate(10, 1000) for s in others} | {"order_errors": rate(30, 3000)}
        can = {s.name: rate(10, 1000) for s in others} | {"order_errors": rate(70, 3000)}
        assert judge([critical, *others], Thresholds(), base, can).verdict is Outcome.FAIL
        plain = MetricSpec("order_errors", Kind.RATE)
        assert judge([plain, *others], Thresholds(), base, can).verdict is Outcome.PASS


class TestNoData:
    def test_no_traffic_is_marginal_by_default_never_a_pass(self) -> None:
        v = one(ERRORS, rate(0, 0), rate(0, 0))
        assert v.verdict is Outcome.MARGINAL and v.score is None
        assert v.metric("order_errors").classification is Classification.NODATA
        assert any("no requests" in r for r in v.reasons)

    def test_a_missing_series_is_no_data(self) -> None:
        v = judge([ERRORS], Thresholds(), {}, {})
        assert v.metric("order_errors").classification is Classification.NODATA

    def test_must_have_data_fails_ignore_drops_the_metric(self) -> None:
        must = MetricSpec("order_errors", Kind.RATE, no_data=NoData.FAIL)
        assert must.must_have_data
        assert one(must, rate(3, 300), rate(0, 0)).verdict is Outcome.FAIL
        ignored = MetricSpec("order_errors", Kind.RATE, no_data=NoData.IGNORE)
        latency = {"p": values(*TestContinuous.BASE)}
        v = judge([ignored, MetricSpec("p", Kind.CONTINUOUS)], Thresholds(), latency, latency)
        assert v.verdict is Outcome.PASS and v.score == 100.0
        assert any("ignored" in r for r in v.reasons)

    def test_a_query_error_is_never_ignored(self) -> None:
        ignored = MetricSpec("order_errors", Kind.RATE, no_data=NoData.IGNORE)
        v = one(ignored, rate(3, 300), Series(error="prometheus: 503 Service Unavailable"))
        assert v.verdict is Outcome.MARGINAL
        assert "503" in v.metric("order_errors").reason
        must = MetricSpec("order_errors", Kind.RATE, no_data=NoData.FAIL)
        assert one(must, Series(error="timeout"), rate(1, 10)).verdict is Outcome.FAIL


class TestScore:
    def test_weighted_groups(self) -> None:
        specs = [
            MetricSpec("e1", Kind.RATE, group="errors"),
            MetricSpec("e2", Kind.RATE, group="errors"),
            MetricSpec("lat", Kind.RATE, group="latency"),
        ]
        same, worse = rate(10, 1000), rate(60, 1000)
        base = {"e1": same, "e2": same, "lat": same}
        can = {"e1": same, "e2": same, "lat": worse}
        v = judge(specs, Thresholds(), base, can, group_weights={"errors": 3, "latency": 1})
        assert v.score == pytest.approx(75.0) and v.verdict is Outcome.MARGINAL
        assert {g.name: g.score for g in v.groups} == {"errors": 100.0, "latency": 0.0}
        v = judge(specs, Thresholds(marginal_score=80), base, can, group_weights={"errors": 3})
        assert v.verdict is Outcome.FAIL

    def test_alpha_is_split_over_the_metrics_with_data(self) -> None:
        specs = [ERRORS, P95, MetricSpec("idle", Kind.RATE)]
        series = {"order_errors": rate(1, 100), "chart_save_p95": values(*TestContinuous.BASE)}
        v = judge(specs, Thresholds(alpha=0.01), series, series)
        assert v.alpha_per_metric == pytest.approx(0.005)


class TestEvidence:
    def test_json_has_every_statistic_and_is_strict_json(self) -> None:
        specs = [ERRORS, P95]
        base = {"order_errors": rate(30, 3000), "chart_save_p95": values(*TestContinuous.BASE)}
        can = {"order_errors": rate(31, 3000), "chart_save_p95": values(*TestContinuous.BASE)}
        doc = json_round_trip(judge(specs, Thresholds(), base, can))
        assert doc["verdict"] == "pass" and doc["score"] == 100.0
        assert doc["thresholds"] == {"pass": 95.0, "marginal": 75.0, "alpha": 0.01}
        assert doc["method"].startswith("clearance-judge/1")
        for metric in doc["metrics"]:
            for key in ("p_value", "alpha", "effect", "ci", "test", "statistic", "reason"):
                assert key in metric
            assert metric["baseline"]["intervals"] in (1, 10)

    def test_series_from_samples(self) -> None:
        samples = [
            Sample("t1", "errors", numerator=1, denominator=10),
            Sample("t1", "p95", value=400.0),
            Sample("t2", "errors", numerator=0, denominator=12),
        ]
        got = series_from_samples(samples)
        assert list(got) == ["errors", "p95"]
        assert got["errors"] == Series(numerators=(1, 0), denominators=(10, 12))
        assert got["p95"].values == (400.0,)

    def test_invalid_specs_and_thresholds(self) -> None:
        with pytest.raises(ValueError, match="critical_effect"):
            MetricSpec("x", Kind.RATE, allowed_effect=0.5, critical_effect=0.2)
        with pytest.raises(ValueError, match="marginal"):
            Thresholds(pass_score=70, marginal_score=80)
        with pytest.raises(ValueError, match="unique"):
            judge([ERRORS, ERRORS], Thresholds(), {}, {})


counts = st.integers(0, 400)


class TestProperties:
    @settings(max_examples=60, deadline=None)
    @given(counts, counts, st.integers(1, 400), st.integers(1, 400), st.integers(1, 20))
    def test_more_canary_errors_never_improve_the_verdict(
        self, xb: int, xc: int, extra_den: int, nb_extra: int, more: int
    ) -> None:
        nb, nc = xb + nb_extra, xc + extra_den + more
        rank = {Outcome.PASS: 0, Outcome.MARGINAL: 1, Outcome.FAIL: 2}
        before = one(ERRORS, rate(xb, nb), rate(xc, nc))
        after = one(ERRORS, rate(xb, nb), rate(xc + more, nc))
        assert rank[after.verdict] >= rank[before.verdict]
        m0, m1 = before.metric("order_errors"), after.metric("order_errors")
        assert m0.p_value is not None and m1.p_value is not None
        assert m1.p_value <= m0.p_value + 1e-12

    @settings(max_examples=60, deadline=None)
    @given(counts, counts, st.integers(0, 400), st.integers(0, 400))
    def test_either_is_symmetric_for_rates(self, xb: int, xc: int, gb: int, gc: int) -> None:
        spec = MetricSpec("r", Kind.RATE, direction=Direction.EITHER)
        ab = one(spec, rate(xb, xb + gb + 1), rate(xc, xc + gc + 1)).metric("r")
        ba = one(spec, rate(xc, xc + gc + 1), rate(xb, xb + gb + 1)).metric("r")
        assert ab.p_value == pytest.approx(ba.p_value)
        flip = {"high": "low", "low": "high", "pass": "pass"}
        assert ba.classification.value == flip[ab.classification.value]

    @settings(max_examples=40, deadline=None)
    @given(st.integers(0, 2**32 - 1), st.floats(-0.5, 0.5))
    def test_either_is_symmetric_for_series(self, seed: int, shift: float) -> None:
        spec = MetricSpec("s", Kind.CONTINUOUS, direction=Direction.EITHER)
        rng = np.random.default_rng(seed)
        b, c = rng.normal(0, 1, 10), rng.normal(shift * 4, 1, 10)
        ab = one(spec, values(*b), values(*c)).metric("s")
        ba = one(spec, values(*c), values(*b)).metric("s")
        assert ab.p_value == pytest.approx(ba.p_value)
        flip = {"high": "low", "low": "high", "pass": "pass"}
        assert ba.classification.value == flip[ab.classification.value]

    def test_a_and_a_rarely_fails(self) -> None:
        """300 A/A comparisons of three metrics at alpha 0.01: a handful of failures at most."""
        rng = np.random.default_rng(RNG_SEED)
        specs = [ERRORS, P95, MetricSpec("p99", Kind.CONTINUOUS)]
        flagged = 0
        for _ in range(300):
            groups = []
            for _group in range(2):
                n = rng.poisson(300, 10)
                groups.append(
                    {
                        "order_errors": Series(
                            numerators=tuple(int(x) for x in rng.binomial(n, 0.01)),
                            denominators=tuple(int(x) for x in n),
                        ),
                        "chart_save_p95": values(*rng.lognormal(6, 0.05, 10)),
                        "p99": values(*rng.lognormal(6.5, 0.1, 10)),
                    }
                )
            flagged += judge(specs, Thresholds(), groups[0], groups[1]).verdict != "pass"
        assert flagged <= 8  # expected at most 3; P(more than 8) is below 0.5%
