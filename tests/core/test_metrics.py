"""Metric queries and the aggregation of router records into judge samples: shapes, examples,
properties over generated records, and the speed a 10-minute window at 200 req/s needs."""

from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from clearance.core.judge import Kind, Sample
from clearance.core.metrics import MAX_INTERVALS, aggregate, format_timestamp, interval_starts
from clearance.core.queries import BuiltinQuery, PromQuery, promql_duration, promql_values
from clearance.judge.samples import format_samples, parse_samples

T0 = 1_793_611_800.0  # 2026-11-02T09:30:00Z


@dataclass(frozen=True)
class Win:
    start: float
    end: float
    interval: float


def request(
    t: float,
    *,
    path: str = "/orders",
    method: str = "POST",
    status: int = 201,
    ms: float = 10.0,
    slot: str = "canary",
    version: str = "1.4.3",
    seq: int = 0,
) -> dict[str, Any]:
    return {
        "seq": seq,
        "t": t,
        "slot": slot,
        "version": version,
        "tenant": None,
        "method": method,
        "path": path,
        "status": status,
        "ms": ms,
    }


def pushed(
    kind: str, name: str, t: float, value: float, slot: str = "canary", version: str = "1.4.3"
) -> dict[str, Any]:
    return {"seq": 0, "t": t, "slot": slot, "version": version, kind: name, "value": value}


def by_metric(samples: list[Sample], metric: str) -> list[Sample]:
    return [s for s in samples if s.metric == metric]


class TestBuiltinQuery:
    @pytest.mark.parametrize(
        ("shape", "kind"),
        [
            ({"route": "POST /orders", "measure": "errors"}, Kind.RATE),
            ({"route": "/orders", "measure": "successes"}, Kind.RATE),
            ({"route": "PUT /charts/*", "measure": "p95"}, Kind.CONTINUOUS),
            ({"route": "*", "measure": "mean"}, Kind.CONTINUOUS),
            ({"route": "POST /hl7", "counter": "hl7_ack_failed"}, Kind.RATE),
            ({"gauge": "queue_backlog"}, Kind.CONTINUOUS),
        ],
    )
    def test_valid_shapes_and_their_kind(self, shape: dict[str, str], kind: Kind) -> None:
        assert BuiltinQuery.model_validate(shape).kind is kind

    def test_the_method_is_normalised(self) -> None:
        assert BuiltinQuery(route="  post   /orders ", measure="errors").route == "POST /orders"

    @pytest.mark.parametrize(
        ("shape", "message"),
        [
            ({}, "is {route, measure"),
            ({"route": "/orders"}, "is {route, measure"),
            ({"measure": "p95"}, "measure 'p95' needs 'route'"),
            ({"counter": "hl7_ack_failed"}, "needs 'route': the requests it is counted against"),
            ({"route": "/x", "counter": "c", "measure": "errors"}, "'counter' or 'measure'"),
            ({"gauge": "backlog", "route": "/x"}, "a gauge query has only 'gauge'; drop 'route'"),
            ({"route": "orders", "measure": "errors"}, "is not a route"),
            ({"route": "POST  ", "measure": "errors"}, "is not a route"),
            ({"route": "/orders?page=1", "measure": "errors"}, "without its query string"),
            ({"route": "/orders", "measure": "p42"}, "measure"),
            ({"gauge": "queue backlog"}, "is not a counter or gauge name"),
            ({"route": "/orders", "measure": "errors", "window": 5}, "Extra inputs"),
        ],
    )
    def test_invalid_shapes_are_refused_clearly(self, shape: dict[str, Any], message: str) -> None:
        with pytest.raises(ValidationError, match=message):
            BuiltinQuery.model_validate(shape)

    def test_it_is_frozen(self) -> None:
        query = BuiltinQuery(gauge="backlog")
        with pytest.raises(ValidationError, match="frozen"):
            query.gauge = "other"  # type: ignore[misc]


