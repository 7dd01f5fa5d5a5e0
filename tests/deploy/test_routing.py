"""The routing decision and the record buffer, in process (no agent)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import pytest

from clearance.deploy.local.records import RecordBuffer
from clearance.deploy.local.router import RouteTable, smooth_cycle


@dataclass
class FakeBackend:
    port: int
    version: str
    inflight: int = 0


BACKENDS = {
    "stable": FakeBackend(1, "1.0.0"),
    "baseline": FakeBackend(2, "1.0.0"),
    "canary": FakeBackend(3, "1.1.0"),
}


class TestSmoothCycle:
    def test_shares_are_exact_over_a_cycle(self) -> None:
        cycle = smooth_cycle({"stable": 90, "baseline": 5, "canary": 5})
        assert len(cycle) == 20  # weights divided by their gcd, 5
        assert Counter(cycle) == {"stable": 18, "baseline": 1, "canary": 1}

    def test_interleaved_not_in_runs(self) -> None:
        assert smooth_cycle({"stable": 75, "canary": 25}) == (
            "stable",
            "stable",
            "canary",
            "stable",
        )
        assert smooth_cycle({"stable": 50, "canary": 50}) == ("stable", "canary")

    def test_zero_weights_never_chosen(self) -> None:
        assert smooth_cycle({"stable": 100, "canary": 0}) == ("stable",)

    def test_deterministic(self) -> None:
        weights = {"canary": 7, "stable": 93}
        assert smooth_cycle(weights) == smooth_cycle(dict(reversed(weights.items())))


class TestRouteTable:
    def test_weights(self) -> None:
        table = RouteTable.build({"stable": 80, "canary": 20}, {}, BACKENDS)
        assert Counter(table.pick(None) for _ in range(500)) == {"stable": 400, "canary": 100}

    def test_tenant_pin_overrides_weights_ignoring_case(self) -> None:
        table = RouteTable.build({"stable": 100}, {"St-Mary": "canary"}, BACKENDS)
        assert {table.pick("st-mary") for _ in range(10)} == {"canary"}
        assert table.pick("ST-MARY") == "canary"
        assert table.pick("kings") == "stable"

    def test_each_table_is_its_own_cycle(self) -> None:
        first = RouteTable.build({"stable": 50, "canary": 50}, {}, BACKENDS)
        first.pick(None)
        second = RouteTable.build({"stable": 50, "canary": 50}, {}, BACKENDS)
        assert second.pick(None) == "stable"
        assert first.pick(None) == "canary"


class TestRecordBuffer:
    def test_window_and_slot_filter(self) -> None:
        buffer = RecordBuffer()
        for i in range(10):
            slot = "canary" if i % 2 else "stable"
            buffer.request(
                slot=slot,
                version="1",
                tenant=None,
                method="GET",
                path="/",
                status=200,
                ms=1.0,
                t=100.0 + i,
            )
        window = buffer.window(103, 106)
        assert [r["t"] for r in window.records] == [103, 104, 105, 106]
        assert [r["seq"] for r in buffer.window(103, 106, slot="canary").records] == [4, 6]
        assert window.dropped == 0

    def test_pushed_values_share_the_stream(self) -> None:
        buffer = RecordBuffer()
        buffer.pushed(slot="canary", version="1.4.3", kind="counter", name="hl7_nack", value=1)
        buffer.pushed(slot="canary", version="1.4.3", kind="gauge", name="backlog", value=12)
        records = buffer.window().records
        assert records[0] == {
            "seq": 1,
            "t": records[0]["t"],
            "slot": "canary",
            "version": "1.4.3",
            "counter": "hl7_nack",
            "value": 1.0,
        }
        assert records[1]["gauge"] == "backlog"
        with pytest.raises(ValueError, match="counter or gauge"):
            buffer.pushed(slot="canary", version="1", kind="histogram", name="x", value=1)

    def test_bounded_and_says_what_it_dropped(self) -> None:
        buffer = RecordBuffer(capacity=5)
        for i in range(8):
            buffer.request(
                slot="stable",
                version="1",
                tenant=None,
                method="GET",
                path="/",
                status=200,
                ms=1.0,
                t=float(i),
            )
        assert len(buffer) == 5
        assert buffer.window(0).dropped == 3  # the window began before what is kept
        assert buffer.window(4).dropped == 0
        assert [r["seq"] for r in buffer.window(0).records] == [4, 5, 6, 7, 8]


def test_public_names() -> None:
    import clearance.deploy.local as local

    assert local.__all__ == ["LocalDeployer"]
    assert all(hasattr(local, name) for name in local.__all__)
