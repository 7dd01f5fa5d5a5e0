"""Synthetic clinician traffic on loopback: the load a canary is judged under.

:func:`plan` is the request sequence, pure and seeded: the same seed and tenants always give the
same requests. Per request: login 10% (5% of them with a mistyped password: 401), order
submission 40% (7% with a decimal dose such as warfarin 2.5 mg, 2% invalid: 422), chart save
35%, HL7 v2 message 10% (3% of them malformed: an AE acknowledgement) and FHIR Patient read 5%,
each with the tenant header (``X-Tenant``) of a seeded choice of tenants.

:class:`Traffic` sends that sequence to a URL (the router, or one service directly) at a fixed
rate from a background thread. Pacing is open-loop: request *n* is due at ``start + n / rate``
whether or not earlier answers came back, so slow answers do not slow the load down. Outcomes
are counted by the slot that answered, as the router reports it in ``X-Clearance-Slot``;
answers without that header (the service called directly) and requests that got no answer
(refused, reset, timed out: *connection errors*, counted, never raised) count under
:data:`NO_SLOT`.
"""

from __future__ import annotations

import asyncio
import json
import random
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from types import TracebackType
from typing import TypedDict
from urllib.parse import urlsplit

import httpx

from clearance.deploy import TENANT_HEADER

__all__ = [
    "DEMO_PASSWORD",
    "MIX",
    "NO_SLOT",
    "SLOT_HEADER",
    "Counts",
    "Kind",
    "Request",
    "Stats",
    "Traffic",
    "plan",
]

SLOT_HEADER = "X-Clearance-Slot"
NO_SLOT = "none"
#: The synthetic clinicians' shared password: public by design, it guards synthetic data only.
DEMO_PASSWORD = "rounds-at-dawn"  # noqa: S105
USERS = ("dr.rivera", "dr.haddad", "nurse.okafor", "nurse.lind", "pharm.chen")


class Kind(StrEnum):
    LOGIN = "login"
    ORDER = "order"
    CHART = "chart"
    HL7 = "hl7"
    FHIR = "fhir"


MIX: dict[Kind, float] = {
    Kind.LOGIN: 0.10,
    Kind.ORDER: 0.40,
    Kind.CHART: 0.35,
    Kind.HL7: 0.10,
    Kind.FHIR: 0.05,
}
WRONG_PASSWORD_SHARE = 0.05
DECIMAL_DOSE_SHARE = 0.07
INVALID_ORDER_SHARE = 0.02
MALFORMED_HL7_SHARE = 0.03

#: (drug, dose in mg, route): everyday orders, in whole milligrams.
WHOLE_DOSES = (
    ("amoxicillin", 500, "oral"),
    ("amoxicillin", 1000, "iv"),
    ("paracetamol", 1000, "oral"),
    ("paracetamol", 500, "oral"),
    ("ibuprofen", 400, "oral"),
    ("ceftriaxone", 1000, "iv"),
    ("metformin", 500, "oral"),
    ("ondansetron", 4, "iv"),
    ("enoxaparin", 40, "subcutaneous"),
    ("morphine", 10, "oral"),
)
#: Orders whose usual dose is not a whole number of milligrams.
DECIMAL_DOSES = (
    ("warfarin", 2.5, "oral"),
    ("salbutamol", 2.5, "inhaled"),
    ("lorazepam", 0.5, "iv"),
    ("levothyroxine", 0.075, "oral"),
    ("morphine", 2.5, "subcutaneous"),
)
#: Orders a clinician gets wrong, and the clinic rejects (422).
INVALID_ORDERS: tuple[dict[str, object], ...] = (
    {"drug": "amoxycillin", "dose_mg": 500, "route": "oral"},  # misspelt
    {"drug": "paracetamol", "dose_mg": 0, "route": "oral"},
    {"drug": "ibuprofen", "dose_mg": 4000, "route": "oral"},  # a slipped zero
    {"drug": "ceftriaxone", "dose_mg": 1000},  # no route
)
NOTES = (
    "BP {sys}/{dia}, HR {hr}, afebrile. Plan: continue current regimen.",
    "Reviewed on rounds. Pain {pain}/10, mobilising with assistance. HR {hr}.",
    "Post-op day {day}: wound clean and dry, BP {sys}/{dia}. Diet as tolerated.",
    "Family updated by phone. Observations stable, SpO2 {spo2}% on room air.",
)
_HL7_RESERVED = str.maketrans({c: "-" for c in "|^~\\&\r\n"})