class TestPromQuery:
    def test_a_continuous_query_and_its_rendering(self) -> None:
        query = PromQuery(query='max(p95_ms{version="$version",slot="${slot}"})')
        values = promql_values(
            service="orders", slot="canary", version="1.4.3", digest="sha256:ab", interval=10
        )
        assert query.kind is Kind.CONTINUOUS
        assert query.render(values) == ('max(p95_ms{version="1.4.3",slot="canary"})',)

    def test_a_rate_renders_numerator_then_denominator(self) -> None:
        query = PromQuery(
            numerator='sum(increase(req{svc="$service",code=~"5..",d="$digest"}[$interval]))',
            denominator='sum(increase(req{svc="$service"}[$interval]))',
        )
        values = promql_values(
            service="orders", slot="canary", version="1.4.3", digest="sha256:ab", interval=1.5
        )
        assert query.kind is Kind.RATE
        assert query.render(values) == (
            'sum(increase(req{svc="orders",code=~"5..",d="sha256:ab"}[1500ms]))',
            'sum(increase(req{svc="orders"}[1500ms]))',
        )

    def test_a_doubled_dollar_is_a_literal_dollar(self) -> None:
        query = PromQuery(query='label_replace(up, "x", "$$1", "job", "(.*)")')
        values = promql_values(service="s", slot="c", version="1", digest="d", interval=10)
        assert query.render(values) == ('label_replace(up, "x", "$1", "job", "(.*)")',)

    @pytest.mark.parametrize(
        ("shape", "message"),
        [
            ({}, "needs 'query' \\(continuous\\) or 'numerator' and 'denominator'"),
            ({"numerator": "a"}, "add 'denominator'"),
            ({"denominator": "a"}, "add 'numerator'"),
            ({"query": "a", "numerator": "b", "denominator": "c"}, "not both"),
            ({"query": "  "}, "is empty"),
            ({"query": 'up{v="$versoin"}'}, "unknown placeholder \\$versoin: the placeholders"),
            ({"numerator": "a", "denominator": 'b{x="$tenant"}'}, "unknown placeholder \\$tenant"),
            ({"query": 'label_replace(up, "x", "$1", "j", "(.*)")'}, "write \\$\\$ for a literal"),
            ({"query": "up", "step": "5s"}, "Extra inputs"),
        ],
    )
    def test_invalid_queries_are_refused_clearly(self, shape: dict[str, Any], message: str) -> None:
        with pytest.raises(ValidationError, match=message):
            PromQuery.model_validate(shape)


class TestHelpers:
    @pytest.mark.parametrize(
        ("seconds", "text"), [(10, "10s"), (60, "60s"), (1.5, "1500ms"), (0.25, "250ms")]
    )
    def test_promql_durations(self, seconds: float, text: str) -> None:
        assert promql_duration(seconds) == text

    def test_a_zero_duration_is_refused(self) -> None:
        with pytest.raises(ValueError, match="not a positive duration"):
            promql_duration(0.0001)

    def test_values_that_would_break_a_promql_string_are_refused(self) -> None:
        with pytest.raises(ValueError, match="the version '1\"} or up' cannot be put into PromQL"):
            promql_values(service="s", slot="c", version='1"} or up', digest="d", interval=10)

    @pytest.mark.parametrize(
        ("seconds", "text"),
        [
            (T0, "2026-11-02T09:30:00Z"),
            (T0 + 0.5, "2026-11-02T09:30:00.500Z"),
            (T0 + 0.000250, "2026-11-02T09:30:00.000250Z"),
            (T0 + 10.000000000001, "2026-11-02T09:30:10Z"),
        ],
    )
    def test_timestamps_are_iso_utc_with_z(self, seconds: float, text: str) -> None:
        assert format_timestamp(seconds) == text

    def test_only_complete_intervals_count(self) -> None:
        assert interval_starts(Win(T0, T0 + 35, 10)) == (T0, T0 + 10, T0 + 20)
        assert interval_starts(Win(T0, T0 + 9.9, 10)) == ()
        assert len(interval_starts(Win(0.0, 1.0, 0.1))) == 10

    @pytest.mark.parametrize(
        ("window", "message"),
        [
            (Win(T0, T0 + 10, 0), "interval must be > 0"),
            (Win(T0, math.inf, 10), "not finite"),
            (Win(T0, T0 - 10, 1), "not a span of Unix seconds"),
            (Win(T0, T0 + 10 * (MAX_INTERVALS + 1), 10), "at most 11000: use a longer interval"),
        ],
    )
    def test_unusable_windows_are_refused(self, window: Win, message: str) -> None:
        with pytest.raises(ValueError, match=message):
            interval_starts(window)


