"""LocalDeployer with the built-in router: real agent, real slot processes, real traffic."""

from __future__ import annotations

import os
import time

import pytest

from clearance.deploy import DeployError, Routes, ServiceSpec, SlotSpec, SlotState
from clearance.deploy.local import LocalDeployer
from clearance.deploy.local.processes import alive
from tests.deploy.conftest import Service, Traffic, spec, version, wait_for


def pid(service: Service, slot: str) -> int:
    """The pid of the process in ``slot``, asked directly at its endpoint."""
    endpoint = service.deployer.slots(service.name)[slot].endpoint
    return int(service.http.get(f"{endpoint}/whoami").json()["pid"])


class TestDeploy:
    def test_deploy_waits_for_health_and_serves(self, service: Service) -> None:
        state = service.deployer.deploy(service.spec(), version("1.0.0"))
        assert state == SlotState("stable", version("1.0.0").digest, "1.0.0", True, state.endpoint)
        answer = service.get("/orders?ward=4")
        assert answer.status_code == 200
        assert answer.json()["version"] == "1.0.0"
        assert answer.json()["query"] == "ward=4"
        assert answer.headers["x-clearance-slot"] == "stable"
        assert answer.headers["x-clearance-version"] == "1.0.0"
        assert service.deployer.slots(service.name) == {"stable": state}

    def test_bodies_methods_and_headers_pass_through(self, service: Service) -> None:
        service.deploy("1.0.0")
        answer = service.http.post(
            service.url + "/orders", json={"drug": "paracetamol"}, headers={"Host": "orders.ward"}
        )
        echoed = answer.json()
        assert (echoed["method"], echoed["path"], echoed["host"]) == (
            "POST",
            "/orders",
            "orders.ward",
        )
        assert echoed["body"] == '{"drug":"paracetamol"}'
        assert service.http.delete(service.url + "/orders/7?status=202").status_code == 202

    def test_run_template_is_split_before_placeholders_are_filled(
        self, agent: LocalDeployer
    ) -> None:
        java = ServiceSpec("orders", "java -jar {artifact} --slot={slot} --v {version} -p {port}")
        slot = SlotSpec("canary", "sha256:aa", "1.4.3", artifact="/srv/My Builds/orders.jar")
        assert agent.command(java, slot) == [
            "java",
            "-jar",
            "/srv/My Builds/orders.jar",
            "--slot=canary",
            "--v",
            "1.4.3",
            "-p",
            "{port}",
        ]
        with pytest.raises(DeployError, match="no artifact path"):
            agent.command(java, SlotSpec("canary", "sha256:aa", "1.4.3"))

    def test_early_exit_names_slot_and_quotes_stderr(self, service: Service) -> None:
        service.deploy("1.0.0")
        before = service.deployer.slots(service.name)
        with pytest.raises(
            DeployError,
            match=r"(?s)deploy .*/stable.*exited with code 3.*"
            "ORDERS_DB_URL is not set",
        ):
            service.deploy("1.1.0", APP_EXIT_EARLY="1")
        assert service.deployer.slots(service.name) == before  # nothing swapped
        assert service.get().json()["version"] == "1.0.0"

    def test_readiness_timeout(self, service: Service) -> None:
        service.deploy("1.0.0")
        before = service.deployer.slots(service.name)
        began = time.monotonic()
        with pytest.raises(DeployError, match=r"canary.*not ready after 0.5s.*answered 503"):
            service.deployer.deploy(
                spec(service.name, ready_timeout=0.5, APP_FAIL_HEALTH="1"),
                version("1.1.0", "canary"),
            )
        assert time.monotonic() - began < 3.0
        assert service.deployer.slots(service.name) == before

    def test_a_command_that_cannot_run(self, agent: LocalDeployer, service: Service) -> None:
        bad = ServiceSpec(service.name, "/nonexistent/orders-server --port {port}")
        with pytest.raises(DeployError, match=r"deploy .*/stable failed \(400\).*cannot run"):
            agent.deploy(bad, version("1.0.0"))


