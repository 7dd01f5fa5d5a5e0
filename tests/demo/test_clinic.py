"""The sample clinical service, built by ``builds.build_clinic`` and run as a real process.

Every endpoint is checked over loopback HTTP against the built file, the way the deployer runs
it (``python clinic-<version>.py --port P``); the HL7 counter push goes to a real loopback server
standing in for the router's push URL.
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from clearance.demo import clinic
from clearance.demo.builds import FAULTY_ROUNDING, build_clinic, rewrite
from clearance.demo.traffic import DEMO_PASSWORD
from clearance.errors import InputError

GOOD, FAULTY = "1.4.2", "1.5.0"
ORDER = {"patient": "P123", "drug": "amoxicillin", "dose_mg": 500, "route": "oral"}
ADT = "\r".join(
    [
        "MSH|^~\\&|EHR|ST-MARYS|CLINIC|CLEARANCE|20261102093000||ADT^A08^ADT_A01|MSG00000042|P|2.5",
        "EVN|A08|20261102093000",
        "PID|1||P123^^^ST-MARYS^MR||Synthetic^Patient||19700101|U",
    ]
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class Running:
    url: str
    proc: subprocess.Popen[bytes]
    log: Path


@contextmanager
def running(path: Path, log: Path, env: Mapping[str, str] | None = None) -> Iterator[Running]:
    """The built clinic at ``path`` as a real process on a free port, until healthy; stopped
    (SIGTERM) on exit. Its stdout and stderr go to ``log``."""
    port = free_port()
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("CLEARANCE_", "CLINIC_"))}
    environ.update(env or {})
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, str(path), "--port", str(port)],
            env=environ,
            cwd=log.parent,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                httpx.get(url + "/healthz", timeout=1)
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError(f"{path.name} did not start: {log.read_text()}") from None
                time.sleep(0.03)
        yield Running(url, proc, log)
    finally:
        proc.terminate()
        proc.wait(10)


class PushServer:
    """A real loopback HTTP server standing in for the push URL: it records every JSON body."""

    def __init__(self) -> None:
        received: list[dict[str, Any]] = []
        self.received = received

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
                self.send_response(204)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/push"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> PushServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def builds(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    dest = tmp_path_factory.mktemp("builds")
    return {
        GOOD: build_clinic(GOOD, faulty=False, dest_dir=dest),
        FAULTY: build_clinic(FAULTY, faulty=True, dest_dir=dest),
    }


@pytest.fixture(scope="module")
def push() -> Iterator[PushServer]:
    with PushServer() as server:
        yield server


@pytest.fixture(scope="module")
def good(
    builds: dict[str, Path], push: PushServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Running]:
    env = {
        "CLEARANCE_PUSH_URL": push.url,
        "CLEARANCE_SERVICE": "clinic",
        "CLEARANCE_SLOT": "canary",
        "CLINIC_TIMEOUT_RATE": "0",
    }
    with running(builds[GOOD], tmp_path_factory.mktemp("good") / "clinic.log", env) as proc:
        yield proc


@pytest.fixture(scope="module")
def faulty(builds: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    # Nobody listens at the push URL: a failed push must not fail the acknowledgement.
    env = {"CLEARANCE_PUSH_URL": f"http://127.0.0.1:{free_port()}/push", "CLINIC_TIMEOUT_RATE": "0"}
    with running(builds[FAULTY], tmp_path_factory.mktemp("faulty") / "clinic.log", env) as proc:
        yield proc


def post(url: str, path: str, body: object) -> httpx.Response:
    return httpx.post(url + path, json=body, timeout=5)


class TestBuild:
    def test_a_build_rewrites_only_the_version_and_the_bug_switch(
        self, builds: dict[str, Path]
    ) -> None:
        good, bad = builds[GOOD].read_text(), builds[FAULTY].read_text()
        assert builds[GOOD].name == "clinic-1.4.2.py"
        assert 'VERSION = "1.4.2"' in good and 'ORDER_DOSE_ROUNDING = "exact"' in good
        assert 'VERSION = "1.5.0"' in bad
        assert f'ORDER_DOSE_ROUNDING = "{FAULTY_ROUNDING}"' in bad
        changed = [
            (a, b) for a, b in zip(good.splitlines(), bad.splitlines(), strict=True) if a != b
        ]
        assert len(changed) == 2

    def test_the_same_version_builds_the_same_bytes(self, tmp_path: Path) -> None:
        first = build_clinic("2.0.0", faulty=True, dest_dir=tmp_path / "a").read_bytes()
        again = build_clinic("2.0.0", faulty=True, dest_dir=tmp_path / "b").read_bytes()
        assert hashlib.sha256(first).digest() == hashlib.sha256(again).digest()

    @pytest.mark.parametrize("version", ["", '1.0"; import os #', "1.0\n", "../1.0"])
    def test_refuses_a_version_that_could_break_the_source(
        self, version: str, tmp_path: Path
    ) -> None:
        with pytest.raises(InputError, match="is not a version"):
            build_clinic(version, faulty=False, dest_dir=tmp_path)
        assert not list(tmp_path.iterdir())

    def test_refuses_a_source_without_exactly_one_of_each_constant(self) -> None:
        source = Path(clinic.__file__).read_text()
        with pytest.raises(InputError, match="VERSION 2 times"):
            rewrite(source + 'VERSION = "9.9.9"\n', "1.0", faulty=False)
        with pytest.raises(InputError, match=r"ORDER_DOSE_ROUNDING.* 0 times"):
            rewrite('VERSION = "1"\n', "1.0", faulty=True)

    def test_the_artifact_imports_the_standard_library_only(self, builds: dict[str, Path]) -> None:
        tree = ast.parse(builds[FAULTY].read_text())
        modules = {
            (node.module or "") if isinstance(node, ast.ImportFrom) else alias.name
            for node in ast.walk(tree)
            if isinstance(node, ast.Import | ast.ImportFrom)
            for alias in node.names
        }
        roots = {name.split(".")[0] for name in modules}
        assert roots <= sys.stdlib_module_names | {"__future__"}, roots - sys.stdlib_module_names


class TestHealth:
    def test_reports_the_built_version(self, good: Running, faulty: Running) -> None:
        assert httpx.get(good.url + "/healthz").json() == {"status": "ok", "version": GOOD}
        assert httpx.get(faulty.url + "/healthz").json() == {"status": "ok", "version": FAULTY}


class TestLogin:
    def test_the_demo_password_opens_a_session(self, good: Running) -> None:
        response = post(good.url, "/login", {"user": "dr.rivera", "password": DEMO_PASSWORD})
        assert response.status_code == 200
        body = response.json()
        assert body["user"] == "dr.rivera" and len(body["token"]) >= 24
        assert body["expires_in"] == 900

    @pytest.mark.parametrize(
        "body",
        [
            {"user": "dr.rivera", "password": DEMO_PASSWORD + "x"},
            {"user": "mallory", "password": DEMO_PASSWORD},
        ],
    )
    def test_a_wrong_password_or_user_is_401(self, good: Running, body: dict[str, str]) -> None:
        response = post(good.url, "/login", body)
        assert response.status_code == 401
        assert response.json()["error"] == "unauthorized"

    def test_a_missing_password_is_422_naming_it(self, good: Running) -> None:
        response = post(good.url, "/login", {"user": "dr.rivera"})
        assert response.status_code == 422
        assert response.json()["field"] == "password"


class TestOrders:
    def test_a_valid_order_is_accepted(self, good: Running) -> None:
        response = post(good.url, "/orders", ORDER)
        assert response.status_code == 201
        body = response.json()
        assert body["order_id"].startswith("ORD-") and body["status"] == "accepted"
        assert body["dose"] == "500 mg"

    @pytest.mark.parametrize(
        ("change", "field"),
        [
            ({"patient": "123"}, "patient"),
            ({"patient": None}, "patient"),
            ({"drug": "amoxycillin"}, "drug"),
            ({"dose_mg": 0}, "dose_mg"),
            ({"dose_mg": "500"}, "dose_mg"),
            ({"dose_mg": True}, "dose_mg"),
            ({"dose_mg": 5000}, "dose_mg"),
            ({"route": "inhaled"}, "route"),
            ({"route": None}, "route"),
        ],
    )
    def test_an_invalid_field_is_422_naming_it(
        self, good: Running, change: dict[str, object], field: str
    ) -> None:
        response = post(good.url, "/orders", {**ORDER, **change})
        assert response.status_code == 422
        assert response.json()["error"] == "validation"
        assert response.json()["field"] == field

    def test_a_decimal_dose_fails_with_500_in_the_faulty_build_only(
        self, good: Running, faulty: Running
    ) -> None:
        warfarin = {"patient": "P7", "drug": "warfarin", "dose_mg": 2.5, "route": "oral"}
        assert post(good.url, "/orders", warfarin).status_code == 201
        response = post(faulty.url, "/orders", warfarin)
        assert response.status_code == 500
        assert response.json() == {"error": "internal", "detail": "internal server error"}
        assert post(faulty.url, "/orders", ORDER).status_code == 201

    def test_a_formulary_timeout_is_503_with_retry_after(
        self, builds: dict[str, Path], tmp_path: Path
    ) -> None:
        with running(builds[GOOD], tmp_path / "clinic.log", {"CLINIC_TIMEOUT_RATE": "1"}) as proc:
            response = post(proc.url, "/orders", ORDER)
            assert response.status_code == 503
            assert response.json()["error"] == "formulary_timeout"
            assert response.headers["Retry-After"] == "1"
            proc.proc.terminate()
            assert proc.proc.wait(10) == 0  # SIGTERM is a clean stop


class TestCharts:
    def test_a_note_is_saved_as_a_new_revision(self, good: Running) -> None:
        first = httpx.put(good.url + "/charts/P900", json={"note": "BP 120/80"})
        second = httpx.put(good.url + "/charts/P900", json={"note": "HR 72"})
        assert first.status_code == second.status_code == 200
        revision = first.json()["revision"] + 1
        assert second.json() == {"patient": "P900", "revision": revision, "saved": True}

    @pytest.mark.parametrize(
        ("path", "body", "field"),
        [("/charts/P1", {"note": " "}, "note"), ("/charts/bob", {"note": "x"}, "patient")],
    )
    def test_an_invalid_save_is_422_naming_the_field(
        self, good: Running, path: str, body: dict[str, str], field: str
    ) -> None:
        response = httpx.put(good.url + path, json=body)
        assert response.status_code == 422
        assert response.json()["field"] == field

    def test_saving_takes_a_few_milliseconds(self, good: Running) -> None:
        with httpx.Client(base_url=good.url) as client:
            times = []
            for _ in range(20):
                began = time.perf_counter()
                client.put("/charts/P901", json={"note": "stable"}).raise_for_status()
                times.append(time.perf_counter() - began)
        assert 0.002 <= statistics.median(times) < 0.05


class TestHl7:
    def test_a_valid_message_is_acknowledged_aa(self, good: Running, push: PushServer) -> None:
        before = len(push.received)
        response = httpx.post(good.url + "/hl7", content=ADT.encode())
        assert response.status_code == 200
        segments = response.text.rstrip("\r").split("\r")
        assert segments[0].startswith("MSH|^~\\&|CLINIC|CLEARANCE-DEMO|EHR|ST-MARYS|")
        assert "|ACK^A08^ACK|" in segments[0]
        assert segments[1] == "MSA|AA|MSG00000042"
        assert len(push.received) == before

    @pytest.mark.parametrize(
        ("message", "reason"),
        [
            (ADT.split("\r", 1)[1], "must start with an MSH"),
            (ADT.replace("|MSG00000042|", "||"), "MSH-10"),
            (ADT.split("\r", 1)[0], "no segment after MSH"),
            (ADT + "\r##garbled##", "segment 4"),
            ("", "must start with an MSH"),
        ],
    )
    def test_a_malformed_message_is_acknowledged_ae_and_counted(
        self, good: Running, push: PushServer, message: str, reason: str
    ) -> None:
        before = len(push.received)
        response = httpx.post(good.url + "/hl7", content=message.encode())
        assert response.status_code == 200
        msa = response.text.split("\r")[1]
        assert msa.startswith("MSA|AE|") and reason in msa
        assert push.received[before:] == [
            {"service": "clinic", "slot": "canary", "counter": "hl7_ack_failed", "value": 1}
        ]

    def test_an_unreachable_push_url_does_not_fail_the_ack(self, faulty: Running) -> None:
        response = httpx.post(faulty.url + "/hl7", content=b"\xff\xfe not utf-8", timeout=2)
        assert response.status_code == 200
        assert response.text.split("\r")[1].startswith("MSA|AE||")


class TestFhir:
    def test_a_patient_is_a_stable_fhir_resource(self, good: Running) -> None:
        response = httpx.get(good.url + "/fhir/Patient/P123")
        assert response.status_code == 200
        assert response.headers["Content-Type"] == "application/fhir+json"
        patient = response.json()
        assert patient["resourceType"] == "Patient" and patient["id"] == "P123"
        assert patient["name"][0]["family"] and patient["birthDate"]
        assert httpx.get(good.url + "/fhir/Patient/P123").json() == patient

    def test_an_unknown_patient_is_a_404_operation_outcome(self, good: Running) -> None:
        response = httpx.get(good.url + "/fhir/Patient/nobody")
        assert response.status_code == 404
        assert response.json()["resourceType"] == "OperationOutcome"


class TestHttp:
    @pytest.mark.parametrize(
        ("method", "path", "content", "status", "error"),
        [
            ("GET", "/nowhere", None, 404, "not_found"),
            ("GET", "/orders", None, 405, "method_not_allowed"),
            ("POST", "/orders", b"{not json", 400, "bad_json"),
            ("POST", "/orders", b"[1, 2]", 400, "bad_json"),
            ("POST", "/orders", b"x" * (65 * 1024), 413, "too_large"),
        ],
    )
    def test_errors_share_one_json_shape(
        self, good: Running, method: str, path: str, content: bytes | None, status: int, error: str
    ) -> None:
        response = httpx.request(method, good.url + path, content=content)
        assert response.status_code == status
        assert response.json() == {"error": error, "detail": response.json()["detail"]}

    def test_nothing_is_logged_per_request(self, good: Running) -> None:
        post(good.url, "/login", {"user": "dr.rivera", "password": DEMO_PASSWORD})
        post(good.url, "/orders", {**ORDER, "route": "nasal"})
        httpx.get(good.url + "/nowhere")
        log = good.log.read_text()
        assert log.splitlines() == [f"clinic {GOOD} listening on {good.url}"]
