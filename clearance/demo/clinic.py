"""Clinic: the sample clinical service the demo deploys, canary first, then ring by ring.

Standard library only and standalone: this file *is* the deployable artifact.
``clearance.demo.builds`` copies it with the two build constants below rewritten, the demo
registers the copy, and the deployer runs it as ``python clinic-<version>.py --port <port>``
(bound to 127.0.0.1). It must never import ``clearance``. Endpoints (JSON unless noted):

- ``GET /healthz``: 200 ``{"status": "ok", "version": VERSION}``;
- ``POST /login`` ``{"user", "password"}``: 200 ``{"token", "user", "expires_in"}``, 401 on an
  unknown user or a wrong password;
- ``POST /orders`` ``{"patient", "drug", "dose_mg", "route"}``: 201 ``{"order_id", ...}``; 422
  ``{"error": "validation", "field", "detail"}`` naming the first invalid field; 503 when the
  (simulated) formulary lookup times out;
- ``PUT /charts/{patient}`` ``{"note"}``: 200 ``{"patient", "revision"}`` after a few ms of
  work with a small random tail;
- ``POST /hl7``, an HL7 v2 message (text, segments separated by ``\\r``, MSH first): 200 with an
  ACK (text), ``MSA|AA|<control id>`` or ``MSA|AE|<control id>|<reason>`` plus an ERR segment;
  every AE pushes the counter ``hl7_ack_failed`` to ``CLEARANCE_PUSH_URL``;
- ``GET /fhir/Patient/{id}``: 200 a minimal synthetic FHIR R4 Patient (``application/fhir+json``).

Other answers share one shape: 400 ``bad_json``, 404 ``not_found``, 405 ``method_not_allowed``,
411 ``length_required``, 413 ``too_large``, 500 ``internal``.

Configuration is the environment the deployer passes, never baked into a build:
``CLEARANCE_PUSH_URL`` (http or https), ``CLEARANCE_SERVICE`` and ``CLEARANCE_SLOT`` (who
pushes), ``CLINIC_TIMEOUT_RATE`` (share of orders whose formulary lookup times out; default
0.008, the realistic baseline of order errors) and ``CLINIC_SEED`` (seeds the simulation).
Synthetic data only. Nothing is logged per request, and nothing secret is ever printed.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import hmac
import http.client
import json
import os
import random
import re
import secrets
import signal
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType
from typing import Any, NoReturn
from urllib.parse import urlsplit

# ---- Build constants: clearance.demo.builds rewrites these two lines to make a version. ----
VERSION = "1.4.2"
# BUG SWITCH. How a submitted dose is normalised before the order is stored:
#   "exact"    keeps the dose as submitted (the released, correct behaviour);
#   "whole-mg" is the faulty refactor: it parses the dose as whole milligrams, so decimal doses
#              (warfarin 2.5 mg, lorazepam 0.5 mg...) raise an unhandled ValueError and the
#              order fails with 500.
ORDER_DOSE_ROUNDING = "exact"
# ---------------------------------------------------------------------------------------------

MAX_BODY = 64 * 1024
DRAIN_LIMIT = 1024 * 1024
SESSION_SECONDS = 900
MAX_SESSIONS = 10_000
MAX_CHARTS = 10_000
PUSH_TIMEOUT = 0.5

#: Every synthetic clinician shares the demo password; only its PBKDF2 hash lives here.
USERS = frozenset({"dr.rivera", "dr.haddad", "nurse.okafor", "nurse.lind", "pharm.chen"})
_PASSWORD_SALT = b"clinic-demo-roster"
_PASSWORD_ROUNDS = 20_000
_PASSWORD_HASH = bytes.fromhex("0d0f8a59e3f89f8d093dfde91a574d0b3076bd6e96740fedfec665f28f5cc339")

#: drug -> (routes it may be given by, maximum single dose in mg).
FORMULARY: dict[str, tuple[frozenset[str], Decimal]] = {
    "amoxicillin": (frozenset({"oral", "iv"}), Decimal(1000)),
    "paracetamol": (frozenset({"oral", "iv", "rectal"}), Decimal(1000)),
    "ibuprofen": (frozenset({"oral"}), Decimal(800)),
    "ceftriaxone": (frozenset({"iv", "im"}), Decimal(2000)),
    "metformin": (frozenset({"oral"}), Decimal(1000)),
    "ondansetron": (frozenset({"oral", "iv"}), Decimal(8)),
    "enoxaparin": (frozenset({"subcutaneous"}), Decimal(150)),
    "morphine": (frozenset({"oral", "iv", "subcutaneous"}), Decimal(30)),
    "warfarin": (frozenset({"oral"}), Decimal(10)),
    "salbutamol": (frozenset({"inhaled"}), Decimal(5)),
    "lorazepam": (frozenset({"oral", "iv"}), Decimal(4)),
    "levothyroxine": (frozenset({"oral"}), Decimal("0.3")),
}

PATIENT_ID = re.compile(r"P[0-9]{1,9}")
SEGMENT_NAME = re.compile(r"[A-Z][A-Z0-9]{2}")
HL7_RESERVED = re.compile(r"[|^~\\&\r\n]")


class HttpError(Exception):
    """An answer other than success, rendered as ``{"error", "field"?, "detail"}``."""

    def __init__(
        self,
        status: int,
        error: str,
        detail: str,
        *,
        field: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.error = error
        self.detail = detail
        self.field = field
        self.headers = dict(headers or {})

    def body(self) -> dict[str, str]:
        field = {} if self.field is None else {"field": self.field}
        return {"error": self.error, **field, "detail": self.detail}


def invalid(field: str, detail: str) -> HttpError:
    return HttpError(422, "validation", detail, field=field)


@dataclass(frozen=True)
class Config:
    """The process configuration, read once from the environment at start-up."""

    push_url: str | None = None
    service: str | None = None
    slot: str | None = None
    timeout_rate: float = 0.008
    seed: int | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Config:
        push_url = env.get("CLEARANCE_PUSH_URL") or None
        if push_url is not None and urlsplit(push_url).scheme not in ("http", "https"):
            print("clinic: CLEARANCE_PUSH_URL ignored, it is not an http(s) URL", file=sys.stderr)
            push_url = None
        try:
            rate = float(env.get("CLINIC_TIMEOUT_RATE", "0.008"))
            seed = env.get("CLINIC_SEED")
            seeded = int(seed) if seed else None
        except ValueError as exc:
            raise SystemExit(
                f"clinic: CLINIC_TIMEOUT_RATE or CLINIC_SEED is invalid: {exc}"
            ) from None
        if not 0.0 <= rate <= 1.0:
            raise SystemExit(f"clinic: CLINIC_TIMEOUT_RATE must be within [0, 1], got {rate}")
        return cls(
            push_url=push_url,
            service=env.get("CLEARANCE_SERVICE") or None,
            slot=env.get("CLEARANCE_SLOT") or None,
            timeout_rate=rate,
            seed=seeded,
        )


# ---- Domain: pure functions, no I/O ----------------------------------------------------------


def password_ok(password: str) -> bool:
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), _PASSWORD_SALT, _PASSWORD_ROUNDS)
    return hmac.compare_digest(digest, _PASSWORD_HASH)


def validate_order(body: Mapping[str, Any]) -> tuple[str, str, Any, str]:
    """``(patient, drug, dose_mg, route)`` of a valid order; raises 422 naming the field."""
    patient = body.get("patient")
    if not isinstance(patient, str) or not PATIENT_ID.fullmatch(patient):
        raise invalid("patient", "patient must be a patient id such as P123")
    drug = body.get("drug")
    if not isinstance(drug, str) or drug.strip().lower() not in FORMULARY:
        raise invalid("drug", f"drug {drug!r} is not on the formulary")
    drug = drug.strip().lower()
    routes, max_dose = FORMULARY[drug]
    dose = body.get("dose_mg")
    if isinstance(dose, bool) or not isinstance(dose, int | float) or not dose > 0:
        raise invalid("dose_mg", "dose_mg must be a positive number of milligrams")
    if Decimal(str(dose)) > max_dose:
        raise invalid("dose_mg", f"dose_mg exceeds the maximum single dose of {max_dose} mg")
    route = body.get("route")
    if route not in routes:
        raise invalid("route", f"route must be one of {', '.join(sorted(routes))} for {drug}")
    return patient, drug, dose, str(route)


def normalise_dose(dose: int | float) -> Decimal:
    """The dose as stored, per the build's :data:`ORDER_DOSE_ROUNDING`."""
    if ORDER_DOSE_ROUNDING == "whole-mg":
        return Decimal(int(str(dose)))  # the bug: int("2.5") raises ValueError
    return Decimal(str(dose))