class TestAggregate:
    WINDOW = Win(T0, T0 + 30, 10)

    def test_rates_per_interval_stamped_with_the_interval_start(self) -> None:
        records = [
            request(T0 + 1, status=201),
            request(T0 + 2, status=503),
            request(T0 + 3, status=404),
            request(T0 + 12, status=500),
            request(T0 + 29.999, status=200),
        ]
        queries = {
            "errors": BuiltinQuery(route="POST /orders", measure="errors"),
            "ok": BuiltinQuery(route="POST /orders", measure="successes"),
        }
        samples, errors = aggregate(records, queries, self.WINDOW, "canary")
        assert errors == {}
        assert samples == [
            Sample("2026-11-02T09:30:00Z", "errors", numerator=1, denominator=3),
            Sample("2026-11-02T09:30:00Z", "ok", numerator=1, denominator=3),
            Sample("2026-11-02T09:30:10Z", "errors", numerator=1, denominator=1),
            Sample("2026-11-02T09:30:10Z", "ok", numerator=0, denominator=1),
            Sample("2026-11-02T09:30:20Z", "errors", numerator=0, denominator=1),
            Sample("2026-11-02T09:30:20Z", "ok", numerator=1, denominator=1),
        ]
        assert all(type(s.numerator) is int and type(s.denominator) is int for s in samples)

    def test_intervals_are_half_open_and_partial_intervals_dropped(self) -> None:
        records = [request(T0 - 0.001), request(T0), request(T0 + 10), request(T0 + 30)]
        window = Win(T0, T0 + 35, 10)  # [T0+30, T0+35) is incomplete
        samples, _ = aggregate(
            records, {"e": BuiltinQuery(route="*", measure="errors")}, window, "canary"
        )
        assert [(s.timestamp, s.denominator) for s in samples] == [
            ("2026-11-02T09:30:00Z", 1),
            ("2026-11-02T09:30:10Z", 1),
        ]

    def test_an_interval_without_requests_has_no_row(self) -> None:
        samples, _ = aggregate(
            [request(T0 + 25, ms=40.0)],
            {
                "e": BuiltinQuery(route="*", measure="errors"),
                "p95": BuiltinQuery(route="*", measure="p95"),
            },
            self.WINDOW,
            "canary",
        )
        assert {s.timestamp for s in samples} == {"2026-11-02T09:30:20Z"}

    @pytest.mark.parametrize(
        ("route", "matched"),
        [
            ("POST /orders", {"/orders"}),
            ("/orders", {"/orders", "/orders?page=2"}),
            ("GET /orders", {"/orders?page=2"}),
            ("/charts/*", {"/charts/1", "/charts/1/history"}),
            ("PUT /charts/*", {"/charts/1/history"}),
            ("/charts/*/history", {"/charts/1/history"}),
            ("*", {"/orders", "/orders?page=2", "/charts/1", "/charts/1/history", "/c.x"}),
            ("/c.x", {"/c.x"}),
            ("/c?x", set()),
        ],
    )
    def test_routes_match_method_and_path_glob(self, route: str, matched: set[str]) -> None:
        records = [
            request(T0 + 1, method="POST", path="/orders"),
            request(T0 + 1, method="GET", path="/orders?page=2"),
            request(T0 + 1, method="GET", path="/charts/1"),
            request(T0 + 1, method="PUT", path="/charts/1/history"),
            request(T0 + 1, method="GET", path="/c.x"),
        ]
        if "?" in route:
            with pytest.raises(ValidationError):
                BuiltinQuery(route=route, measure="errors")
            return
        for r in records:
            r["status"] = 500 if r["path"] in matched else 200
        samples, _ = aggregate(
            records, {"m": BuiltinQuery(route=route, measure="errors")}, self.WINDOW, "canary"
        )
        if not matched:
            assert samples == []
        else:
            assert samples[0].numerator == samples[0].denominator == len(matched)

    def test_other_slots_and_with_version_other_versions_are_ignored(self) -> None:
        records = [
            request(T0 + 1, slot="canary", version="1.4.3"),
            request(T0 + 1, slot="baseline", version="1.4.2"),
            request(T0 + 1, slot="canary", version="1.4.2"),  # before a redeploy
        ]
        query = {"e": BuiltinQuery(route="*", measure="errors")}
        samples, _ = aggregate(records, query, self.WINDOW, "canary")
        assert samples[0].denominator == 2
        samples, _ = aggregate(records, query, self.WINDOW, "canary", version="1.4.3")
        assert samples[0].denominator == 1

    def test_latency_quantiles_and_mean_match_numpy(self) -> None:
        rng = random.Random(7)
        latencies = [rng.lognormvariate(3, 1) for _ in range(501)]
        records = [request(T0 + 1 + i / 100, ms=ms) for i, ms in enumerate(latencies)]
        records.append(request(T0 + 1, path="/other", ms=1e9))
        queries = {
            name: BuiltinQuery(route="/orders", measure=name)
            for name in ("p50", "p90", "p95", "p99", "mean")
        }
        samples, _ = aggregate(records, queries, self.WINDOW, "canary")
        got = {s.metric: s.value for s in samples}
        for name, q in (("p50", 50), ("p90", 90), ("p95", 95), ("p99", 99)):
            assert got[name] == pytest.approx(float(np.percentile(latencies, q)), rel=1e-12)
        assert got["mean"] == pytest.approx(float(np.mean(latencies)), rel=1e-12)

    def test_a_single_request_is_its_own_quantile(self) -> None:
        samples, _ = aggregate(
            [request(T0 + 1, ms=12.7)],
            {"p99": BuiltinQuery(route="*", measure="p99")},
            self.WINDOW,
            "canary",
        )
        assert samples == [Sample("2026-11-02T09:30:00Z", "p99", value=12.7)]

    def test_a_counter_over_its_matching_requests(self) -> None:
        records = [
            *(request(T0 + 1 + i, path="/hl7") for i in range(4)),
            request(T0 + 2, path="/orders"),
            pushed("counter", "hl7_ack_failed", T0 + 2, 1.0),
            pushed("counter", "hl7_ack_failed", T0 + 3, 1.0),
            pushed("counter", "hl7_ack_failed", T0 + 3, 1.0, slot="baseline"),
            pushed("counter", "other", T0 + 3, 1.0),
            request(T0 + 11, path="/hl7"),
        ]
        queries = {"acks": BuiltinQuery(route="POST /hl7", counter="hl7_ack_failed")}
        samples, errors = aggregate(records, queries, self.WINDOW, "canary")
        assert errors == {}
        assert samples == [
            Sample("2026-11-02T09:30:00Z", "acks", numerator=2, denominator=4),
            Sample("2026-11-02T09:30:10Z", "acks", numerator=0, denominator=1),
        ]

    def test_a_counter_above_its_requests_is_an_error_never_clamped(self) -> None:
        records = [
            request(T0 + 1, path="/hl7"),
            pushed("counter", "hl7_ack_failed", T0 + 1, 3.0),
            pushed("counter", "hl7_ack_failed", T0 + 15, 1.0),  # no request in that interval
            request(T0 + 1, path="/orders"),
        ]
        queries = {
            "acks": BuiltinQuery(route="/hl7", counter="hl7_ack_failed"),
            "errors": BuiltinQuery(route="*", measure="errors"),
        }
        samples, errors = aggregate(records, queries, self.WINDOW, "canary")
        assert errors == {
            "acks": "counter 'hl7_ack_failed' counted more than the requests matching '/hl7': 3 "
            "more at 2026-11-02T09:30:10Z than requests; push it at most once per matching "
            "request, in the same interval"
        }
        assert [s.metric for s in samples] == ["errors"]

    def test_a_push_just_before_its_request_is_recorded_counts_with_it(self) -> None:
        # The app pushes while handling; the router records the request once answered, which
        # can be in the next interval.
        records = [
            pushed("counter", "hl7_ack_failed", T0 + 9.99, 1.0),
            request(T0 + 10.01, path="/hl7"),
            request(T0 + 11, path="/hl7"),
        ]
        queries = {"acks": BuiltinQuery(route="/hl7", counter="hl7_ack_failed")}
        samples, errors = aggregate(records, queries, self.WINDOW, "canary")
        assert errors == {}
        assert [(s.timestamp, s.numerator, s.denominator) for s in samples] == [
            ("2026-11-02T09:30:10Z", 1, 2)
        ]

    def test_negative_counter_values_are_an_error(self) -> None:
        records = [request(T0 + 1), pushed("counter", "c", T0 + 1, -2.0)]
        _, errors = aggregate(
            records, {"c": BuiltinQuery(route="*", counter="c")}, self.WINDOW, "canary"
        )
        assert "pushed values must be >= 0" in errors["c"]

    def test_a_gauge_is_the_mean_of_its_pushes(self) -> None:
        records = [
            pushed("gauge", "queue_backlog", T0 + 1, 10.0),
            pushed("gauge", "queue_backlog", T0 + 2, 14.0),
            pushed("gauge", "queue_backlog", T0 + 21, 3.0),
            pushed("gauge", "queue_backlog", T0 + 21, 99.0, slot="baseline"),
        ]
        samples, _ = aggregate(
            records, {"backlog": BuiltinQuery(gauge="queue_backlog")}, self.WINDOW, "canary"
        )
        assert samples == [
            Sample("2026-11-02T09:30:00Z", "backlog", value=12.0),
            Sample("2026-11-02T09:30:20Z", "backlog", value=3.0),
        ]

    @pytest.mark.parametrize(
        ("record", "message"),
        [
            ({"seq": 9, "slot": "canary"}, "malformed record seq=9: no 't'"),
            ({**request(T0 + 1, seq=4), "t": "12"}, "seq=4: 't' is not a number"),
            ({**request(T0 + 1), "t": math.nan}, "'t' is not finite"),
            ({**request(T0 + 1), "ms": None}, "'ms' is not a finite number"),
            ({**request(T0 + 1), "status": "500"}, "'status' must be"),
            ({k: v for k, v in request(T0 + 1).items() if k != "path"}, "no 'path'"),
            ({**pushed("gauge", "g", T0 + 1, 1.0), "value": math.inf}, "'value' is not a finite"),
            (["not", "a", "record"], "malformed record: 'list' object has no"),
        ],
    )
    def test_malformed_records_raise(self, record: Any, message: str) -> None:
        queries = {"e": BuiltinQuery(route="*", measure="errors"), "g": BuiltinQuery(gauge="g")}
        with pytest.raises(ValueError, match=message.replace("(", "\\(")):
            aggregate([request(T0 + 2), record], queries, self.WINDOW, "canary")

    def test_unknown_record_kinds_and_unqueried_pushes_are_ignored(self) -> None:
        records = [
            request(T0 + 1),
            {"seq": 1, "t": T0 + 1, "slot": "canary", "version": "1.4.3", "event": "restart"},
            {**pushed("gauge", "unqueried", T0 + 1, 0.0), "value": "junk"},
        ]
        samples, _ = aggregate(
            records, {"e": BuiltinQuery(route="*", measure="errors")}, self.WINDOW, "canary"
        )
        assert len(samples) == 1

    def test_samples_are_a_valid_sample_file(self) -> None:
        records = [request(T0 + i, status=500 if i % 7 == 0 else 200, ms=i) for i in range(30)]
        queries = {
            "errors": BuiltinQuery(route="*", measure="errors"),
            "p95": BuiltinQuery(route="*", measure="p95"),
        }
        samples, _ = aggregate(records, queries, Win(T0 + 0.25, T0 + 30, 2.5), "canary")
        parsed = parse_samples(format_samples(samples), "samples.csv")
        assert parsed.samples == tuple(samples)
        assert samples[0].timestamp == "2026-11-02T09:30:00.250Z"

    def test_an_unusable_window_raises(self) -> None:
        with pytest.raises(ValueError, match="interval must be > 0"):
            aggregate([], {}, Win(T0, T0 + 10, -1), "canary")

    def test_ten_minutes_at_200_requests_a_second_in_well_under_a_second(self) -> None:
        rng = np.random.default_rng(20261102)
        n = 120_000
        times = T0 + np.sort(rng.uniform(0, 600, n))
        paths = rng.choice(["/orders", "/orders/17?x=1", "/charts/3", "/healthz"], n)
        methods = rng.choice(["GET", "POST", "PUT"], n)
        statuses = rng.choice([200, 201, 404, 500, 503], n)
        latencies = rng.lognormal(3, 0.5, n)
        records = [
            request(float(t), path=str(p), method=str(m), status=int(s), ms=float(ms), seq=i)
            for i, (t, p, m, s, ms) in enumerate(
                zip(times, paths, methods, statuses, latencies, strict=True)
            )
        ]
        records += [pushed("counter", "failed", float(t), 1.0) for t in times[::50]]
        queries = {
            "errors": BuiltinQuery(route="POST /orders", measure="errors"),
            "ok": BuiltinQuery(route="*", measure="successes"),
            "p50": BuiltinQuery(route="/orders*", measure="p50"),
            "p95": BuiltinQuery(route="/orders*", measure="p95"),
            "mean": BuiltinQuery(route="/charts/*", measure="mean"),
            "failed": BuiltinQuery(route="*", counter="failed"),
        }
        started = time.perf_counter()
        samples, errors = aggregate(records, queries, Win(T0, T0 + 600, 10), "canary")
        elapsed = time.perf_counter() - started
        assert errors == {}
        assert len(samples) == 60 * 6
        assert elapsed < 0.5, f"aggregate took {elapsed:.3f}s"