class TestRoutes:
    def test_weights_split_traffic(self, service: Service) -> None:
        service.deploy("1.0.0")
        service.deploy("1.1.0", "canary")
        service.deployer.route(service.name, Routes({"stable": 80, "canary": 20}))
        seen = service.slots_seen(300)
        assert seen == {"stable": 240, "canary": 60}  # smooth round-robin: exact per cycle

    def test_tenant_pin_overrides_weights(self, service: Service) -> None:
        service.deploy("1.0.0")
        service.deploy("1.1.0", "canary")
        routes = Routes({"stable": 100}, tenants={"st-mary": "canary"})
        service.deployer.route(service.name, routes)
        assert service.slots_seen(20, **{"X-Tenant": "st-mary"}) == {"canary": 20}
        assert service.slots_seen(20, **{"X-Tenant": "kings-college"}) == {"stable": 20}
        assert service.slots_seen(20) == {"stable": 20}

    def test_refused_routes_change_nothing(self, service: Service) -> None:
        service.deploy("1.0.0")
        with pytest.raises(DeployError, match=r"route .*\(409\).*canary: runs nothing"):
            service.deployer.route(service.name, Routes({"stable": 50, "canary": 50}))
        assert service.deployer.describe(service.name)["routes"]["weights"] == {"stable": 100}

    def test_switching_under_traffic_fails_nothing(self, service: Service) -> None:
        service.deploy("1.0.0")
        service.deploy("1.1.0", "canary")
        service.deploy("1.0.0", "baseline")
        splits = [
            {"stable": 90, "canary": 5, "baseline": 5},
            {"stable": 50, "canary": 50},
            {"canary": 100},
            {"stable": 100},
        ]
        with Traffic(service.url) as traffic:
            for weights in splits * 3:
                service.deployer.route(service.name, Routes(weights))
                time.sleep(0.08)
            service.deploy("1.2.0", "canary")  # replace a slot that takes traffic
            service.deployer.route(service.name, Routes({"canary": 100}))
            time.sleep(0.1)
            switched = time.time()
            service.deployer.route(service.name, Routes.only("stable"))
            time.sleep(0.2)
        assert len(traffic.seen) > 100
        assert traffic.failures == []
        assert set(traffic.slots()) == {"stable", "canary", "baseline"}
        late = [s for began, s, _ in traffic.seen if began > switched + 0.05]
        assert late and set(late) == {"stable"}

    def test_lease_expiry_returns_traffic_to_stable(self, service: Service) -> None:
        service.deploy("1.0.0")
        service.deploy("1.1.0", "canary")
        routes = Routes({"stable": 50, "canary": 50}, tenants={"st-mary": "canary"})
        asked = time.time()
        service.deployer.route(service.name, routes, lease=1.0)
        described = service.deployer.describe(service.name)
        assert asked + 0.9 < described["lease_expires_at"] < asked + 1.5
        time.sleep(0.6)
        renewed = time.time()
        service.deployer.route(service.name, routes, lease=1.0)  # renewed: still split
        time.sleep(0.6)
        assert service.slots_seen(10) == {"stable": 5, "canary": 5}
        wait_for(
            lambda: service.deployer.describe(service.name)["lease_expires_at"] is None,
            what="lease expiry",
        )
        described = service.deployer.describe(service.name)
        assert described["routes"] == {"weights": {"stable": 100}, "tenants": {}}
        assert described["lease_expired_at"] > renewed + 0.95
        assert service.slots_seen(10, **{"X-Tenant": "st-mary"}) == {"stable": 10}

    def test_promote_swaps_stable_and_stops_the_old_process(self, service: Service) -> None:
        service.deploy("1.0.0")
        service.deploy("1.1.0", "canary")
        service.deployer.route(service.name, Routes({"stable": 50, "canary": 50}))
        old = pid(service, "stable")
        with Traffic(service.url) as traffic:
            time.sleep(0.2)
            service.deployer.promote(service.name, "canary")
            time.sleep(0.2)
        assert traffic.failures == []
        slots = service.deployer.slots(service.name)
        assert list(slots) == ["stable"]
        assert (slots["stable"].version, slots["stable"].healthy) == ("1.1.0", True)
        assert service.deployer.describe(service.name)["routes"]["weights"] == {"stable": 100}
        assert not alive(old)
        answer = service.get()
        assert answer.headers["x-clearance-slot"] == "stable"
        assert answer.json()["version"] == "1.1.0"

    def test_scale_down_refused_while_routed(self, service: Service) -> None:
        service.deploy("1.0.0")
        service.deploy("1.1.0", "canary")
        service.deployer.route(service.name, Routes({"stable": 100}, tenants={"st-mary": "canary"}))
        canary = pid(service, "canary")
        with pytest.raises(DeployError, match=r"scale down .*/canary failed \(409\).*still takes"):
            service.deployer.scale_down(service.name, "canary")
        assert alive(canary)
        service.deployer.route(service.name, Routes({"stable": 100}))
        service.deployer.scale_down(service.name, "canary")
        assert not alive(canary)
        assert list(service.deployer.slots(service.name)) == ["stable"]