def hl7_ack(message: str, *, now: datetime, ack_id: str) -> tuple[bool, str]:
    """Check an HL7 v2 message; return ``(accepted, ACK message)``.

    Accepted means: MSH first, with its encoding characters, message type (MSH-9), control id
    (MSH-10) and version (MSH-12), followed by at least one well-named segment. The ACK is
    ``MSH`` + ``MSA|AA|<control id>``, or ``MSA|AE|<control id>|<reason>`` + ``ERR`` otherwise.
    """
    segments = [s for s in re.split(r"\r\n|\r|\n", message) if s.strip()]
    msh = _msh_fields(segments[0]) if segments else []
    problem = _hl7_problem(segments, msh)

    def field(number: int) -> str:
        return _hl7_clean(msh[number]) if len(msh) > number else ""

    kind = msh[9].split(msh[2][0]) if len(msh) > 9 and len(msh[2]) == 4 else []
    trigger = _hl7_clean(kind[1]) if len(kind) > 1 else ""
    header = [
        "MSH",
        "^~\\&",
        "CLINIC",
        "CLEARANCE-DEMO",
        field(3),
        field(4),
        now.strftime("%Y%m%d%H%M%S"),
        "",
        f"ACK^{trigger}^ACK" if trigger else "ACK",
        ack_id,
        "P",
        field(12) or "2.5",
    ]
    lines = ["|".join(header)]
    if problem is None:
        lines.append(f"MSA|AA|{field(10)}")
    else:
        location, code, text = problem
        lines.append(f"MSA|AE|{field(10)}|{text}")
        lines.append(f"ERR||{location}|{code}|E||||{text}")
    return problem is None, "\r".join(lines) + "\r"


