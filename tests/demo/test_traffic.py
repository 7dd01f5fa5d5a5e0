"""The synthetic traffic generator: its seeded plan, and real runs over loopback.

Real runs go against the built clinic as a real process (good and faulty builds side by side)
and against a small loopback server playing the router: it pins one tenant to the canary slot,
reports the slot in ``X-Clearance-Slot`` and answers chart saves slowly.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from itertools import islice
from typing import Any

import pytest

from clearance.demo.builds import build_clinic
from clearance.demo.traffic import MIX, NO_SLOT, SLOT_HEADER, Kind, Request, Stats, Traffic, plan
from clearance.deploy import TENANT_HEADER
from tests.demo.test_clinic import PushServer, free_port, running

TENANTS = ("st-marys", "riverside", "northgate")
#: Seed 6's first 100 requests hold 4 decimal-dose orders (of 44) and one malformed HL7 message.
SEED = 6


def prefix(seed: int, tenants: tuple[str, ...], count: int) -> list[Request]:
    return list(islice(plan(seed, tenants), count))


class TestPlan:
    def test_the_same_seed_gives_the_same_requests(self) -> None:
        assert prefix(7, TENANTS, 500) == prefix(7, TENANTS, 500)
        assert prefix(7, TENANTS, 500) != prefix(8, TENANTS, 500)

    def test_the_mix_is_the_declared_one(self) -> None:
        requests = prefix(11, TENANTS, 20_000)
        kinds = Counter(r.kind for r in requests)
        for kind, share in MIX.items():
            assert kinds[kind] / len(requests) == pytest.approx(share, abs=0.01), kind
        orders = [r for r in requests if r.kind is Kind.ORDER]
        decimal = sum(r.variant == "decimal-dose" for r in orders) / len(orders)
        assert decimal == pytest.approx(0.07, abs=0.01)
        hl7 = [r for r in requests if r.kind is Kind.HL7]
        assert sum(r.variant == "malformed" for r in hl7) / len(hl7) == pytest.approx(
            0.03, abs=0.01
        )
        tenants = Counter(r.tenant for r in requests)
        assert set(tenants) == set(TENANTS)
        assert min(tenants.values()) / max(tenants.values()) > 0.9

    def test_requests_are_well_formed(self) -> None:
        for request in prefix(5, TENANTS, 300):
            if request.kind is Kind.HL7:
                assert request.content_type == "text/plain" and b"\n" not in request.body
            elif request.method != "GET":
                assert isinstance(json.loads(request.body), dict)

    def test_refuses_what_it_cannot_run(self) -> None:
        with pytest.raises(ValueError, match="at least one tenant"):
            next(plan(7, []))
        with pytest.raises(ValueError, match="http"):
            Traffic("127.0.0.1:80", rate=1, tenants=TENANTS)
        with pytest.raises(ValueError, match="rate"):
            Traffic("http://127.0.0.1:80", rate=0, tenants=TENANTS)
        with pytest.raises(ValueError, match="at least one tenant"):
            Traffic("http://127.0.0.1:80", rate=1, tenants=())


@dataclass(frozen=True)
class Runs:
    good: Stats
    faulty: Stats
    pushed: list[dict[str, Any]]


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runs]:
    """Both builds under the same traffic, side by side: 50 requests a second for 2 s each."""
    tmp = tmp_path_factory.mktemp("traffic")
    good_path = build_clinic("1.4.2", faulty=False, dest_dir=tmp)
    faulty_path = build_clinic("1.5.0", faulty=True, dest_dir=tmp)
    with PushServer() as push:
        env = {"CLEARANCE_PUSH_URL": push.url, "CLEARANCE_SERVICE": "clinic", "CLINIC_SEED": "1"}
        with (
            running(good_path, tmp / "good.log", {**env, "CLEARANCE_SLOT": "stable"}) as good,
            running(faulty_path, tmp / "faulty.log", {**env, "CLEARANCE_SLOT": "canary"}) as bad,
        ):
            on_good = Traffic(good.url, rate=50, tenants=TENANTS, seed=SEED)
            on_faulty = Traffic(bad.url, rate=50, tenants=TENANTS, seed=SEED)
            with on_good, on_faulty:
                time.sleep(2.0)
        yield Runs(on_good.stats(), on_faulty.stats(), list(push.received))


def order_error_rate(stats: Stats) -> float:
    orders = stats["by_kind"][Kind.ORDER]
    return orders["5xx"] / orders["requests"]


class TestAgainstTheClinic:
    def test_keeps_the_rate(self, runs: Runs) -> None:
        for stats in (runs.good, runs.faulty):
            assert 90 <= stats["sent"] <= 102
            assert stats["rate"] == pytest.approx(50, rel=0.1)
            assert stats["totals"]["requests"] == stats["sent"]
            assert stats["totals"]["connection_errors"] == stats["dropped"] == 0

    def test_sends_the_planned_mix_to_the_planned_tenants(self, runs: Runs) -> None:
        sent = prefix(SEED, TENANTS, runs.good["sent"])
        kinds = {kind: counts["requests"] for kind, counts in runs.good["by_kind"].items()}
        assert kinds == Counter(str(r.kind) for r in sent)
        tenants = {tenant: counts["requests"] for tenant, counts in runs.good["by_tenant"].items()}
        assert tenants == Counter(r.tenant for r in sent)
        assert set(runs.good["by_slot"]) == {NO_SLOT}  # no router, no slot header

    def test_the_faulty_build_fails_clearly_more_orders(self, runs: Runs) -> None:
        sent = prefix(SEED, TENANTS, runs.faulty["sent"])
        decimal = sum(r.variant == "decimal-dose" for r in sent)
        assert decimal >= 3
        assert runs.faulty["by_kind"][Kind.ORDER]["5xx"] >= decimal
        assert runs.good["by_kind"][Kind.ORDER]["5xx"] <= 2  # formulary timeouts only
        assert order_error_rate(runs.faulty) >= 0.05
        assert order_error_rate(runs.faulty) > order_error_rate(runs.good) + 0.04
        assert runs.good["by_kind"][Kind.CHART]["5xx"] == runs.faulty["by_kind"][Kind.CHART]["5xx"]

    def test_every_malformed_hl7_message_pushes_a_counter(self, runs: Runs) -> None:
        malformed = {
            name: sum(r.variant == "malformed" for r in prefix(SEED, TENANTS, stats["sent"]))
            for name, stats in (("stable", runs.good), ("canary", runs.faulty))
        }
        assert malformed["stable"] >= 1
        pushed = Counter(p["slot"] for p in runs.pushed if p["counter"] == "hl7_ack_failed")
        assert dict(pushed) == malformed


class Router:
    """A loopback server playing the router: tenant ``st-marys`` is pinned to ``canary``, where
    orders fail (500); chart saves take 0.3 s everywhere. It records what it receives."""

    def __init__(self) -> None:
        seen: list[tuple[str, str, str]] = []
        lock = threading.Lock()
        self.seen = seen

        class Handler(BaseHTTPRequestHandler):
            def answer(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                tenant = self.headers.get(TENANT_HEADER, "")
                with lock:
                    seen.append((self.command, self.path, tenant))
                slot = "canary" if tenant == "st-marys" else "stable"
                if self.path.startswith("/charts/"):
                    time.sleep(0.3)
                failed = slot == "canary" and self.path == "/orders"
                self.send_response(500 if failed else 200)
                self.send_header(SLOT_HEADER, slot)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_GET = do_POST = do_PUT = answer

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}"

    def __enter__(self) -> Router:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


class TestThroughARouter:
    def test_counts_by_slot_and_keeps_the_rate_when_answers_are_slow(self) -> None:
        tenants = ("st-marys", "riverside")
        with Router() as router, Traffic(router.url, rate=40, tenants=tenants, seed=3) as traffic:
            time.sleep(1.5)
        stats = traffic.stats()
        assert 55 <= stats["sent"] <= 62  # 21 slow chart saves did not slow the others
        assert stats["dropped"] == 0
        assert stats["totals"]["requests"] == stats["sent"]  # stop() waited for them
        sent = prefix(3, tenants, stats["sent"])
        canary = [r for r in sent if r.tenant == "st-marys"]
        assert stats["by_slot"]["canary"]["requests"] == len(canary)
        assert stats["by_slot"]["stable"]["requests"] == len(sent) - len(canary)
        canary_orders = sum(r.kind is Kind.ORDER for r in canary)
        assert traffic.counts(slot="canary", kind=Kind.ORDER)["5xx"] == canary_orders
        assert stats["by_slot"]["canary"]["5xx"] == canary_orders
        assert stats["by_slot"]["stable"]["5xx"] == 0
        assert (stats["by_kind"][Kind.CHART]["p50_ms"] or 0) >= 300
        assert Counter(router.seen) == Counter((r.method, r.path, r.tenant) for r in sent)

    def test_beyond_max_in_flight_requests_are_dropped_not_delayed(self) -> None:
        with (
            Router() as router,
            Traffic(router.url, rate=40, tenants=TENANTS, seed=3, max_in_flight=1) as traffic,
        ):
            time.sleep(0.5)
        stats = traffic.stats()
        assert stats["dropped"] > 0
        assert 18 <= stats["sent"] + stats["dropped"] <= 22
        assert stats["totals"]["requests"] == stats["sent"]

    def test_connection_failures_are_counted_not_raised(self) -> None:
        url = f"http://127.0.0.1:{free_port()}"  # nobody listens
        with Traffic(url, rate=20, tenants=TENANTS) as traffic:
            time.sleep(0.5)
        stats = traffic.stats()
        assert stats["sent"] >= 8
        assert stats["totals"]["connection_errors"] == stats["totals"]["requests"] == stats["sent"]
        assert set(stats["by_slot"]) == {NO_SLOT}

    def test_starts_once_and_stops_idempotently(self) -> None:
        traffic = Traffic(f"http://127.0.0.1:{free_port()}", rate=5, tenants=TENANTS)
        assert traffic.stats()["sent"] == 0 and traffic.stats()["rate"] == 0.0
        traffic.stop()  # not started: nothing to do
        traffic.start()
        with pytest.raises(RuntimeError, match="already started"):
            traffic.start()
        traffic.stop()
        traffic.stop()
        stats = traffic.stats()
        assert stats["totals"]["requests"] == stats["sent"]  # all accounted for
