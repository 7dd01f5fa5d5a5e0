"""Session cookies, the web secret, the password throttle and the error page, as units."""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from fastapi import APIRouter, FastAPI

from clearance.errors import InfrastructureError, NotFoundError
from clearance.web.routes import HtmlRoute, safe_next
from clearance.web.session import SECRET_FILE, Session, Sessions, load_secret
from clearance.web.throttle import Throttle
from tests.server.conftest import serving

NOW = datetime(2026, 11, 29, 17, 2, tzinfo=UTC)


class TestSessions:
    codec = Sessions(b"k" * 32)

    def test_round_trip(self) -> None:
        session = Session.signed_in("alice@example.org", NOW)
        assert self.codec.decode(self.codec.encode(session), NOW) == session
        anonymous = Session.anonymous(NOW)
        assert self.codec.decode(self.codec.encode(anonymous), NOW) == anonymous

    def test_tokens_are_fresh_per_session(self) -> None:
        assert Session.anonymous(NOW).csrf != Session.anonymous(NOW).csrf

    def test_expires_after_eight_hours(self) -> None:
        cookie = self.codec.encode(Session.signed_in("alice@example.org", NOW))
        assert self.codec.decode(cookie, NOW + timedelta(hours=7, minutes=59)) is not None
        assert self.codec.decode(cookie, NOW + timedelta(hours=8)) is None

    def test_another_key_does_not_accept_it(self) -> None:
        cookie = self.codec.encode(Session.signed_in("alice@example.org", NOW))
        assert Sessions(b"j" * 32).decode(cookie, NOW) is None

    @pytest.mark.parametrize(
        "cookie",
        [None, "", "abc", "a.b.c", "!!!.???", "e30.e30", "x" * 5000 + ".y"],
    )
    def test_garbage_is_no_session(self, cookie: str | None) -> None:
        assert self.codec.decode(cookie, NOW) is None

    def test_an_edited_payload_is_no_session(self) -> None:
        cookie = self.codec.encode(Session.signed_in("dana@example.org", NOW))
        forged = self.codec.encode(Session.signed_in("alice@example.org", NOW))
        mixed = forged.split(".")[0] + "." + cookie.split(".")[1]
        assert self.codec.decode(mixed, NOW) is None

    def test_csrf_comparison(self) -> None:
        session = Session.anonymous(NOW)
        assert session.csrf_matches(session.csrf)
        assert not session.csrf_matches(None)
        assert not session.csrf_matches("")
        assert not session.csrf_matches(session.csrf + "x")


class TestSecret:
    def test_created_once_and_private(self, tmp_path: Path) -> None:
        first = load_secret(tmp_path)
        path = tmp_path / "keys" / SECRET_FILE
        assert len(first) == 32 and stat.S_IMODE(os.stat(path).st_mode) == 0o600
        assert load_secret(tmp_path) == first
        assert [p.name for p in path.parent.iterdir()] == [SECRET_FILE]  # no temporary left

    def test_a_malformed_secret_is_an_error_that_says_what_to_do(self, tmp_path: Path) -> None:
        (tmp_path / "keys").mkdir()
        (tmp_path / "keys" / SECRET_FILE).write_text("not hex\n")
        with pytest.raises(InfrastructureError, match="malformed") as raised:
            load_secret(tmp_path)
        assert raised.value.hint and "delete the file" in raised.value.hint


class TestThrottle:
    def test_locks_after_the_limit_until_the_window_passes(self) -> None:
        throttle = Throttle(limit=3, window=60)
        for t in (0.0, 1.0, 2.0):
            assert throttle.wait("a", t) == 0
            throttle.failed("a", t)
        assert throttle.wait("a", 3.0) == 58
        assert throttle.wait("b", 3.0) == 0
        assert throttle.wait("a", 60.5) == 0  # the first failure left the window

    def test_success_clears(self) -> None:
        throttle = Throttle(limit=1, window=60)
        throttle.failed("a", 0.0)
        assert throttle.wait("a", 1.0) > 0
        throttle.succeeded("a")
        assert throttle.wait("a", 1.0) == 0


class TestRedirects:
    @pytest.mark.parametrize(
        ("target", "expected"),
        [
            ("/releases/sha256:ab?env=prod", "/releases/sha256:ab?env=prod"),
            (None, "/"),
            ("", "/"),
            ("releases", "/"),
            ("//evil.example", "/"),
            ("/\\evil.example", "/"),
            ("/<script>", "/"),
            ("https://evil.example/", "/"),
        ],
    )
    def test_only_local_paths(self, target: str | None, expected: str) -> None:
        assert safe_next(target) == expected


class TestErrorPages:
    @pytest.fixture
    def client(self) -> Iterator[httpx.Client]:
        router = APIRouter(route_class=HtmlRoute)

        @router.get("/boom")
        def boom() -> None:
            raise RuntimeError("secret internals at /srv/app.py line 12")

        @router.get("/missing")
        def missing() -> None:
            raise NotFoundError("no such thing", hint="run `clearance status`")

        app = FastAPI()
        app.include_router(router)
        with serving(app) as url, httpx.Client(base_url=url) as client:
            yield client

    def test_an_unexpected_failure_is_a_page_without_internals(
        self, client: httpx.Client, caplog: pytest.LogCaptureFixture
    ) -> None:
        with caplog.at_level(logging.ERROR, logger="clearance.web"):
            response = client.get("/boom")
        assert "secret internals" in caplog.text  # in the server's log, not the page
        assert response.status_code == 500
        assert response.headers["content-type"].startswith("text/html")
        assert "Something went wrong" in response.text
        assert "secret internals" not in response.text and "Traceback" not in response.text

    def test_our_errors_keep_their_status_and_hint(self, client: httpx.Client) -> None:
        response = client.get("/missing")
        assert response.status_code == 404
        assert "no such thing" in response.text
        assert "<code>clearance status</code>" in response.text