def _msh_fields(segment: str) -> list[str]:
    """MSH's fields so that ``fields[n]`` is MSH-n (MSH-1 is the field separator itself)."""
    if not segment.startswith("MSH") or len(segment) < 8:
        return []
    fields = segment.split(segment[3])
    fields.insert(1, segment[3])
    return fields


def _hl7_problem(segments: list[str], msh: list[str]) -> tuple[str, str, str] | None:
    """``(ERR location, HL7 error code, reason)`` of the first problem, or None."""
    sequence, missing = "100^Segment sequence error^HL70357", "101^Required field missing^HL70357"
    if not msh:
        return "MSH^1", sequence, "the message must start with an MSH segment"
    if len(msh[2]) != 4:
        return "MSH^1^2", "102^Data type error^HL70357", "MSH-2 (encoding characters) is invalid"
    for number, name in ((9, "message type"), (10, "message control id"), (12, "version id")):
        if len(msh) <= number or not msh[number].strip():
            return f"MSH^1^{number}", missing, f"MSH-{number} ({name}) is missing"
    if len(segments) < 2:
        return "MSH^1", sequence, "the message has no segment after MSH"
    for index, segment in enumerate(segments[1:], start=2):
        if not SEGMENT_NAME.fullmatch(segment[:3]) or segment[3:4] not in ("", msh[1]):
            return f"{index}", sequence, f"segment {index} does not start with a segment name"
    return None


def _hl7_clean(value: str) -> str:
    """A value safe to echo inside an ACK field: no separators, bounded length."""
    return HL7_RESERVED.sub(" ", value)[:200]


def fhir_patient(patient_id: str) -> dict[str, Any]:
    """A minimal, synthetic and stable FHIR R4 Patient for ``patient_id``."""
    seed = int.from_bytes(hashlib.sha256(patient_id.encode()).digest()[:8], "big")
    family = ("Okafor", "Rivera", "Lindqvist", "Haddad", "Chen", "Moreau", "Tanaka")
    given = ("Ada", "Noor", "Mateo", "Ines", "Kofi", "Yuki", "Elin", "Omar")
    return {
        "resourceType": "Patient",
        "id": patient_id,
        "identifier": [{"system": "urn:clinic:mrn", "value": patient_id}],
        "active": True,
        "name": [
            {
                "use": "official",
                "family": family[seed % len(family)],
                "given": [given[(seed >> 8) % len(given)]],
            }
        ],
        "gender": ("female", "male", "other", "unknown")[(seed >> 16) % 4],
        "birthDate": f"{1940 + (seed >> 20) % 80}-{1 + (seed >> 28) % 12:02d}-"
        f"{1 + (seed >> 32) % 28:02d}",
        "meta": {"tag": [{"system": "urn:clinic", "code": "synthetic"}]},
    }


# ---- State and adapters ----------------------------------------------------------------------