@dataclass(frozen=True)
class Request:
    """One planned request. ``variant`` says what is special about it ("" for nothing)."""

    kind: Kind
    method: str
    path: str
    tenant: str
    body: bytes = b""
    content_type: str = "application/json"
    variant: str = ""


def plan(seed: int, tenants: Sequence[str]) -> Iterator[Request]:
    """The endless request sequence for ``seed`` and ``tenants``, the same on every call."""
    if not tenants:
        raise ValueError("traffic needs at least one tenant")
    rng = random.Random(seed)  # noqa: S311 - synthetic load, not security
    kinds, weights = list(MIX), list(MIX.values())
    number = 0
    while True:
        number += 1
        tenant = rng.choice(tenants)
        kind = rng.choices(kinds, weights)[0]
        if kind is Kind.LOGIN:
            yield _login(rng, tenant)
        elif kind is Kind.ORDER:
            yield _order(rng, tenant)
        elif kind is Kind.CHART:
            yield _chart(rng, tenant)
        elif kind is Kind.HL7:
            yield _hl7(rng, tenant, number)
        else:
            patient = f"P{rng.randint(100, 999)}"
            yield Request(Kind.FHIR, "GET", f"/fhir/Patient/{patient}", tenant)


def _json(kind: Kind, method: str, path: str, tenant: str, body: object, variant: str) -> Request:
    return Request(kind, method, path, tenant, json.dumps(body).encode(), variant=variant)


def _login(rng: random.Random, tenant: str) -> Request:
    wrong = rng.random() < WRONG_PASSWORD_SHARE
    password = DEMO_PASSWORD[:-1] if wrong else DEMO_PASSWORD
    body = {"user": rng.choice(USERS), "password": password}
    return _json(Kind.LOGIN, "POST", "/login", tenant, body, "wrong-password" if wrong else "")


def _order(rng: random.Random, tenant: str) -> Request:
    patient = f"P{rng.randint(100, 999)}"
    draw = rng.random()
    if draw < DECIMAL_DOSE_SHARE:
        drug, dose, route = rng.choice(DECIMAL_DOSES)
        body: dict[str, object] = {"drug": drug, "dose_mg": dose, "route": route}
        variant = "decimal-dose"
    elif draw < DECIMAL_DOSE_SHARE + INVALID_ORDER_SHARE:
        body, variant = dict(rng.choice(INVALID_ORDERS)), "invalid"
    else:
        drug, whole, route = rng.choice(WHOLE_DOSES)
        body, variant = {"drug": drug, "dose_mg": whole, "route": route}, ""
    return _json(Kind.ORDER, "POST", "/orders", tenant, {"patient": patient, **body}, variant)


def _chart(rng: random.Random, tenant: str) -> Request:
    note = rng.choice(NOTES).format(
        sys=rng.randint(100, 160),
        dia=rng.randint(60, 95),
        hr=rng.randint(55, 110),
        pain=rng.randint(0, 7),
        day=rng.randint(1, 5),
        spo2=rng.randint(93, 99),
    )
    path = f"/charts/P{rng.randint(100, 999)}"
    return _json(Kind.CHART, "PUT", path, tenant, {"note": note}, "")


def _hl7(rng: random.Random, tenant: str, number: int) -> Request:
    patient = f"P{rng.randint(100, 999)}"
    control = f"MSG{number:08d}"
    stamp = f"202611{rng.randint(1, 28):02d}{rng.randint(0, 23):02d}{rng.randint(0, 59):02d}00"
    facility = tenant.translate(_HL7_RESERVED)
    event, structure = rng.choice((("ADT^A08", "ADT_A01"), ("ADT^A01", "ADT_A01")))
    segments = [
        f"MSH|^~\\&|EHR|{facility}|CLINIC|CLEARANCE|{stamp}||{event}^{structure}|{control}|P|2.5",
        f"EVN|{event[4:]}|{stamp}",
        f"PID|1||{patient}^^^{facility}^MR||Synthetic^Patient||19700101|U",
        "PV1|1|I|WARD1^101^A",
    ]
    variant = ""
    if rng.random() < MALFORMED_HL7_SHARE:
        variant = "malformed"
        broken = rng.randrange(3)
        if broken == 0:
            segments = segments[1:]  # MSH lost by the interface engine
        elif broken == 1:
            segments[0] = segments[0].replace(f"|{control}|", "||")  # no control id
        else:
            segments = [segments[0], "##garbled##"]
    body = "\r".join(segments).encode()
    return Request(Kind.HL7, "POST", "/hl7", tenant, body, "text/plain", variant)