# --- properties ---------------------------------------------------------------------------------

INTERVALS = st.sampled_from([1.0, 2.5, 10.0, 0.1])
ROUTES = ["*", "POST /orders", "/orders", "/charts/*"]
REQUEST_PATHS = ["/orders", "/orders?x=1", "/charts/1", "/healthz"]


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[Win, list[dict[str, Any]]]:
    interval = draw(INTERVALS)
    count = draw(st.integers(0, 6))
    extra = draw(st.sampled_from([0.0, interval / 2]))
    window = Win(T0, T0 + count * interval + extra, interval)
    at = st.one_of(
        st.floats(T0 - interval, T0 + (count + 1) * interval),
        st.integers(-1, count + 1).map(lambda k: T0 + k * interval),
    )
    records = draw(
        st.lists(
            st.builds(
                request,
                at,
                path=st.sampled_from(REQUEST_PATHS),
                method=st.sampled_from(["GET", "POST"]),
                status=st.sampled_from([200, 201, 302, 404, 500, 503]),
                ms=st.floats(0, 5000),
                slot=st.sampled_from(["canary", "baseline"]),
            ),
            max_size=60,
        )
    )
    return window, records


def expected_groups(
    records: list[dict[str, Any]], window: Win, route: str
) -> dict[str, list[dict[str, Any]]]:
    """By brute force: the canary requests matching ``route`` in each complete interval."""
    from fnmatch import fnmatchcase

    method, _, glob = route.rpartition(" ")
    groups: dict[str, list[dict[str, Any]]] = {}
    for k, start in enumerate(interval_starts(window)):
        end = window.start + (k + 1) * window.interval
        for r in records:
            path = r["path"].split("?")[0]
            if (
                r["slot"] == "canary"
                and start <= r["t"] < end
                and (not method or r["method"] == method)
                and fnmatchcase(path, glob)
            ):
                groups.setdefault(format_timestamp(start), []).append(r)
    return groups


