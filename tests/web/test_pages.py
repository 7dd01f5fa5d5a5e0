"""The HTML routes over plain HTTP: sign-in, sessions, CSRF, refusals and bad input.

Every refused POST is checked to have written nothing (the ledger's size is unchanged) unless
the refusal itself is recorded; no malformed request gets a 5xx or a stack trace.
"""

from __future__ import annotations

import os
import stat
from urllib.parse import quote

import httpx
import pytest

from clearance.usecases.accounts import disable_account
from clearance.usecases.instance import open_instance
from clearance.usecases.releases import APPROVED, REFUSED
from clearance.web.session import COOKIE, SECRET_FILE
from tests.web.conftest import EVIDENCE_SET, PASSWORDS, Site, csrf_of, sign_in


def approve_form(client: httpx.Client, site: Site, **overrides: str) -> dict[str, str]:
    html = client.get(f"/releases/{site.digest}").text
    found = EVIDENCE_SET.search(html)
    assert found
    form = {
        "csrf": csrf_of(html),
        "env": "prod",
        "meaning": "approval",
        "reason": "",
        "evidence_set": found.group(1),
        "password": PASSWORDS["alice@example.org"],
    }
    form.update(overrides)
    return form


def no_trace(response: httpx.Response) -> None:
    assert response.status_code < 500, response.text
    assert "Traceback" not in response.text and 'File "' not in response.text


class TestSignedOut:
    @pytest.mark.parametrize("path", ["/", "/search?change_request=CR-1", "/ledger", "/logout"])
    def test_pages_redirect_to_sign_in(self, shared_site: Site, path: str) -> None:
        with shared_site.client() as client:
            response = client.get(path)
        assert response.status_code == 303
        assert response.headers["location"].startswith("/login?next=%2F")

    def test_release_page_redirect_keeps_the_target(self, shared_site: Site) -> None:
        with shared_site.client() as client:
            response = client.get(f"/releases/{shared_site.digest}")
            assert response.headers["location"] == "/login?next=" + quote(
                f"/releases/{shared_site.digest}", safe=""
            )

    def test_post_without_a_session_is_refused_and_writes_nothing(self, shared_site: Site) -> None:
        before = len(shared_site.entries())
        with shared_site.client() as client:
            response = client.post(
                f"/releases/{shared_site.digest}/approvals", data={"env": "prod", "password": "x"}
            )
        assert response.status_code == 403
        assert "security token" in response.text
        assert response.headers["content-type"].startswith("text/html")
        assert len(shared_site.entries()) == before

    def test_post_with_an_anonymous_session_needs_sign_in(self, shared_site: Site) -> None:
        with shared_site.client() as client:
            token = csrf_of(client.get("/login").text)
            response = client.post("/ledger/verify", data={"csrf": token})
        assert response.status_code == 401
        assert "not signed in" in response.text