Counts = TypedDict(
    "Counts",
    {
        "requests": int,
        "2xx": int,
        "4xx": int,
        "5xx": int,
        "connection_errors": int,
        "p50_ms": float | None,
        "p95_ms": float | None,
    },
)


class Stats(TypedDict):
    """What :meth:`Traffic.stats` reports.

    ``sent`` requests went out, ``dropped`` more came due while ``max_in_flight`` were waiting
    (so ``sent + dropped`` is how far into :func:`plan` the run got); ``rate`` is ``sent`` per
    second over ``elapsed_s``, the sending time. In every :data:`Counts`, ``requests`` counts
    finished requests (an answer or a connection error): ``sent - totals["requests"]`` are
    still in flight. ``by_slot`` is keyed by ``X-Clearance-Slot``, or :data:`NO_SLOT`.
    """

    sent: int
    dropped: int
    elapsed_s: float
    rate: float
    totals: Counts
    by_kind: dict[str, Counts]
    by_slot: dict[str, Counts]
    by_tenant: dict[str, Counts]


@dataclass
class _Tally:
    statuses: dict[int, int] = field(default_factory=dict)
    connection_errors: int = 0
    latencies: list[float] = field(default_factory=list)


class Traffic:
    """Send :func:`plan`'s requests to ``url`` at ``rate`` per second until :meth:`stop`.

    ``timeout`` bounds each request (seconds); at most ``max_in_flight`` requests wait for an
    answer at once, and a request due beyond that is dropped (counted in ``dropped``) rather
    than delaying the ones after it.
    """

    def __init__(
        self,
        url: str,
        *,
        rate: float,
        tenants: Sequence[str],
        seed: int = 7,
        timeout: float = 2.0,
        max_in_flight: int = 256,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"traffic needs an http(s) URL, got {url!r}")
        if not rate > 0:
            raise ValueError(f"rate must be > 0 requests per second, got {rate}")
        if not tenants:
            raise ValueError("traffic needs at least one tenant")
        if not timeout > 0 or max_in_flight < 1:
            raise ValueError("timeout must be > 0 and max_in_flight >= 1")
        self.url = url.rstrip("/")
        self.rate = rate
        self.tenants = tuple(tenants)
        self.seed = seed
        self.timeout = timeout
        self.max_in_flight = max_in_flight
        self._lock = threading.Lock()
        self._tallies: dict[tuple[str, Kind, str], _Tally] = {}
        self._sent = 0
        self._dropped = 0
        self._started: float | None = None
        self._stopped: float | None = None
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    # -- lifecycle

    def start(self) -> Traffic:
        if self._thread is not None:
            raise RuntimeError("this traffic was already started; make a new Traffic")
        self._started = time.monotonic()
        self._thread = threading.Thread(target=self._run, name="clearance-traffic", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop sending and wait (at most ``timeout``) for the answers still in flight."""
        if self._thread is None or self._stopping.is_set():
            return
        self._stopping.set()
        self._thread.join(self.timeout + 5)
        if self._stopped is None:
            self._stopped = time.monotonic()

    def __enter__(self) -> Traffic:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- results

    def stats(self) -> Stats:
        with self._lock:
            tallies = {key: _copy(t) for key, t in self._tallies.items()}
            sent, dropped = self._sent, self._dropped
            started = self._started
            ended = self._stopped if self._stopped is not None else time.monotonic()
        elapsed = 0.0 if started is None else max(ended - started, 0.0)

        def group(index: int) -> dict[str, Counts]:
            names = sorted({str(key[index]) for key in tallies})
            return {n: _counts(t for k, t in tallies.items() if str(k[index]) == n) for n in names}

        return Stats(
            sent=sent,
            dropped=dropped,
            elapsed_s=round(elapsed, 3),
            rate=round(sent / elapsed, 2) if elapsed else 0.0,
            totals=_counts(tallies.values()),
            by_kind=group(1),
            by_slot=group(0),
            by_tenant=group(2),
        )

    def counts(
        self, *, slot: str | None = None, kind: Kind | None = None, tenant: str | None = None
    ) -> Counts:
        """Outcomes of the requests matching every filter given (all requests by default)."""
        with self._lock:
            chosen = [
                _copy(t)
                for (s, k, n), t in self._tallies.items()
                if slot in (None, s) and kind in (None, k) and tenant in (None, n)
            ]
        return _counts(chosen)

    # -- the background thread

    def _run(self) -> None:
        asyncio.run(self._pace())

    async def _pace(self) -> None:
        limits = httpx.Limits(max_connections=self.max_in_flight, max_keepalive_connections=32)
        in_flight: set[asyncio.Task[None]] = set()
        requests = plan(self.seed, self.tenants)
        async with httpx.AsyncClient(
            base_url=self.url, timeout=self.timeout, limits=limits, trust_env=False
        ) as client:
            loop = asyncio.get_running_loop()
            start, number = loop.time(), 0
            while not self._stopping.is_set():
                delay = start + number / self.rate - loop.time()
                if delay > 0:
                    await asyncio.sleep(min(delay, 0.05))
                    continue
                request = next(requests)
                number += 1
                with self._lock:
                    if len(in_flight) >= self.max_in_flight:
                        self._dropped += 1
                        continue
                    self._sent += 1
                task = asyncio.create_task(self._send(client, request))
                in_flight.add(task)
                task.add_done_callback(in_flight.discard)
            with self._lock:
                self._stopped = time.monotonic()
            if in_flight:
                await asyncio.wait(in_flight, timeout=self.timeout + 1)
                for task in list(in_flight):
                    task.cancel()
                await asyncio.gather(*in_flight, return_exceptions=True)

    async def _send(self, client: httpx.AsyncClient, request: Request) -> None:
        headers = {TENANT_HEADER: request.tenant}
        if request.body:
            headers["Content-Type"] = request.content_type
        began = time.perf_counter()
        try:
            response = await client.request(
                request.method, request.path, content=request.body or None, headers=headers
            )
        except httpx.HTTPError:
            self._record(NO_SLOT, request, None, time.perf_counter() - began)
            return
        slot = response.headers.get(SLOT_HEADER) or NO_SLOT
        self._record(slot, request, response.status_code, time.perf_counter() - began)

    def _record(self, slot: str, request: Request, status: int | None, seconds: float) -> None:
        with self._lock:
            tally = self._tallies.setdefault((slot, request.kind, request.tenant), _Tally())
            if status is None:
                tally.connection_errors += 1
            else:
                tally.statuses[status] = tally.statuses.get(status, 0) + 1
                tally.latencies.append(seconds * 1000)


def _copy(tally: _Tally) -> _Tally:
    return _Tally(dict(tally.statuses), tally.connection_errors, list(tally.latencies))


def _counts(tallies: Iterable[_Tally]) -> Counts:
    statuses: dict[int, int] = {}
    errors = 0
    latencies: list[float] = []
    for tally in tallies:
        for status, n in tally.statuses.items():
            statuses[status] = statuses.get(status, 0) + n
        errors += tally.connection_errors
        latencies.extend(tally.latencies)
    latencies.sort()

    def quantile(q: float) -> float | None:
        if not latencies:
            return None
        return round(latencies[min(int(q * len(latencies)), len(latencies) - 1)], 2)

    def band(low: int) -> int:
        return sum(n for status, n in statuses.items() if low <= status < low + 100)

    return Counts(
        {
            "requests": sum(statuses.values()) + errors,
            "2xx": band(200),
            "4xx": band(400),
            "5xx": band(500),
            "connection_errors": errors,
            "p50_ms": quantile(0.50),
            "p95_ms": quantile(0.95),
        }
    )
