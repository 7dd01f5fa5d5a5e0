"""The Prometheus source against a real Prometheus server, and against small HTTP servers that
answer what a broken or misconfigured Prometheus would."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler

import pytest

from clearance.core.judge import Sample
from clearance.core.metrics import format_timestamp
from clearance.core.queries import PromQuery
from clearance.errors import InputError
from clearance.metrics import Collected, MetricSource, Target, Window
from clearance.metrics.prometheus import PrometheusSource

from .conftest import INTERVAL, INTERVALS, LATENCY_P95_MS, RunningPrometheus, free_port, serve

OLD = Target("orders", "baseline", "1.4.2", "sha256:" + "a" * 64)
NEW = Target("orders", "canary", "1.4.3", "sha256:" + "b" * 64)
REQUESTS = 'sum(increase(http_requests_total{version="$version"}[$interval]))'
FAILED = 'sum(increase(http_requests_total{version="$version",code=~"5.."}[$interval]))'
QUERIES = {
    "order_errors": PromQuery(numerator=f"{FAILED} or vector(0)", denominator=REQUESTS),
    "order_p95": PromQuery(query='max(order_latency_p95_ms{version="$version"})'),
    "by_code": PromQuery(query='increase(http_requests_total{version="$version"}[$interval])'),
    "broken": PromQuery(query="sum(rate(http_requests_total[$interval])"),
    "no_zero": PromQuery(numerator=FAILED, denominator=REQUESTS),
    "absent": PromQuery(query='max(no_such_metric{version="$version"})'),
    "absent_rate": PromQuery(numerator="vector(0)", denominator="sum(no_such_total)"),
    "nan": PromQuery(query='max(order_latency_p95_ms{version="$version"}) / 0 * 0'),
    "inf": PromQuery(query='max(order_latency_p95_ms{version="$version"}) / 0'),
    "rounded": PromQuery(numerator="vector(2.4)", denominator="vector(9.6)"),
    "too_many": PromQuery(numerator="vector(5)", denominator="vector(3)"),
    "negative": PromQuery(numerator="vector(-1)", denominator="vector(3)"),
}


def series(collected: Collected, metric: str) -> list[Sample]:
    return [s for s in collected.samples if s.metric == metric]


def stamps(window: Window) -> list[str]:
    return [format_timestamp(window.start + k * INTERVAL) for k in range(INTERVALS)]


@pytest.fixture(scope="module")
def collected(prometheus: RunningPrometheus) -> dict[str, Collected]:
    source: MetricSource = PrometheusSource(prometheus.url, QUERIES, timeout=5)
    return {
        target.version: source.collect(target, prometheus.window, tuple(QUERIES))
        for target in (OLD, NEW)
    }


class TestAgainstPrometheus:
    def test_a_rate_per_interval_per_version(
        self, prometheus: RunningPrometheus, collected: dict[str, Collected]
    ) -> None:
        old, new = (
            series(collected["1.4.2"], "order_errors"),
            series(collected["1.4.3"], "order_errors"),
        )
        assert [s.timestamp for s in old] == [s.timestamp for s in new] == stamps(prometheus.window)
        for s in old:  # 50 requests/s over 2 s, 10% of them 500s
            assert s.denominator is not None and 80 <= s.denominator <= 120
            assert s.numerator is not None and 5 <= s.numerator <= 15
        assert (
            0.07
            <= sum(s.numerator or 0 for s in old) / sum(s.denominator or 0 for s in old)
            <= 0.13
        )
        for s in new:  # 100 requests/s, no error series at all: "or vector(0)" makes it 0
            assert s.numerator == 0
            assert s.denominator is not None and 170 <= s.denominator <= 230

    def test_a_continuous_series_per_version(
        self, prometheus: RunningPrometheus, collected: dict[str, Collected]
    ) -> None:
        for version, ms in LATENCY_P95_MS.items():
            assert series(collected[version], "order_p95") == [
                Sample(t, "order_p95", value=ms) for t in stamps(prometheus.window)
            ]

    def test_samples_come_in_interval_order(self, collected: dict[str, Collected]) -> None:
        timestamps = [s.timestamp for s in collected["1.4.2"].samples]
        assert timestamps == sorted(timestamps)

    def test_several_series_are_an_error(self, collected: dict[str, Collected]) -> None:
        error = collected["1.4.2"].errors["by_code"]
        assert error.startswith(
            "query 'increase(http_requests_total{version=\"1.4.2\"}[2s])' returned 2 series ("
        )
        assert 'code="500"' in error
        assert error.endswith("it must give one, aggregate it (e.g. sum(...) or max(...))")

    def test_bad_promql_is_an_error_naming_query_and_reason(
        self, prometheus: RunningPrometheus, collected: dict[str, Collected]
    ) -> None:
        error = collected["1.4.2"].errors["broken"]
        assert error.startswith(
            "query 'sum(rate(http_requests_total[2s])' failed: Prometheus at "
            f"{prometheus.url} refused it (HTTP 400, bad_data): "
        )
        assert error.endswith("parse error: unclosed left parenthesis")

    def test_a_numerator_without_a_value_where_there_were_requests_is_an_error(
        self, collected: dict[str, Collected]
    ) -> None:
        error = collected["1.4.3"].errors["no_zero"]
        assert 'numerator query \'sum(increase(http_requests_total{version="1.4.3"' in error
        assert "has no value at" in error and "append 'or vector(0)'" in error
        assert "no_zero" not in collected["1.4.2"].errors  # 1.4.2 has 500s: values everywhere

    def test_no_series_and_non_finite_values_are_no_data(
        self, collected: dict[str, Collected]
    ) -> None:
        for metric in ("absent", "absent_rate", "nan", "inf"):
            assert series(collected["1.4.2"], metric) == []
            assert metric not in collected["1.4.2"].errors

    def test_counts_are_rounded_to_whole_events(
        self, prometheus: RunningPrometheus, collected: dict[str, Collected]
    ) -> None:
        assert series(collected["1.4.2"], "rounded") == [
            Sample(t, "rounded", numerator=2, denominator=10) for t in stamps(prometheus.window)
        ]

    def test_impossible_counts_are_errors(self, collected: dict[str, Collected]) -> None:
        errors = collected["1.4.2"].errors
        assert "numerator query 'vector(5)' counted 5 at" in errors["too_many"]
        assert "more than the 3 of denominator query 'vector(3)'" in errors["too_many"]
        assert "numerator query 'vector(-1)' gave -1 at" in errors["negative"]

    def test_every_declared_metric_is_accounted_for(self, collected: dict[str, Collected]) -> None:
        for got in collected.values():
            assert set(QUERIES) == {s.metric for s in got.samples} | set(got.errors) | {
                "absent",
                "absent_rate",
                "nan",
                "inf",
            }

    def test_a_window_shorter_than_an_interval_has_no_samples(
        self, prometheus: RunningPrometheus
    ) -> None:
        window = Window(prometheus.window.start, prometheus.window.start + 1, INTERVAL)
        source = PrometheusSource(prometheus.url, QUERIES, timeout=5)
        assert source.collect(OLD, window, ("order_errors", "order_p95")) == Collected()

    def test_a_base_url_with_a_trailing_slash_works(self, prometheus: RunningPrometheus) -> None:
        source = PrometheusSource(prometheus.url + "/", QUERIES, timeout=5)
        got = source.collect(OLD, prometheus.window, ("order_p95",))
        assert got.errors == {} and len(got.samples) == INTERVALS


class FakePrometheus(BaseHTTPRequestHandler):
    """Answers like a broken or misconfigured server, chosen by the URL's first path segment."""

    release = threading.Event()

    def do_GET(self) -> None:
        kind = self.path.split("/")[1]
        if kind == "hang":
            self.release.wait(10)
            return
        status, body = {
            "html": (200, "<html>Grafana</html>"),
            "gateway": (502, "Bad Gateway"),
            "execution": (
                422,
                json.dumps({"status": "error", "errorType": "execution", "error": "boom"}),
            ),
            "vector": (
                200,
                json.dumps({"status": "success", "data": {"resultType": "vector", "result": []}}),
            ),
            "points": (
                200,
                json.dumps(
                    {
                        "status": "success",
                        "data": {
                            "resultType": "matrix",
                            "result": [{"metric": {}, "values": [["soon", "1"]]}],
                        },
                    }
                ),
            ),
        }[kind]
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def fake() -> Iterator[str]:
    FakePrometheus.release.clear()
    with serve(FakePrometheus) as url:
        try:
            yield url
        finally:
            FakePrometheus.release.set()


