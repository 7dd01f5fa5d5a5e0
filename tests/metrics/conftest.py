"""A real Prometheus server (Debian's /usr/bin/prometheus) scraping a tiny exporter of ours.

The exporter serves request counters per ``version`` whose values grow at known rates (computed
from the clock at each scrape, so they are exact whatever the scrape timing) and a latency gauge
per version. Prometheus scrapes it every second; the fixture waits for the first scrape (its
service discovery publishes targets after ~5 s), then for three complete 2-second intervals.
Without the binary the tests skip, but under ``CI=true`` they fail.
"""

from __future__ import annotations

import math
import os
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from clearance.metrics import Window

PROMETHEUS = Path("/usr/bin/prometheus")
INTERVAL = 2.0
INTERVALS = 3
#: Requests per second by (version, code); 1.4.3 never fails, so it has no 5xx series at all.
RATES = {("1.4.2", "200"): 45.0, ("1.4.2", "500"): 5.0, ("1.4.3", "200"): 100.0}
LATENCY_P95_MS = {"1.4.2": 12.5, "1.4.3": 30.0}


def free_port() -> int:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = int(sock.getsockname()[1])
    sock.close()
    return port


@contextmanager
def serve(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    """A stdlib HTTP server on a free loopback port, in a thread; its base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


def exposition(elapsed: float) -> str:
    """The exporter's page in the Prometheus text format, ``elapsed`` seconds after its start."""
    lines = ["# TYPE http_requests_total counter"]
    for (version, code), rate in RATES.items():
        labels = f'version="{version}",code="{code}",route="/orders"'
        lines.append(f"http_requests_total{{{labels}}} {math.floor(rate * elapsed)}")
    lines.append("# TYPE order_latency_p95_ms gauge")
    for version, ms in LATENCY_P95_MS.items():
        lines.append(f'order_latency_p95_ms{{version="{version}"}} {ms}')
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class RunningPrometheus:
    url: str
    window: Window  # three complete intervals, all scraped


@contextmanager
def exporter() -> Iterator[str]:
    started = time.monotonic()

    class Exporter(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = exposition(time.monotonic() - started).encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    with serve(Exporter) as url:
        yield url


def _prometheus_binary() -> Path:
    if PROMETHEUS.exists():
        return PROMETHEUS
    why = f"{PROMETHEUS} is missing (apt-get install prometheus, or run scripts/services.sh)"
    if os.environ.get("CI") == "true":
        pytest.fail(f"{why}; the Prometheus tests cannot be skipped under CI=true")
    pytest.skip(why)


def _instant(client: httpx.Client, url: str, query: str) -> list[dict[str, object]]:
    response = client.get(f"{url}/api/v1/query", params={"query": query})
    result: list[dict[str, object]] = response.json()["data"]["result"]
    return result


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningPrometheus]:
    binary = _prometheus_binary()
    home = tmp_path_factory.mktemp("prometheus")
    with exporter() as target:
        config = home / "prometheus.yml"
        config.write_text(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
            "scrape_configs:\n  - job_name: exporter\n    static_configs:\n"
            f"      - targets: ['{target.removeprefix('http://')}']\n"
        )
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        log = home / "prometheus.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [
                    str(binary),
                    f"--config.file={config}",
                    f"--storage.tsdb.path={home / 'data'}",
                    f"--web.listen-address=127.0.0.1:{port}",
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        try:
            first = _wait_for_first_scrape(proc, url, log)
            start = float(math.ceil(first))
            window = Window(start, start + INTERVALS * INTERVAL, INTERVAL)
            time.sleep(max(0.0, window.end + 0.5 - time.time()))
            yield RunningPrometheus(url, window)
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)


def _wait_for_first_scrape(proc: subprocess.Popen[bytes], url: str, log: Path) -> float:
    """Unix time by which the exporter has been scraped once."""
    deadline = time.monotonic() + 20
    with httpx.Client(timeout=2) as client:
        while True:
            if proc.poll() is not None:
                pytest.fail(f"prometheus exited with {proc.returncode}:\n{log.read_text()[-2000:]}")
            try:
                if any(
                    r.get("value", [0, "0"])[1] == "1"  # type: ignore[index]
                    for r in _instant(client, url, 'up{job="exporter"}')
                ):
                    return time.time()
            except (httpx.HTTPError, ValueError, KeyError):
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"prometheus never scraped the exporter:\n{log.read_text()[-2000:]}")
            time.sleep(0.1)
