"""What a server process keeps in memory, and why it is never wrong for long.

Token authentication is cached for :data:`TOKEN_CACHE_SECONDS`: revoking through a process stops
the token there at once, and in every other process within that time. Gate decisions are cached
until the artifact has a newer ledger entry, which every call asks the database about. A server
with ``--workers`` runs several such processes on one port.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from multiprocessing import reduction
from pathlib import Path

import httpx
import pytest

from clearance.core.digests import Digest
from clearance.core.roles import Role
from clearance.errors import InputError
from clearance.server.app import tcp_listener
from clearance.settings import Settings
from clearance.usecases.evidence import ATTESTED, attest
from clearance.usecases.identity import (
    TOKEN_CACHE_SECONDS,
    TokenCache,
    create_token,
    revoke_token,
)
from clearance.usecases.instance import Instance, open_instance
from clearance.usecases.releases import gate
from clearance.usecases.service import GateCache, compact
from tests.conftest import FixedClock
from tests.server.conftest import Api, server_process

ADMIN = "admin@example.org"


class FakeMonotonic:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def server_env(settings: Settings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLEARANCE_")}
    return env | {
        "CLEARANCE_HOME": str(settings.home),
        "CLEARANCE_DATABASE_URL": settings.database_url,
    }


class TestTokenCache:
    def test_a_token_is_read_once_per_ttl_and_a_revocation_elsewhere_ends_it(
        self, api: Api
    ) -> None:
        ticks = FakeMonotonic()
        with open_instance(api.settings) as inst:
            cache = TokenCache(inst, ttl=1.0, monotonic=ticks)
            token = api.tokens[Role.AUDITOR]
            now = inst.clock.now()
            assert cache.cached(token, now) is None  # never looked up
            first = cache.authenticate(token, now)
            assert first is not None and first.role is Role.AUDITOR
            assert cache.cached(token, now) == first
            revoke_token(inst, name="auditor@example.org", actor=ADMIN)  # "another process"
            ticks.now += 0.9
            assert cache.authenticate(token, now) == first  # still within the TTL
            ticks.now += 0.1
            assert cache.cached(token, now) is None
            assert cache.authenticate(token, now) is None  # read again: revoked

    def test_forget_ends_a_token_at_once(self, api: Api) -> None:
        with open_instance(api.settings) as inst:
            cache = TokenCache(inst, ttl=3600.0)
            token, now = api.tokens[Role.CI], inst.clock.now()
            principal = cache.authenticate(token, now)
            assert principal is not None
            token_id = revoke_token(inst, name="ci@example.org", actor=ADMIN)
            assert token_id == principal.token_id
            cache.forget(token_id)
            assert cache.authenticate(token, now) is None

    def test_expiry_is_checked_on_every_use(self, api: Api) -> None:
        with open_instance(api.settings, clock=FixedClock()) as inst:
            issued = create_token(
                inst, name="short", role=Role.AUDITOR, actor=ADMIN, expires=timedelta(minutes=1)
            )
            cache = TokenCache(inst, ttl=3600.0)
            start = inst.clock.now()
            assert cache.authenticate(issued.token, start) is not None
            assert cache.cached(issued.token, start + timedelta(seconds=30)) is not None
            later = start + timedelta(minutes=2)
            assert cache.cached(issued.token, later) is None
            assert cache.authenticate(issued.token, later) is None

    def test_unknown_tokens_are_not_kept(self, api: Api) -> None:
        with open_instance(api.settings) as inst:
            cache = TokenCache(inst, size=2)
            now = inst.clock.now()
            for n in range(5):
                assert cache.authenticate(f"clr_guess{n}", now) is None
            assert len(cache) == 0
            for role in (Role.CI, Role.AUDITOR, Role.ADMIN):  # bounded: the oldest goes
                assert cache.authenticate(api.tokens[role], now) is not None
            assert len(cache) == 2


class TestRevocationThroughTheApi:
    def test_revoking_through_the_server_refuses_the_token_at_once(self, api: Api) -> None:
        auditor = api.auth(Role.AUDITOR)
        assert api.client.get("/api/v1/status", headers=auditor).status_code == 200  # cached
        revoked = api.client.delete(
            "/api/v1/tokens/auditor@example.org", headers=api.auth(Role.ADMIN)
        )
        assert revoked.status_code == 200
        refused = api.client.get("/api/v1/status", headers=auditor)
        assert refused.status_code == 401
        assert refused.json()["error"]["message"] == "the API token is unknown, expired or revoked"

    def test_revoking_elsewhere_refuses_the_token_within_the_ttl(self, api: Api) -> None:
        ci = api.auth(Role.CI)
        assert api.client.get("/api/v1/status", headers=ci).status_code == 200  # cached
        with open_instance(api.settings) as inst:  # the CLI, or another server process
            revoke_token(inst, name="ci@example.org", actor=ADMIN)
        revoked_at = time.monotonic()
        refused_after = None
        while time.monotonic() - revoked_at < TOKEN_CACHE_SECONDS + 2:
            if api.client.get("/api/v1/status", headers=ci).status_code == 401:
                refused_after = time.monotonic() - revoked_at
                break
            time.sleep(0.05)
        assert refused_after is not None and refused_after <= TOKEN_CACHE_SECONDS + 0.5
        for _ in range(3):
            assert api.client.get("/api/v1/status", headers=ci).status_code == 401


def add_evidence(inst: Instance, digest: Digest, tmp_path: Path, n: int, passed: bool) -> None:
    report = tmp_path / f"report-{n}.json"
    report.write_text(f'{{"passed": {str(passed).lower()}, "run": {n}}}')
    attest(inst, digest, "unit-tests", report, actor="ci")


class TestGateCache:
    def test_the_api_gate_sees_evidence_recorded_by_another_process_at_once(
        self, api: Api, tmp_path: Path
    ) -> None:
        digest = Digest(api.digest)
        url = f"/api/v1/artifacts/{digest}/gate?env=staging"
        auditor = api.auth(Role.AUDITOR)
        with open_instance(api.settings) as inst:
            for n, passed in enumerate([False, True, False, True]):
                before = api.client.get(url, headers=auditor)
                assert before.json() == api.client.get(url, headers=auditor).json()  # cached
                add_evidence(inst, digest, tmp_path, n, passed)
                after = api.client.get(url, headers=auditor)
                assert after.status_code == 200
                assert after.content == compact(gate(inst, digest, "staging").to_json())
                assert after.json()["evidence_set"] != before.json()["evidence_set"]

    def test_concurrent_calls_share_one_computation(self, api: Api, tmp_path: Path) -> None:
        with open_instance(api.settings) as inst:
            gates = CountingGateCache(inst)
            digest = Digest(api.digest)
            for round_ in range(2):
                with ThreadPoolExecutor(8) as pool:
                    bodies = list(pool.map(lambda _: gates.decision(digest, "dev"), range(16)))
                assert set(bodies) == {compact(gate(inst, digest, "dev").to_json())}
                assert gates.computed == round_ + 1
                add_evidence(inst, digest, tmp_path, round_, True)

    def test_failures_are_not_kept_and_reach_every_caller(self, api: Api) -> None:
        with open_instance(api.settings) as inst:
            gates = CountingGateCache(inst)
            digest = Digest(api.digest)
            with ThreadPoolExecutor(4) as pool:
                futures = [pool.submit(gates.decision, digest, "moon") for _ in range(4)]
            for future in futures:
                with pytest.raises(InputError, match="unknown environment 'moon'"):
                    future.result()
            computed = gates.computed
            assert gates.decision(digest, "dev") == compact(gate(inst, digest, "dev").to_json())
            assert gates.computed == computed + 1


class CountingGateCache(GateCache):
    """A gate cache whose computations are counted, and slow enough for callers to overlap."""

    def __init__(self, instance: Instance) -> None:
        super().__init__(instance)
        self.computed = 0
        self._count = threading.Lock()

    def _compute(self, digest: Digest, env: str) -> bytes:
        with self._count:
            self.computed += 1
        time.sleep(0.2)
        return super()._compute(digest, env)


@pytest.mark.postgres
def test_ledger_reads_leave_pooled_connections_transactional(pg_url: str, tmp_path: Path) -> None:
    """``about`` reads in autocommit; appends (an advisory lock per transaction) must not."""
    settings = Settings.from_env({"CLEARANCE_DATABASE_URL": pg_url}, home=tmp_path / "home")
    from clearance.usecases.instance import init

    with init(settings, actor=ADMIN, origin="clearance.test/caches") as inst:
        for _ in range(3):
            inst.ledger.about("sha256:" + "0" * 64)
        raw = inst.db.raw_read()
        try:
            assert raw.driver_connection.autocommit is False
        finally:
            raw.close()


class TestWorkers:
    def test_workers_serve_one_ledger_and_stop_cleanly(self, api: Api) -> None:
        env = server_env(api.settings)
        ci, auditor = bearer(api.tokens[Role.CI]), bearer(api.tokens[Role.AUDITOR])
        with open_instance(api.settings) as inst:
            before = len(inst.ledger.find(kinds=[ATTESTED]))
        with server_process(env, workers=2) as url:
            seqs = []
            for n in range(6):  # a new connection each time: either worker may answer
                with httpx.Client(base_url=url + "/api/v1", timeout=30) as http:
                    response = http.post(
                        f"/artifacts/{api.digest}/evidence",
                        headers=ci,
                        data={"type": "unit-tests"},
                        files={"report": ("r.json", f'{{"passed": true, "n": {n}}}'.encode())},
                    )
                    assert response.status_code == 200, response.text
                    seqs.append(response.json()["entry"])
                    decision = http.get(f"/artifacts/{api.digest}/gate?env=dev", headers=auditor)
                    assert decision.status_code == 200
        with open_instance(api.settings) as inst:
            recorded = [e.seq for e in inst.ledger.find(kinds=[ATTESTED])][before:]
        assert recorded == seqs

    def test_a_token_revoked_through_one_worker_is_refused_by_all_within_the_ttl(
        self, api: Api
    ) -> None:
        auditor, admin = bearer(api.tokens[Role.AUDITOR]), bearer(api.tokens[Role.ADMIN])
        with server_process(server_env(api.settings), workers=2) as url:

            def status() -> int:  # a new connection each time: either worker may answer
                with httpx.Client(base_url=url, timeout=30) as http:
                    return http.get("/api/v1/status", headers=auditor).status_code

            assert [status() for _ in range(10)] == [200] * 10  # remembered by the workers
            with httpx.Client(base_url=url, timeout=30) as http:
                revoked = http.delete("/api/v1/tokens/auditor@example.org", headers=admin)
                assert revoked.status_code == 200
            time.sleep(TOKEN_CACHE_SECONDS + 0.1)  # the other worker's memory runs out
            assert [status() for _ in range(10)] == [401] * 10

    def test_sigterm_stops_every_worker(self, api: Api) -> None:
        proc = subprocess.Popen(
            [sys.executable, "-m", "clearance", "serve", "--port", "0", "--workers", "2"],
            env=server_env(api.settings),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 30
            while len(children(proc.pid)) < 2 and time.monotonic() < deadline:
                time.sleep(0.1)
            workers = children(proc.pid)
            assert len(workers) >= 2
            time.sleep(1.0)  # let them finish starting
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(30) == 0
            assert not [pid for pid in workers if Path(f"/proc/{pid}").exists()]
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()

    def test_keep_alive_responses_are_not_held_back_by_nagle(self, api: Api) -> None:
        # Without TCP_NODELAY on the workers' connections, every keep-alive response after the
        # first waited ~40 ms for the client's delayed ACK.
        auditor = bearer(api.tokens[Role.AUDITOR])
        with (
            server_process(server_env(api.settings), workers=2) as url,
            httpx.Client(base_url=url, timeout=30) as http,
        ):
            times = []
            for _ in range(15):
                began = time.perf_counter()
                assert http.get("/api/v1/status", headers=auditor).status_code == 200
                times.append(time.perf_counter() - began)
        assert sorted(times)[len(times) // 2] < 0.035, times

    def test_the_listening_socket_says_it_is_tcp(self) -> None:
        raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)  # as uvicorn binds it: proto 0
        raw.bind(("127.0.0.1", 0))
        address = raw.getsockname()
        with tcp_listener(raw) as listener:
            assert listener.proto == socket.IPPROTO_TCP
            assert listener.getsockname() == address and listener.get_inheritable()
            rebuilt, args = reduction._reduce_socket(listener)  # how workers receive it
            with rebuilt(*args) as copy:
                assert copy.proto == socket.IPPROTO_TCP

    def test_an_uninitialised_home_is_one_clear_error(self, tmp_path: Path) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CLEARANCE_")}
        env["CLEARANCE_HOME"] = str(tmp_path / "nowhere")
        done = subprocess.run(
            [sys.executable, "-m", "clearance", "serve", "--port", "0", "--workers", "2"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode != 0
        assert "clearance init" in done.stderr


def children(pid: int) -> list[int]:
    """The worker processes uvicorn spawned for ``pid`` (not multiprocessing's helpers)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
                command = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid and b"spawn_main" in command:
                found.append(int(entry.name))
    return found