WINDOW = Window(1_793_611_800.0, 1_793_611_830.0, 10.0)
TWO = {
    "order_errors": PromQuery(numerator="vector(0)", denominator="vector(1)"),
    "order_p95": PromQuery(query="vector(1)"),
}


class TestFailures:
    def test_an_unreachable_server_is_an_error_for_every_metric(self) -> None:
        url = f"http://127.0.0.1:{free_port()}"
        got = PrometheusSource(url, TWO, timeout=2).collect(OLD, WINDOW, tuple(TWO))
        assert got.samples == ()
        assert got.errors["order_errors"].startswith(
            f"denominator query 'vector(1)' failed: Prometheus at {url} is unreachable ("
        )
        assert got.errors["order_p95"].startswith(
            f"query 'vector(1)' was not run: Prometheus at {url} is unreachable ("
        )

    def test_a_server_that_does_not_answer_times_out_once(self, fake: str) -> None:
        started = time.monotonic()
        got = PrometheusSource(fake + "/hang", TWO, timeout=0.5).collect(OLD, WINDOW, tuple(TWO))
        assert time.monotonic() - started < 3
        assert got.errors == {
            "order_errors": "denominator query 'vector(1)' failed: Prometheus at "
            f"{fake}/hang did not answer within 0.5s",
            "order_p95": "query 'vector(1)' was not run: Prometheus at "
            f"{fake}/hang did not answer within 0.5s",
        }

    @pytest.mark.parametrize(
        ("kind", "reason"),
        [
            ("html", "answered HTTP 200 with something other than the Prometheus API's JSON: "
             "'<html>Grafana</html>' (is the URL the server's base URL?)"),
            ("gateway", "answered HTTP 502 with something other than the Prometheus API's JSON: "
             "'Bad Gateway'"),
            ("execution", "refused it (HTTP 422, execution): boom"),
            ("vector", "returned a 'vector' result, not a matrix"),
        ],
    )  # fmt: skip
    def test_answers_that_are_not_a_range_result_are_errors(
        self, fake: str, kind: str, reason: str
    ) -> None:
        got = PrometheusSource(f"{fake}/{kind}", TWO).collect(OLD, WINDOW, ("order_p95",))
        assert got.samples == ()
        assert got.errors["order_p95"].startswith(
            f"query 'vector(1)' failed: Prometheus at {fake}/{kind} {reason}"
        )

    def test_a_point_that_is_not_time_and_value_is_an_error(self, fake: str) -> None:
        got = PrometheusSource(f"{fake}/points", TWO).collect(OLD, WINDOW, ("order_p95",))
        assert got.errors["order_p95"] == (
            "query 'vector(1)': not a [time, value] point: ['soon', '1']"
        )

    def test_a_metric_without_a_query_is_an_error(self, fake: str) -> None:
        got = PrometheusSource(fake, TWO).collect(OLD, WINDOW, ("checkout_p99",))
        assert got.errors == {
            "checkout_p99": "no Prometheus query for metric 'checkout_p99': declare its "
            "'query', or its 'numerator' and 'denominator'"
        }

    def test_an_unusable_window_or_version_is_an_error_for_every_metric(self, fake: str) -> None:
        source = PrometheusSource(fake, TWO)
        got = source.collect(OLD, Window(WINDOW.start, WINDOW.end, 0), tuple(TWO))
        assert got.errors == dict.fromkeys(
            TWO, "cannot query Prometheus: the interval must be > 0 seconds, got 0"
        )
        odd = Target("orders", "canary", '1.4.3"} or up{x="', "sha256:b")
        assert "cannot be put into PromQL safely" in source.collect(odd, WINDOW, ("x",)).errors["x"]

    @pytest.mark.parametrize(
        ("url", "timeout", "message"),
        [
            ("prometheus:9090", 10.0, "is not a Prometheus URL"),
            ("ftp://prometheus", 10.0, "is not a Prometheus URL"),
            ("http://prometheus:9090", 0.0, "timeout must be > 0 seconds"),
        ],
    )
    def test_an_unusable_configuration_is_refused(
        self, url: str, timeout: float, message: str
    ) -> None:
        with pytest.raises(InputError, match=message):
            PrometheusSource(url, TWO, timeout=timeout)
