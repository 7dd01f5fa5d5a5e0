"""nginx as the router: the rendered configuration, and a real nginx doing the same job."""

from __future__ import annotations

import re
import subprocess
import time
from pathlib import Path

import pytest

from clearance.deploy import Routes
from clearance.deploy.local.nginx import NGINX, NginxService, render, variable_id
from tests.deploy.conftest import Service, Traffic, wait_for

SERVICE = NginxService(
    "patient-portal",
    8080,
    {"stable": 90, "baseline": 5, "canary": 5},
    {"st-mary": "canary", "default": "baseline"},
    {"stable": (41001, "1.4.2"), "canary": (41002, "1.4.3")},
)


class TestRender:
    def test_one_upstream_per_slot_and_a_down_one_for_an_empty_slot(self, tmp_path: Path) -> None:
        text = render([SERVICE], tmp_path, as_root=False)
        vid = variable_id("patient-portal")
        assert vid.startswith("patient_portal_")
        assert f"upstream clr_{vid}_stable {{ server 127.0.0.1:41001; keepalive 16; }}" in text
        assert f"upstream clr_{vid}_baseline {{ server 127.0.0.1:9 down; }}" in text
        assert "user root;" not in text
        assert "user root;" in render([SERVICE], tmp_path, as_root=True)

    def test_weights_tenants_headers_and_log(self, tmp_path: Path) -> None:
        text = render([SERVICE], tmp_path, as_root=False)
        vid = variable_id("patient-portal")
        split = re.search(r"split_clients \S+ \S+ \{([^}]*)\}", text)
        assert split is not None
        assert split[1].split() == ["90%", "stable;", "5%", "baseline;", "*", "canary;"]
        assert f"map $http_x_tenant $clr_{vid}_slot {{" in text
        assert '"st-mary" canary;' in text
        assert '"\\default" baseline;' in text  # a tenant named like a map keyword
        assert f"add_header X-Clearance-Slot $clr_{vid}_slot always;" in text
        assert f"access_log {tmp_path}/access.log clr_{vid};" in text
        assert '"tenant":"$http_x_tenant"' in text
        assert str(Path("/etc/nginx")) not in text

    def test_nginx_accepts_it(self, nginx_available: None, tmp_path: Path) -> None:
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
            (tmp_path / "tmp" / kind).mkdir(parents=True)
        conf = tmp_path / "nginx.conf"
        conf.write_text(render([SERVICE], tmp_path, as_root=False))
        checked = subprocess.run(
            [NGINX, "-t", "-p", f"{tmp_path}/", "-e", str(tmp_path / "error.log"), "-c", str(conf)],
            capture_output=True,
            text=True,
            timeout=20,
        )
        assert checked.returncode == 0, checked.stderr


@pytest.mark.usefixtures("nginx_available")
class TestNginxRouter:
    def test_split_and_pin(self, nginx_service: Service) -> None:
        nginx_service.deploy("1.0.0")
        nginx_service.deploy("1.1.0", "canary")
        routes = Routes({"stable": 75, "canary": 25}, tenants={"st-mary": "canary"})
        nginx_service.deployer.route(nginx_service.name, routes)
        seen = nginx_service.slots_seen(300)
        assert set(seen) == {"stable", "canary"}
        assert 45 <= seen["canary"] <= 105  # a hash of a random id per request: ~75 +- 4 sigma
        pinned = nginx_service.get(**{"X-Tenant": "st-mary"})
        assert pinned.headers["x-clearance-slot"] == "canary"
        assert pinned.headers["x-clearance-version"] == "1.1.0"
        assert pinned.json()["version"] == "1.1.0"

    def test_switch_under_traffic_and_records_from_the_access_log(
        self, nginx_service: Service
    ) -> None:
        nginx_service.deploy("1.0.0")
        nginx_service.deploy("1.1.0", "canary")
        since = time.time()
        with Traffic(nginx_service.url, workers=3) as traffic:
            for weights in ({"stable": 50, "canary": 50}, {"canary": 100}) * 2:
                nginx_service.deployer.route(nginx_service.name, Routes(weights))
                time.sleep(0.1)
            nginx_service.deployer.route(nginx_service.name, Routes.only("stable"))
            switched = time.time()
            time.sleep(0.3)
        assert traffic.failures == []
        late = [slot for began, slot, _ in traffic.seen if began > switched]
        assert late and set(late) == {"stable"}
        nginx_service.get("/orders/9?status=404", **{"X-Tenant": "kings"})
        wait_for(
            lambda: any(
                r.get("status") == 404
                for r in nginx_service.deployer.records(nginx_service.name, since, time.time())
            ),
            what="the access log line",
        )
        records = nginx_service.deployer.records(nginx_service.name, since, time.time())
        assert len(records) == len(traffic.seen) + 1
        assert {(r["slot"], r["version"]) for r in records} == {
            ("stable", "1.0.0"),
            ("canary", "1.1.0"),
        }
        last = records[-1]
        assert last | {"seq": 0, "t": 0, "ms": 0} == {
            "seq": 0,
            "t": 0,
            "ms": 0,
            "slot": "stable",
            "version": "1.0.0",
            "tenant": "kings",
            "method": "GET",
            "path": "/orders/9",
            "status": 404,
        }

    def test_lease_expiry_and_promote(self, nginx_service: Service) -> None:
        nginx_service.deploy("1.0.0")
        nginx_service.deploy("1.1.0", "canary")
        routes = Routes({"canary": 100}, tenants={"st-mary": "canary"})
        nginx_service.deployer.route(nginx_service.name, routes, lease=0.5)
        assert nginx_service.slots_seen(5) == {"canary": 5}
        wait_for(
            lambda: nginx_service.deployer.describe(nginx_service.name)["lease_expired_at"],
            what="lease expiry",
        )
        assert nginx_service.slots_seen(5, **{"X-Tenant": "st-mary"}) == {"stable": 5}
        nginx_service.deployer.route(nginx_service.name, Routes({"canary": 100}))
        nginx_service.deployer.promote(nginx_service.name, "canary")
        answer = nginx_service.get()
        assert answer.headers["x-clearance-slot"] == "stable"
        assert answer.json()["version"] == "1.1.0"
        assert list(nginx_service.deployer.slots(nginx_service.name)) == ["stable"]