class TestSignIn:
    def test_sets_a_strict_http_only_cookie_and_redirects(self, shared_site: Site) -> None:
        with shared_site.client() as client:
            response = sign_in(client, "alice@example.org")
            assert response.status_code == 303 and response.headers["location"] == "/"
            cookie = response.headers["set-cookie"]
            assert cookie.startswith(f"{COOKIE}=")
            assert (
                "HttpOnly" in cookie and "SameSite=strict" in cookie and "Max-Age=28800" in cookie
            )
            home = client.get("/")
        assert home.status_code == 200
        assert "Alice Adams" in home.text and "portal.zip" in home.text
        assert home.headers["content-security-policy"].startswith("default-src 'none'")
        assert home.headers["x-frame-options"] == "DENY"
        assert home.headers["cache-control"] == "no-store"

    def test_the_session_secret_is_private(self, shared_site: Site) -> None:
        with shared_site.client() as client:
            client.get("/login")
        path = shared_site.home / "keys" / SECRET_FILE
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        assert len(bytes.fromhex(path.read_text().strip())) == 32

    @pytest.mark.parametrize(
        ("email", "password"),
        [
            ("alice@example.org", "not-her-password"),
            ("nobody@example.org", "whatever-it-is-1"),
            ("ALICE@example.org", ""),
        ],
    )
    def test_wrong_credentials_say_so_without_saying_which(
        self, shared_site: Site, email: str, password: str
    ) -> None:
        with shared_site.client() as client:
            token = csrf_of(client.get("/login").text)
            response = client.post(
                "/login", data={"csrf": token, "email": email, "password": password}
            )
        assert response.status_code == 401
        assert "The email or password is not correct." in response.text

    def test_email_is_case_insensitive(self, shared_site: Site) -> None:
        with shared_site.client() as client:
            response = sign_in(client, "Alice@Example.org", PASSWORDS["alice@example.org"])
        assert response.status_code == 303

    def test_login_without_csrf_is_refused(self, shared_site: Site) -> None:
        with shared_site.client() as client:
            client.get("/login")
            response = client.post(
                "/login",
                data={"email": "alice@example.org", "password": PASSWORDS["alice@example.org"]},
            )
        assert response.status_code == 403

    @pytest.mark.parametrize(
        "target", ["https://evil.example/", "//evil.example/x", "/\\evil.example", "javascript:1"]
    )
    def test_no_open_redirect(self, shared_site: Site, target: str) -> None:
        with shared_site.client() as client:
            token = csrf_of(client.get("/login").text)
            response = client.post(
                "/login",
                data={
                    "csrf": token,
                    "email": "alice@example.org",
                    "password": PASSWORDS["alice@example.org"],
                    "next": target,
                },
            )
        assert response.status_code == 303 and response.headers["location"] == "/"

    def test_repeated_wrong_passwords_lock_the_account_for_a_while(self, site: Site) -> None:
        with site.client() as client:
            for _ in range(5):
                assert sign_in(client, "audrey@example.org", "wrong-password!").status_code == 401
            locked = sign_in(client, "audrey@example.org")
        assert locked.status_code == 429
        assert "Too many wrong passwords" in locked.text

    def test_a_tampered_cookie_is_a_signed_out_visitor(self, shared_site: Site) -> None:
        with shared_site.client() as client:
            sign_in(client, "audrey@example.org")
            value = client.cookies[COOKIE]
            body, mac = value.split(".")
            client.cookies.set(COOKIE, body + "." + mac[:-2] + ("AA" if mac[-2:] != "AA" else "BB"))
            assert client.get("/").status_code == 303

    def test_sign_out_ends_the_session(self, shared_site: Site) -> None:
        with shared_site.client() as client:
            sign_in(client, "audrey@example.org")
            home = client.get("/")
            response = client.post("/logout", data={"csrf": csrf_of(home.text)})
            assert response.status_code == 303 and response.headers["location"] == "/login"
            assert client.get("/").status_code == 303

    def test_a_disabled_account_is_signed_out_at_once(self, site: Site) -> None:
        with site.client() as client:
            sign_in(client, "audrey@example.org")
            assert client.get("/").status_code == 200
            with open_instance(site.settings) as inst:
                disable_account(inst, email="audrey@example.org", actor="admin@example.org")
            assert client.get("/").status_code == 303
            assert sign_in(client, "audrey@example.org").status_code == 401


