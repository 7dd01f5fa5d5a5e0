"""The agent's admin API over raw HTTP: token, validation, error shape, push."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest

from clearance.deploy import Routes
from clearance.deploy.local import LocalDeployer
from tests.deploy.conftest import Service, admin


def call(
    deployer: LocalDeployer, method: str, path: str, body: Any = None, **kwargs: Any
) -> httpx.Response:
    url, auth = admin(deployer)
    headers = kwargs.pop("headers", auth)
    return httpx.request(method, url + path, json=body, headers=headers, trust_env=False, **kwargs)


def error(answer: httpx.Response) -> dict[str, Any]:
    body: dict[str, Any] = answer.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"type", "message", "where"}
    return body["error"]


class TestToken:
    @pytest.mark.parametrize(
        "headers",
        [{}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic YWRtaW46YWRtaW4="}],
        ids=["missing", "wrong", "basic"],
    )
    def test_refused_without_the_token(self, agent: LocalDeployer, headers: dict[str, str]) -> None:
        answer = call(agent, "GET", "/services", headers=headers)
        assert answer.status_code == 401
        assert answer.headers["www-authenticate"] == "Bearer"
        assert error(answer)["type"] == "unauthorized"

    def test_refused_before_the_body_is_read(self, agent: LocalDeployer) -> None:
        answer = call(agent, "PUT", "/services/x/routes", {"weights": 5}, headers={})
        assert answer.status_code == 401

    def test_agent_json_is_private(self, agent: LocalDeployer) -> None:
        admin(agent)
        info = agent.state_dir / "agent.json"
        assert info.stat().st_mode & 0o777 == 0o600
        token = json.loads(info.read_text())["token"]
        assert token not in (agent.state_dir / "agent.log").read_text()


class TestValidation:
    @pytest.mark.parametrize(
        ("path", "body", "field", "says"),
        [
            ("/services/orders", {"port": "8080"}, "port", "valid integer"),
            ("/services/orders", {"port": 70000}, "port", "less than or equal"),
            ("/services/orders", {"port": 1, "host": "0.0.0.0"}, "host", "Extra inputs"),
            ("/services/Orders!", {"port": 1}, "service", "pattern"),
            ("/services/orders/routes", {"weights": {"stable": 90}}, "weights", "sum to 100"),
            ("/services/orders/routes", {"weights": {"blue": 100}}, "weights.blue", "stable"),
            (
                "/services/orders/routes",
                {"weights": {"stable": 100}, "lease": -1},
                "lease",
                "greater than 0",
            ),
            (
                "/services/orders/routes",
                {"weights": {"stable": 100}, "tenants": {"a b": "canary"}},
                "tenants.a b",
                "pattern",
            ),
            (
                "/services/orders/routes",
                {"weights": {"stable": 100}, "tenants": {"Kings": "canary", "kings": "stable"}},
                "tenants",
                "ignoring case",
            ),
            (
                "/services/orders/slots/canary",
                {"argv": [], "digest": "d", "version": "1"},
                "argv",
                "at least 1",
            ),
            (
                "/services/orders/slots/canary",
                {"argv": ["x"], "version": "1"},
                "digest",
                "required",
            ),
            (
                "/services/orders/slots/blue",
                {"argv": ["x"], "digest": "d", "version": "1"},
                "slot",
                "stable",
            ),
            (
                "/services/orders/slots/canary",
                {"argv": ["x"], "digest": "d", "version": '1.0"; evil'},
                "version",
                "pattern",
            ),
        ],
    )
    def test_bad_bodies_name_the_field(
        self, agent: LocalDeployer, path: str, body: Any, field: str, says: str
    ) -> None:
        answer = call(agent, "PUT", path, body)
        assert answer.status_code == 422, answer.text
        problem = error(answer)
        assert problem["type"] == "validation"
        assert problem["where"] == field
        assert says in problem["message"]
        assert field in problem["message"]

    def test_malformed_json(self, agent: LocalDeployer) -> None:
        url, auth = admin(agent)
        answer = httpx.put(
            url + "/services/orders", content=b"{port:", headers=auth, trust_env=False
        )
        assert answer.status_code == 422
        assert error(answer)["where"] == "body"

    def test_unknown_service_and_route(self, agent: LocalDeployer) -> None:
        answer = call(agent, "GET", "/services/ghost")
        assert (answer.status_code, error(answer)["type"]) == (404, "not_found")
        assert "PUT /services/ghost" in error(answer)["message"]
        answer = call(agent, "GET", "/nowhere")
        assert (answer.status_code, error(answer)["type"]) == (404, "not_found")
        assert call(agent, "PATCH", "/services").status_code == 405

    def test_declare_is_idempotent_and_guards_its_port(self, service: Service) -> None:
        first = call(service.deployer, "PUT", f"/services/{service.name}", {"port": service.port})
        again = call(service.deployer, "PUT", f"/services/{service.name}", {"port": service.port})
        assert first.status_code == again.status_code == 200
        assert first.json() == again.json()
        moved = call(service.deployer, "PUT", f"/services/{service.name}", {"port": 1})
        assert moved.status_code == 409
        assert str(service.port) in error(moved)["message"]


class TestPush:
    def test_push_needs_no_token_and_fills_the_version(self, service: Service) -> None:
        service.deploy("1.0.0")
        since = time.time()
        body = {"service": service.name, "slot": "stable", "gauge": "queue_backlog", "value": 12}
        answer = call(service.deployer, "POST", "/push", body, headers={})
        assert answer.status_code == 202
        (record,) = service.deployer.records(service.name, since, time.time() + 1)
        assert (record["gauge"], record["value"], record["version"]) == (
            "queue_backlog",
            12.0,
            "1.0.0",
        )

    @pytest.mark.parametrize(
        ("body", "field"),
        [
            ({"slot": "stable", "counter": "x", "value": 1}, "service"),
            ({"service": "s", "slot": "stable", "value": 1}, "body"),
            ({"service": "s", "slot": "stable", "counter": "x", "gauge": "y", "value": 1}, "body"),
            ({"service": "s", "slot": "stable", "counter": "x", "value": "1"}, "value"),
            ({"service": "s", "slot": "stable", "counter": "x", "value": 1, "unit": "ms"}, "unit"),
            ({"service": "s", "slot": "stable", "counter": "no spaces", "value": 1}, "counter"),
        ],
    )
    def test_strictly_validated(self, agent: LocalDeployer, body: Any, field: str) -> None:
        answer = call(agent, "POST", "/push", body, headers={})
        assert answer.status_code == 422
        assert error(answer)["where"] == field

    def test_unknown_slot(self, service: Service) -> None:
        service.deploy("1.0.0")
        body = {"service": service.name, "slot": "canary", "counter": "x", "value": 1}
        answer = call(service.deployer, "POST", "/push", body, headers={})
        assert answer.status_code == 404


class TestRoutesApi:
    def test_get_shows_routes_slots_and_lease(self, service: Service) -> None:
        service.deploy("1.0.0")
        service.deployer.route(service.name, Routes.only("stable"), lease=30.0)
        described = call(service.deployer, "GET", f"/services/{service.name}").json()
        assert described["port"] == service.port
        assert described["routes"] == {"weights": {"stable": 100}, "tenants": {}}
        assert described["slots"]["stable"]["version"] == "1.0.0"
        assert described["lease_expires_at"] > time.time() + 25
        listed = call(service.deployer, "GET", "/services").json()["services"]
        assert listed[service.name] == described

    def test_records_api_shape(self, service: Service) -> None:
        service.deploy("1.0.0")
        service.get()
        answer = call(
            service.deployer,
            "GET",
            f"/services/{service.name}/records",
            params={"since": 0, "slot": "stable"},
        )
        body = answer.json()
        assert set(body) == {"service", "records", "dropped"}
        assert body["dropped"] == 0
        assert set(body["records"][-1]) == {
            "seq",
            "t",
            "slot",
            "version",
            "tenant",
            "method",
            "path",
            "status",
            "ms",
        }
        bad = call(
            service.deployer,
            "GET",
            f"/services/{service.name}/records",
            params={"since": "yesterday"},
        )
        assert (bad.status_code, error(bad)["where"]) == (422, "since")
