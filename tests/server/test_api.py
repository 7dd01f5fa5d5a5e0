"""The REST API: every role against every endpoint, separation of duties, one error shape."""

from __future__ import annotations

import json
from typing import Any

import pytest

from clearance.core.roles import Action, Role, allowed
from clearance.settings import Settings
from clearance.usecases.instance import open_instance
from clearance.usecases.releases import REFUSED
from tests.server.conftest import Api


def refusals(settings: Settings) -> list[dict[str, Any]]:
    with open_instance(settings) as inst:
        return [{"actor": e.actor, **e.data} for e in inst.ledger.find(kinds=[REFUSED])]


def endpoints(d: str) -> list[tuple[str, str, dict[str, Any], Action]]:
    return [
        ("GET", f"/api/v1/artifacts/{d}", {}, Action.READ),
        ("GET", f"/api/v1/artifacts/{d}/evidence", {}, Action.READ),
        ("GET", f"/api/v1/artifacts/{d}/attestations", {}, Action.READ),
        ("GET", f"/api/v1/artifacts/{d}/gate?env=dev", {}, Action.READ),
        ("GET", f"/api/v1/artifacts/{d}/release", {}, Action.READ),
        ("GET", "/api/v1/status", {}, Action.READ),
        ("GET", "/api/v1/search?change_request=CR-1", {}, Action.READ),
        ("GET", "/api/v1/ledger/checkpoint", {}, Action.READ),
        ("POST", "/api/v1/ledger/verify", {"json": {}}, Action.READ),
        ("GET", "/api/v1/ledger/proofs/inclusion/0", {}, Action.READ),
        ("GET", "/api/v1/ledger/proofs/consistency?old=1", {}, Action.READ),
        (
            "POST",
            "/api/v1/artifacts",
            {"json": {"digest": "sha256:" + "b" * 64, "commit": "abc1234"}},
            Action.REGISTER,
        ),
        (
            "POST",
            f"/api/v1/artifacts/{d}/evidence",
            {
                "data": {"type": "unit-tests"},
                "files": {"report": ("r.json", b'{"passed": true}', "application/json")},
            },
            Action.ATTEST,
        ),
        ("POST", f"/api/v1/artifacts/{d}/approvals", {"json": {"env": "prod"}}, Action.APPROVE),
        ("POST", f"/api/v1/artifacts/{d}/promotions", {"json": {"env": "dev"}}, Action.PROMOTE),
        ("GET", "/api/v1/tokens", {}, Action.MANAGE_TOKENS),
        (
            "POST",
            "/api/v1/tokens",
            {"json": {"name": "new-ci", "role": "ci"}},
            Action.MANAGE_TOKENS,
        ),
    ]


class TestAuthorizationMatrix:
    @pytest.mark.parametrize("role", list(Role))
    def test_every_role_against_every_endpoint(self, api: Api, role: Role) -> None:
        denied = 0
        for method, path, kwargs, action in endpoints(api.digest):
            response = api.client.request(method, path, headers=api.auth(role), **kwargs)
            if allowed(role, action):
                assert response.status_code not in (401, 403), (method, path, response.text)
                assert response.status_code < 500
            else:
                assert response.status_code == 403, (method, path, response.text)
                assert response.json()["error"]["message"] == (
                    f"role {role.value} may not {action.value}"
                )
                denied += 1
        recorded = [r for r in refusals(api.settings) if r["actor"] == f"{role.value}@example.org"]
        assert len(recorded) == denied

    def test_public_key_needs_no_token(self, api: Api) -> None:
        key = api.client.get("/api/v1/key").json()
        assert key["public_key"].startswith("-----BEGIN PUBLIC KEY-----")


class TestIdentities:
    def test_missing_unknown_and_revoked_tokens_are_401(self, api: Api) -> None:
        assert api.client.get("/api/v1/status").status_code == 401
        bad = api.client.get("/api/v1/status", headers={"Authorization": "Bearer clr_nope"})
        assert bad.status_code == 401 and bad.headers["www-authenticate"] == "Bearer"
        admin = api.auth(Role.ADMIN)
        assert (
            api.client.delete("/api/v1/tokens/auditor@example.org", headers=admin).status_code
            == 200
        )
        revoked = api.client.get("/api/v1/status", headers=api.auth(Role.AUDITOR))
        assert revoked.status_code == 401
        assert revoked.json()["error"]["message"] == "the API token is unknown, expired or revoked"

    def test_tokens_are_stored_hashed(self, api: Api) -> None:
        import sqlite3

        if not api.settings.database_url.startswith("sqlite"):
            pytest.skip("checked on the SQLite file")
        db = sqlite3.connect(api.settings.database_url.removeprefix("sqlite:///"))
        stored = " ".join(str(v) for row in db.execute("SELECT * FROM api_tokens") for v in row)
        db.close()
        for token in api.tokens.values():
            assert token not in stored

    def test_expired_token_is_refused(self, api: Api) -> None:
        from datetime import timedelta

        from clearance.usecases.identity import create_token
        from tests.conftest import FixedClock

        with open_instance(api.settings, clock=FixedClock()) as inst:  # issued weeks ago
            token = create_token(
                inst, name="short", role=Role.AUDITOR, actor="admin", expires=timedelta(minutes=1)
            ).token
        expired = api.client.get("/api/v1/status", headers={"Authorization": f"Bearer {token}"})
        assert expired.status_code == 401
        zero = api.client.post(
            "/api/v1/tokens",
            headers=api.auth(Role.ADMIN),
            json={"name": "zero", "role": "auditor", "expires": "0m"},
        )
        assert zero.status_code == 400
        assert zero.json()["error"]["message"] == "--expires '0m' must be longer than zero"