class TestSigning:
    def test_signs_with_the_account_as_actor(self, any_site: Site) -> None:
        with any_site.client() as client:
            sign_in(client, "alice@example.org")
            response = client.post(
                f"/releases/{any_site.digest}/approvals", data=approve_form(client, any_site)
            )
            assert response.status_code == 303
            assert "signed=" in response.headers["location"]
            page = client.get(response.headers["location"])
        assert "Alice Adams (alice@example.org), approval, " in page.text
        [approval] = any_site.entries(APPROVED)
        assert approval.actor == "alice@example.org"

    @pytest.mark.parametrize("token", [None, "", "forged-token"])
    def test_missing_or_wrong_csrf_is_refused_and_writes_nothing(
        self, shared_site: Site, token: str | None
    ) -> None:
        with shared_site.client() as client:
            sign_in(client, "alice@example.org")
            form = approve_form(client, shared_site)
            if token is None:
                del form["csrf"]
            else:
                form["csrf"] = token
            before = len(shared_site.entries())
            response = client.post(f"/releases/{shared_site.digest}/approvals", data=form)
        assert response.status_code == 403
        assert "security token" in response.text and "nothing was done" in response.text
        assert len(shared_site.entries()) == before

    def test_a_token_from_another_session_is_refused(self, shared_site: Site) -> None:
        with shared_site.client() as other:
            sign_in(other, "dana@example.org")
            foreign = csrf_of(other.get("/").text)
        with shared_site.client() as client:
            sign_in(client, "alice@example.org")
            before = len(shared_site.entries())
            response = client.post(
                f"/releases/{shared_site.digest}/approvals",
                data=approve_form(client, shared_site, csrf=foreign),
            )
        assert response.status_code == 403 and len(shared_site.entries()) == before

    def test_a_wrong_password_at_signing_is_refused_and_recorded(self, site: Site) -> None:
        with site.client() as client:
            sign_in(client, "alice@example.org")
            response = client.post(
                f"/releases/{site.digest}/approvals",
                data=approve_form(client, site, password="not-alices-password"),
            )
        assert response.status_code == 403
        assert "password you re-entered is not correct" in response.text
        assert site.entries(APPROVED) == []
        refusal = site.entries()[-1]
        assert refusal.kind == REFUSED and refusal.actor == "alice@example.org"
        assert refusal.data["reason"] == "re-authentication at signing failed"

    def test_evidence_other_than_shown_is_not_signed(self, shared_site: Site) -> None:
        with shared_site.client() as client:
            sign_in(client, "alice@example.org")
            form = approve_form(client, shared_site, evidence_set="sha256:" + "0" * 64)
            before = len(shared_site.entries())
            response = client.post(f"/releases/{shared_site.digest}/approvals", data=form)
        assert response.status_code == 409
        assert "changed since the page was shown" in response.text
        assert len(shared_site.entries()) == before

    @pytest.mark.parametrize("email", ["audrey@example.org", "ops@example.org"])
    def test_roles_that_cannot_approve_get_no_form_and_a_recorded_refusal(
        self, shared_site: Site, email: str
    ) -> None:
        with shared_site.client() as client:
            sign_in(client, email)
            html = client.get(f"/releases/{shared_site.digest}").text
            assert 'id="sign"' not in html
            response = client.post(
                f"/releases/{shared_site.digest}/approvals",
                data={"csrf": csrf_of(html), "env": "prod", "password": PASSWORDS[email]},
            )
        assert response.status_code == 403
        assert "may not approve" in response.text
        refusal = shared_site.entries()[-1]
        assert refusal.kind == REFUSED and refusal.actor == email
        assert shared_site.entries(APPROVED) == []

    @pytest.mark.parametrize(
        ("field", "value", "status"),
        [
            ("meaning", "rubber-stamp", 400),
            ("env", "", 400),
            ("env", "qa", 400),
            ("reason", "x" * 3000, 400),
        ],
    )
    def test_bad_fields_are_refused_and_write_nothing(
        self, shared_site: Site, field: str, value: str, status: int
    ) -> None:
        with shared_site.client() as client:
            sign_in(client, "alice@example.org")
            form = approve_form(client, shared_site, **{field: value})
            before = len(shared_site.entries())
            response = client.post(f"/releases/{shared_site.digest}/approvals", data=form)
        assert response.status_code == status
        no_trace(response)
        assert len(shared_site.entries()) == before