class Clinic:
    """The service's state: sessions, orders, chart revisions; simulated work and timeouts."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.lock = threading.Lock()
        self.rng = random.Random(config.seed)  # noqa: S311 - simulation, not security
        self.sessions: dict[str, tuple[str, float]] = {}
        self.orders = 0
        self.charts: dict[str, int] = {}
        self.acks = 0

    def uniform(self, low: float, high: float) -> float:
        with self.lock:
            return self.rng.uniform(low, high)

    def chance(self, probability: float) -> bool:
        with self.lock:
            return self.rng.random() < probability

    def login(self, body: Mapping[str, Any]) -> dict[str, Any]:
        user, password = body.get("user"), body.get("password")
        if not isinstance(user, str) or not user:
            raise invalid("user", "user is required")
        if not isinstance(password, str):
            raise invalid("password", "password is required")
        if not password_ok(password) or user not in USERS:
            raise HttpError(401, "unauthorized", "unknown user or wrong password")
        token = secrets.token_urlsafe(24)
        with self.lock:
            if len(self.sessions) >= MAX_SESSIONS:
                del self.sessions[next(iter(self.sessions))]
            self.sessions[token] = (user, time.monotonic() + SESSION_SECONDS)
        return {"token": token, "user": user, "expires_in": SESSION_SECONDS}

    def order(self, body: Mapping[str, Any]) -> dict[str, Any]:
        patient, drug, dose, route = validate_order(body)
        stored = normalise_dose(dose)
        time.sleep(self.uniform(0.0005, 0.002))  # the formulary lookup
        if self.chance(self.config.timeout_rate):
            raise HttpError(
                503,
                "formulary_timeout",
                "the formulary lookup timed out; retry the order",
                headers={"Retry-After": "1"},
            )
        with self.lock:
            self.orders += 1
            number = self.orders
        return {
            "order_id": f"ORD-{number:06d}",
            "patient": patient,
            "drug": drug,
            "dose": f"{stored} mg",
            "route": route,
            "status": "accepted",
        }

    def save_chart(self, patient: str, body: Mapping[str, Any]) -> dict[str, Any]:
        if not PATIENT_ID.fullmatch(patient):
            raise invalid("patient", "patient must be a patient id such as P123")
        note = body.get("note")
        if not isinstance(note, str) or not note.strip():
            raise invalid("note", "note must be a non-empty text")
        if len(note) > 10_000:
            raise invalid("note", "note is longer than 10000 characters")
        work = self.uniform(0.002, 0.006)
        if self.chance(0.05):
            work += self.uniform(0.010, 0.040)  # the tail: index refresh, a slow disk
        time.sleep(work)
        with self.lock:
            if patient not in self.charts and len(self.charts) >= MAX_CHARTS:
                del self.charts[next(iter(self.charts))]
            revision = self.charts.get(patient, 0) + 1
            self.charts[patient] = revision
        return {"patient": patient, "revision": revision, "saved": True}

    def hl7(self, message: str) -> tuple[bool, str]:
        with self.lock:
            self.acks += 1
            ack_id = f"CLN{self.acks:08d}"
        accepted, ack = hl7_ack(message, now=datetime.now(UTC), ack_id=ack_id)
        if not accepted:
            self.push("hl7_ack_failed", 1)
        return accepted, ack

    def push(self, counter: str, value: int) -> None:
        """Send an app counter to the push URL, if any; a failed push is ignored."""
        if self.config.push_url is None:
            return
        payload = {
            "service": self.config.service,
            "slot": self.config.slot,
            "counter": counter,
            "value": value,
        }
        request = urllib.request.Request(  # noqa: S310 - the scheme is checked in Config
            self.config.push_url,
            data=json.dumps(payload).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with (
            contextlib.suppress(OSError, ValueError, http.client.HTTPException),
            urllib.request.urlopen(request, timeout=PUSH_TIMEOUT) as response,  # noqa: S310
        ):
            response.read()


Route = tuple[str, re.Pattern[str], str]
ROUTES: tuple[Route, ...] = (
    ("GET", re.compile(r"/healthz"), "healthz"),
    ("POST", re.compile(r"/login"), "login"),
    ("POST", re.compile(r"/orders"), "orders"),
    ("PUT", re.compile(r"/charts/(?P<arg>[^/]+)"), "charts"),
    ("POST", re.compile(r"/hl7"), "hl7"),
    ("GET", re.compile(r"/fhir/Patient/(?P<arg>[^/]+)"), "fhir_patient"),
)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in two writes: no 40 ms stall
    server_version = f"clinic/{VERSION}"
    sys_version = ""
    server: ClinicServer

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: nothing is logged per request."""

    def do_GET(self) -> None:
        self.dispatch("GET")

    def do_POST(self) -> None:
        self.dispatch("POST")

    def do_PUT(self) -> None:
        self.dispatch("PUT")

    def do_DELETE(self) -> None:
        self.dispatch("DELETE")

    def dispatch(self, method: str) -> None:
        path = urlsplit(self.path).path
        try:
            matches = [(m, r.fullmatch(path), name) for m, r, name in ROUTES]
            found = [(m, match, name) for m, match, name in matches if match]
            if not found:
                raise HttpError(404, "not_found", f"no resource at {path}")
            for route_method, match, name in found:
                if route_method == method:
                    handler: Callable[[str], None] = getattr(self, f"on_{name}")
                    handler(match.groupdict().get("arg", ""))
                    return
            allowed = ", ".join(sorted({m for m, _, _ in found}))
            raise HttpError(405, "method_not_allowed", f"use {allowed}", headers={"Allow": allowed})
        except HttpError as exc:
            self.send_json(exc.status, exc.body(), exc.headers)
        except Exception:  # any bug in a handler is a 500, never a dropped connection
            self.send_json(500, {"error": "internal", "detail": "internal server error"})

    # -- endpoints

    def on_healthz(self, _: str) -> None:
        self.send_json(200, {"status": "ok", "version": VERSION})

    def on_login(self, _: str) -> None:
        self.send_json(200, self.server.clinic.login(self.read_json()))

    def on_orders(self, _: str) -> None:
        self.send_json(201, self.server.clinic.order(self.read_json()))

    def on_charts(self, patient: str) -> None:
        self.send_json(200, self.server.clinic.save_chart(patient, self.read_json()))

    def on_hl7(self, _: str) -> None:
        try:
            message = self.read_body().decode("utf-8")
        except UnicodeDecodeError:
            message = ""
        ack = self.server.clinic.hl7(message)[1]
        self.send(200, ack.encode(), "text/plain; charset=utf-8")

    def on_fhir_patient(self, patient_id: str) -> None:
        if not PATIENT_ID.fullmatch(patient_id):
            outcome = {
                "resourceType": "OperationOutcome",
                "issue": [{"severity": "error", "code": "not-found", "diagnostics": "unknown"}],
            }
            self.send(404, json.dumps(outcome).encode(), "application/fhir+json")
            return
        body = json.dumps(fhir_patient(patient_id)).encode()
        self.send(200, body, "application/fhir+json")

    # -- plumbing

    def read_body(self) -> bytes:
        length = self.headers.get("Content-Length")
        if length is None or not length.isdigit():
            self.close_connection = True
            raise HttpError(411, "length_required", "send a Content-Length")
        if int(length) > MAX_BODY:
            if int(length) <= DRAIN_LIMIT:
                self.rfile.read(int(length))  # read it, so the answer is not lost to a reset
            else:
                self.close_connection = True
            raise HttpError(413, "too_large", f"the body exceeds {MAX_BODY} bytes")
        return self.rfile.read(int(length))

    def read_json(self) -> dict[str, Any]:
        raw = self.read_body()
        try:
            body = json.loads(raw)
        except ValueError:
            raise HttpError(400, "bad_json", "the body is not valid JSON") from None
        if not isinstance(body, dict):
            raise HttpError(400, "bad_json", "the body must be a JSON object")
        return body

    def send_json(
        self, status: int, body: Mapping[str, Any], headers: Mapping[str, str] | None = None
    ) -> None:
        self.send(status, json.dumps(body).encode(), "application/json", headers)

    def send(
        self,
        status: int,
        body: bytes,
        content_type: str,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)


class ClinicServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, port: int, clinic: Clinic) -> None:
        super().__init__(("127.0.0.1", port), Handler)
        self.clinic = clinic

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Quiet: a client that went away is not worth a traceback."""


def _terminate(signum: int, frame: FrameType | None) -> NoReturn:
    raise SystemExit(0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=f"Clinic {VERSION}, a sample clinical service.")
    parser.add_argument("--port", type=int, required=True, help="port to listen on (127.0.0.1)")
    args = parser.parse_args(argv)
    server = ClinicServer(args.port, Clinic(Config.from_env(os.environ)))
    signal.signal(signal.SIGTERM, _terminate)
    print(f"clinic {VERSION} listening on http://127.0.0.1:{server.server_port}", flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