class TestSeparationOfDuties:
    def test_approver_cannot_promote_what_they_approved(self, api: Api) -> None:
        rm = api.auth(Role.RELEASE_MANAGER)
        ok = api.client.post(
            f"/api/v1/artifacts/{api.digest}/approvals",
            headers=rm,
            json={"env": "dev", "meaning": "approval"},
        )
        assert ok.status_code == 200
        refused = api.client.post(
            f"/api/v1/artifacts/{api.digest}/promotions", headers=rm, json={"env": "dev"}
        )
        assert refused.status_code == 403
        assert refused.json()["error"]["message"] == (
            "release-manager@example.org approved this release for dev and cannot also "
            "promote it there"
        )
        assert refusals(api.settings)[-1]["reason"] == refused.json()["error"]["message"]
        deployed = api.client.post(
            f"/api/v1/artifacts/{api.digest}/promotions",
            headers=api.auth(Role.DEPLOYER),
            json={"env": "dev"},
        )
        assert deployed.status_code == 200 and deployed.json()["promoted"] is True

    def test_blocked_promotion_is_409_with_the_gate(self, api: Api) -> None:
        response = api.client.post(
            f"/api/v1/artifacts/{api.digest}/promotions",
            headers=api.auth(Role.DEPLOYER),
            json={"env": "prod"},
        )
        assert response.status_code == 409
        decision = response.json()["error"]["decision"]
        assert decision["allowed"] is False
        assert [c["control"] for c in decision["controls"] if not c["satisfied"]] == [
            "environment-order",
            "evidence:unit-tests",
            "approvals",
        ]


class TestErrorShape:
    def test_every_error_has_the_same_shape(self, api: Api) -> None:
        auth = api.auth(Role.CI)
        responses = [
            api.client.get("/api/v1/artifacts/sha256:" + "0" * 64, headers=auth),  # 404
            api.client.get("/api/v1/artifacts/v1.2.3", headers=auth),  # 422: not a digest
            api.client.post("/api/v1/artifacts", headers=auth, content=b"{not json"),  # 422
            api.client.post(
                "/api/v1/artifacts",
                headers=auth,
                json={"digest": "sha256:" + "b" * 64, "commit": "abc1234", "actor": "someone-else"},
            ),  # 422
            api.client.post(
                f"/api/v1/artifacts/{api.digest}/evidence",
                headers=auth,
                data={"type": "unit-tests"},
                files={"report": ("../../etc/passwd", b"{}", "text/plain")},
            ),  # 400
            api.client.post(
                f"/api/v1/artifacts/{api.digest}/evidence",
                headers=auth,
                data={"type": "unit-tests"},
                files={"report": ("bomb.xml", b'<!DOCTYPE x [<!ENTITY a "b">]><x/>', "text/xml")},
            ),  # 422
            api.client.post("/api/v1/ledger/verify", headers=auth, content=b"x" * (2 << 20)),  # 413
        ]
        assert [r.status_code for r in responses] == [404, 422, 422, 422, 400, 422, 413]
        for r in responses:
            body = r.json()
            assert set(body) == {"error"}
            assert set(body["error"]) >= {"type", "message", "where", "hint"}
            assert body["error"]["message"]
        assert "actor: Extra inputs are not permitted" in responses[3].json()["error"]["message"]

    def test_failed_requests_write_nothing(self, api: Api) -> None:
        auth = api.auth(Role.CI)
        before = api.client.post("/api/v1/ledger/verify", headers=auth, json={}).json()["size"]
        api.client.post(
            f"/api/v1/artifacts/{api.digest}/evidence",
            headers=auth,
            data={"type": "unit-tests"},
            files={"report": ("bad.json", b'{"passed": "yes"}', "application/json")},
        )
        after = api.client.post("/api/v1/ledger/verify", headers=auth, json={}).json()
        assert after["size"] == before and after["ok"]


class TestOperations:
    def test_attest_and_read_back(self, api: Api) -> None:
        auth = api.auth(Role.CI)
        report = json.dumps({"passed": True, "checks": 3}).encode()
        made = api.client.post(
            f"/api/v1/artifacts/{api.digest}/evidence",
            headers=auth,
            data={"type": "contract-tests"},
            files={"report": ("contract.json", report, "application/json")},
        )
        assert made.status_code == 200, made.text
        assert made.json()["recorded_by"] == "ci@example.org"
        assert made.json()["filename"] == "contract.json"
        listed = api.client.get(f"/api/v1/artifacts/{api.digest}/evidence", headers=auth).json()
        assert [e["type"] for e in listed] == ["contract-tests"]


class TestBreakGlassRole:
    def test_only_release_managers_break_glass(self, api: Api) -> None:
        body = {"env": "dev", "break_glass": True, "reason": "outage"}
        refused = api.client.post(
            f"/api/v1/artifacts/{api.digest}/promotions", headers=api.auth(Role.DEPLOYER), json=body
        )
        assert refused.status_code == 403
        assert refused.json()["error"]["message"] == "role deployer may not break-glass"
        assert refusals(api.settings)[-1]["actor"] == "deployer@example.org"
        allowed_ = api.client.post(
            f"/api/v1/artifacts/{api.digest}/promotions",
            headers=api.auth(Role.RELEASE_MANAGER),
            json=body,
        )
        assert allowed_.status_code == 200 and allowed_.json()["break_glass"] == "outage"