class TestBadInput:
    @pytest.mark.parametrize(
        ("path", "status"),
        [
            ("/releases/not-a-digest", 400),
            ("/releases/sha256:" + "f" * 64, 404),
            ("/releases/sha256:" + "F" * 64, 404),  # read as lower case: unknown
            ("/releases/..%2F..%2Fetc%2Fpasswd", 400),
            ("/releases/../../etc/passwd", 404),
            ("/releases/%00", 400),
            ("/static/..%2F..%2Fpyproject.toml", 404),
            ("/static/../../pyproject.toml", 404),
            ("/search?since=2026-13-45", 400),
            ("/search?until=yesterday", 400),
            ("/search?version=" + "v" * 200, 400),
            ("/releases/{digest}?env=qa", 400),
            ("/releases/{digest}?env=" + "e" * 100, 400),
            ("/releases/{digest}?signed=abc", 400),
        ],
    )
    def test_malformed_requests_get_a_readable_4xx(
        self, shared_site: Site, path: str, status: int
    ) -> None:
        with shared_site.client() as client:
            sign_in(client, "audrey@example.org")
            response = client.get(path.replace("{digest}", shared_site.digest))
        assert response.status_code == status, response.text
        no_trace(response)

    def test_error_pages_are_html_and_say_what_to_do(self, shared_site: Site) -> None:
        with shared_site.client() as client:
            sign_in(client, "audrey@example.org")
            response = client.get("/releases/sha256:" + "f" * 64)
        assert response.headers["content-type"].startswith("text/html")
        assert "Not found" in response.text and "is registered" in response.text
        assert "What to do" in response.text

    def test_a_file_upload_to_a_form_is_refused(self, shared_site: Site) -> None:
        with shared_site.client() as client:
            sign_in(client, "alice@example.org")
            token = csrf_of(client.get("/").text)
            before = len(shared_site.entries())
            response = client.post(
                f"/releases/{shared_site.digest}/approvals",
                data={"csrf": token},
                files={"report": ("../../x.json", b"{}", "application/json")},
            )
        assert 400 <= response.status_code < 500
        no_trace(response)
        assert len(shared_site.entries()) == before


class TestPages:
    def test_search_finds_by_change_request_version_and_date(self, shared_site: Site) -> None:
        with shared_site.client() as client:
            sign_in(client, "audrey@example.org")
            by_cr = client.get("/search", params={"change_request": "CR-1042"}).text
            by_build = client.get("/search", params={"version": "7"}).text
            today = shared_site.entries()[0].at[:10]
            by_day = client.get("/search", params={"since": today, "until": today}).text
            none = client.get("/search", params={"until": "2000-01-01"}).text
        assert "portal.zip" in by_cr and "orders-api" not in by_cr
        assert "orders-api" in by_build and "portal.zip" not in by_build
        assert "portal.zip" in by_day and "orders-api" in by_day
        assert "0 results" in none

    def test_ledger_page_shows_the_checkpoint_and_verifies(self, shared_site: Site) -> None:
        with shared_site.client() as client:
            sign_in(client, "audrey@example.org")
            ledger = client.get("/ledger")
            assert "Latest signed checkpoint" in ledger.text
            assert "clearance.test/web" in ledger.text
            size = len(shared_site.entries())
            verified = client.post("/ledger/verify", data={"csrf": csrf_of(ledger.text)})
        assert verified.status_code == 200
        assert f"<strong>OK</strong>: {size} records verified" in verified.text
        assert len(shared_site.entries()) == size  # verifying writes nothing

    def test_unclassified_release_page_has_no_signing(self, shared_site: Site) -> None:
        with shared_site.client() as client:
            sign_in(client, "alice@example.org")
            page = client.get(f"/releases/{shared_site.unclassified}")
        assert page.status_code == 200
        assert "Registered without a classification" in page.text
        assert 'id="sign"' not in page.text

    def test_the_api_schema_does_not_list_the_pages(self, shared_site: Site) -> None:
        with shared_site.client() as client:
            paths = client.get("/openapi.json").json()["paths"]
        assert all(p.startswith("/api/v1/") for p in paths)

    def test_static_files_are_served(self, shared_site: Site) -> None:
        with shared_site.client() as client:
            css = client.get("/static/clearance.css")
        assert css.status_code == 200 and "--ink" in css.text
