"""The builtin source over hand-made router records, fetched through a plain function."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from clearance.core.judge import Sample
from clearance.core.queries import BuiltinQuery
from clearance.metrics import Collected, MetricSource, Target, Window
from clearance.metrics.builtin import BuiltinSource

T0 = 1_793_611_800.0  # 2026-11-02T09:30:00Z
WINDOW = Window(T0, T0 + 20, 10)
CANARY = Target("orders", "canary", "1.4.3", "sha256:" + "b" * 64)
QUERIES = {
    "order_errors": BuiltinQuery(route="POST /orders", measure="errors"),
    "order_p95": BuiltinQuery(route="POST /orders", measure="p95"),
    "hl7_failures": BuiltinQuery(route="POST /hl7", counter="hl7_ack_failed"),
    "backlog": BuiltinQuery(gauge="queue_backlog"),
}


def request(t: float, status: int = 201, ms: float = 10.0, **kw: Any) -> dict[str, Any]:
    return {
        "seq": 1,
        "t": t,
        "slot": "canary",
        "version": "1.4.3",
        "tenant": None,
        "method": "POST",
        "path": "/orders",
        "status": status,
        "ms": ms,
    } | kw


RECORDS = [
    request(T0 + 1, status=500, ms=20.0),
    request(T0 + 2),
    request(T0 + 3, path="/hl7"),
    {"seq": 4, "t": T0 + 3.5, "slot": "canary", "version": "1.4.3", "counter": "hl7_ack_failed",
     "value": 1.0},
    {"seq": 5, "t": T0 + 4, "slot": "canary", "version": "1.4.3", "gauge": "queue_backlog",
     "value": 12.0},
    request(T0 + 12, ms=30.0),
    request(T0 + 13, slot="baseline", version="1.4.2", status=500),
    request(T0 + 14, version="1.4.2", status=500),  # the canary's previous version
]  # fmt: skip


@dataclass
class Router:
    """A stand-in for ``LocalDeployer.records``: returns what it holds, remembers each call."""

    records: list[dict[str, Any]] = field(default_factory=lambda: list(RECORDS))
    calls: list[tuple[str, float, float, str]] = field(default_factory=list)
    failure: Exception | None = None

    def __call__(self, service: str, since: float, until: float, slot: str) -> list[dict[str, Any]]:
        self.calls.append((service, since, until, slot))
        if self.failure is not None:
            raise self.failure
        return self.records


class TestBuiltinSource:
    def test_samples_of_the_target_slot_and_version(self) -> None:
        router = Router()
        source: MetricSource = BuiltinSource(router, QUERIES)
        got = source.collect(CANARY, WINDOW, tuple(QUERIES))
        assert router.calls == [("orders", WINDOW.start, WINDOW.end, "canary")]
        assert got == Collected(
            (
                Sample("2026-11-02T09:30:00Z", "order_errors", numerator=1, denominator=2),
                Sample("2026-11-02T09:30:00Z", "order_p95", value=19.5),
                Sample("2026-11-02T09:30:00Z", "hl7_failures", numerator=1, denominator=1),
                Sample("2026-11-02T09:30:00Z", "backlog", value=12.0),
                Sample("2026-11-02T09:30:10Z", "order_errors", numerator=0, denominator=1),
                Sample("2026-11-02T09:30:10Z", "order_p95", value=30.0),
            ),
            {},
        )

    def test_only_the_asked_metrics(self) -> None:
        got = BuiltinSource(Router(), QUERIES).collect(CANARY, WINDOW, ("backlog",))
        assert got == Collected((Sample("2026-11-02T09:30:00Z", "backlog", value=12.0),), {})

    def test_a_metric_without_a_query_is_an_error_and_the_others_still_come(self) -> None:
        got = BuiltinSource(Router(), QUERIES).collect(CANARY, WINDOW, ("checkout", "backlog"))
        assert got.errors == {
            "checkout": "no builtin query for metric 'checkout': declare how to measure it "
            "(e.g. {route: 'POST /orders', measure: errors})"
        }
        assert [s.metric for s in got.samples] == ["backlog"]

    def test_nothing_is_fetched_when_no_metric_has_a_query(self) -> None:
        router = Router()
        got = BuiltinSource(router, QUERIES).collect(CANARY, WINDOW, ("checkout",))
        assert router.calls == [] and set(got.errors) == {"checkout"}

    def test_a_fetch_that_raises_is_an_error_for_every_metric(self) -> None:
        router = Router(failure=TimeoutError("router did not answer in 5s"))
        got = BuiltinSource(router, QUERIES).collect(CANARY, WINDOW, ("order_errors", "backlog"))
        reason = (
            "could not read the router's records of service 'orders', slot 'canary': "
            "TimeoutError: router did not answer in 5s"
        )
        assert got == Collected((), {"order_errors": reason, "backlog": reason})

    def test_a_malformed_record_is_an_error_for_every_metric(self) -> None:
        router = Router(records=[*RECORDS, {**request(T0 + 5), "ms": "slow"}])
        got = BuiltinSource(router, QUERIES).collect(CANARY, WINDOW, ("order_errors", "backlog"))
        assert got.samples == ()
        assert got.errors["backlog"] == (
            "cannot aggregate the router's records of service 'orders', slot 'canary': the "
            "router returned a malformed record seq=1: 'ms' is not a finite number"
        )

    def test_a_counter_above_its_requests_fails_only_its_metric(self) -> None:
        extra = {**RECORDS[3], "value": 4.0}
        got = BuiltinSource(Router(records=[*RECORDS, extra]), QUERIES).collect(
            CANARY, WINDOW, ("hl7_failures", "order_errors")
        )
        assert got.errors["hl7_failures"].startswith(
            "counter 'hl7_ack_failed' counted more than the requests matching 'POST /hl7': 4 "
            "more at"
        )
        assert {s.metric for s in got.samples} == {"order_errors"}

    def test_an_unusable_window_is_an_error_not_an_exception(self) -> None:
        got = BuiltinSource(Router(), QUERIES).collect(
            CANARY, Window(T0, T0 + 20, 0), ("order_errors",)
        )
        assert got.errors == {
            "order_errors": "cannot aggregate the router's records of service 'orders', slot "
            "'canary': the interval must be > 0 seconds, got 0"
        }

    def test_no_traffic_is_no_data(self) -> None:
        got = BuiltinSource(Router(records=[]), QUERIES).collect(CANARY, WINDOW, tuple(QUERIES))
        assert got == Collected()