class TestRecords:
    def test_records_carry_slot_version_tenant_status_latency(self, service: Service) -> None:
        service.deploy("1.0.0")
        service.deploy("1.1.0", "canary")
        service.deployer.route(service.name, Routes({"stable": 100}, tenants={"st-mary": "canary"}))
        since = time.time()
        service.http.post(service.url + "/orders?status=201", headers={"X-Tenant": "st-mary"})
        service.get("/orders/7?ms=30")
        service.get("/push?counter=hl7_ack_failed", **{"X-Tenant": "st-mary"})
        records = service.deployer.records(service.name, since, time.time() + 1)
        requests = [r for r in records if "status" in r]
        assert [
            (r["slot"], r["version"], r["tenant"], r["method"], r["path"], r["status"])
            for r in requests
        ] == [
            ("canary", "1.1.0", "st-mary", "POST", "/orders", 201),
            ("stable", "1.0.0", None, "GET", "/orders/7", 200),
            ("canary", "1.1.0", "st-mary", "GET", "/push", 200),
        ]
        assert requests[1]["ms"] >= 30
        assert all(since <= r["t"] <= time.time() for r in records)
        assert [r["seq"] for r in records] == sorted(r["seq"] for r in records)
        (pushed,) = [r for r in records if "counter" in r]
        assert pushed | {"seq": 0, "t": 0} == {
            "seq": 0,
            "t": 0,
            "slot": "canary",
            "version": "1.1.0",
            "counter": "hl7_ack_failed",
            "value": 1.0,
        }
        only = service.deployer.records(service.name, since, time.time(), slot="stable")
        assert {r["slot"] for r in only} == {"stable"}

    def test_a_dead_backend_is_recorded_as_502(self, service: Service) -> None:
        service.deploy("1.0.0")
        service.deploy("1.1.0", "canary")
        service.deployer.route(service.name, Routes({"stable": 100}, tenants={"st-mary": "canary"}))
        canary = pid(service, "canary")
        os.kill(canary, 9)
        wait_for(lambda: not alive(canary), what="canary death")
        since = time.time()
        answer = service.get(**{"X-Tenant": "st-mary"})
        assert answer.status_code == 502
        assert answer.headers["x-clearance-slot"] == "canary"
        (record,) = service.deployer.records(service.name, since, time.time() + 1)
        assert (record["slot"], record["version"], record["status"]) == ("canary", "1.1.0", 502)
        wait_for(lambda: not service.deployer.slots(service.name)["canary"].healthy)

    def test_router_overhead_is_small(self, service: Service) -> None:
        service.deploy("1.0.0")
        direct = service.deployer.slots(service.name)["stable"].endpoint

        def mean_ms(url: str, n: int = 150) -> float:
            service.http.get(url)  # the connection, kept alive
            began = time.perf_counter()
            for _ in range(n):
                service.http.get(url)
            return (time.perf_counter() - began) / n * 1000

        through, bare = mean_ms(service.url + "/orders"), mean_ms(direct + "/orders")
        print(f"router overhead: {through - bare:.2f} ms per request ({bare:.2f} -> {through:.2f})")
        assert through - bare < 5.0