PROPERTY = settings(max_examples=200, deadline=None)


class TestProperties:
    @PROPERTY
    @given(scenarios(), st.sampled_from(ROUTES))
    def test_counts_add_up_to_the_requests_in_each_interval(
        self, scenario: tuple[Win, list[dict[str, Any]]], route: str
    ) -> None:
        window, records = scenario
        queries = {
            "errors": BuiltinQuery(route=route, measure="errors"),
            "ok": BuiltinQuery(route=route, measure="successes"),
        }
        samples, errors = aggregate(records, queries, window, "canary")
        assert errors == {}
        groups = expected_groups(records, window, route)
        for metric, low, high in (("errors", 500, 600), ("ok", 0, 400)):
            got = {s.timestamp: (s.numerator, s.denominator) for s in by_metric(samples, metric)}
            assert got == {
                t: (sum(1 for r in rs if low <= r["status"] < high), len(rs))
                for t, rs in groups.items()
            }
        for s in samples:
            assert s.numerator is not None and s.denominator is not None
            assert 0 <= s.numerator <= s.denominator and s.denominator > 0
        assert sum(s.denominator or 0 for s in by_metric(samples, "errors")) == sum(
            len(rs) for rs in groups.values()
        )

    @PROPERTY
    @given(scenarios(), st.sampled_from(ROUTES), st.sampled_from(["p50", "p90", "p99", "mean"]))
    def test_latencies_lie_within_the_interval_and_match_numpy(
        self, scenario: tuple[Win, list[dict[str, Any]]], route: str, measure: Any
    ) -> None:
        window, records = scenario
        samples, _ = aggregate(
            records, {"m": BuiltinQuery(route=route, measure=measure)}, window, "canary"
        )
        groups = expected_groups(records, window, route)
        assert {s.timestamp for s in samples} == set(groups)
        for s in samples:
            ms = [r["ms"] for r in groups[s.timestamp]]
            assert s.value is not None and min(ms) <= s.value <= max(ms)
            want = np.mean(ms) if measure == "mean" else np.percentile(ms, int(measure[1:]))
            assert s.value == pytest.approx(float(want), rel=1e-9, abs=1e-9)

    @PROPERTY
    @given(scenarios(), st.randoms(use_true_random=False))
    def test_record_order_does_not_matter(
        self, scenario: tuple[Win, list[dict[str, Any]]], rng: random.Random
    ) -> None:
        window, records = scenario
        queries = {
            "errors": BuiltinQuery(route="/orders", measure="errors"),
            "p95": BuiltinQuery(route="*", measure="p95"),
        }
        shuffled = list(records)
        rng.shuffle(shuffled)
        assert aggregate(records, queries, window, "canary") == aggregate(
            shuffled, queries, window, "canary"
        )

    @PROPERTY
    @given(
        st.lists(st.tuples(st.floats(T0, T0 + 40), st.integers(0, 3)), max_size=40),
        st.lists(st.floats(T0, T0 + 40), max_size=40),
    )
    def test_counters_never_exceed_their_requests_in_the_samples(
        self, pushes: list[tuple[float, int]], requests: list[float]
    ) -> None:
        records = [request(t) for t in requests]
        records += [pushed("counter", "c", t, float(v)) for t, v in pushes]
        samples, errors = aggregate(
            records, {"c": BuiltinQuery(route="*", counter="c")}, Win(T0, T0 + 40, 10), "canary"
        )
        if errors:
            assert samples == [] and "counted more than the requests" in errors["c"]
        for s in samples:
            assert s.numerator is not None and s.denominator is not None
            assert 0 <= s.numerator <= s.denominator
