"""A tiny real backend for the deployer tests: stdlib only, started as a slot process.

``python app.py --port N --version V [--slot S]``. It answers ``/healthz`` (200, or 503 with
``APP_FAIL_HEALTH=1``), echoes ``{"version", "slot", "method", "path", "query", "body", "pid"}``
for every other request, sleeps ``?ms=N`` milliseconds when asked, and on ``/push?counter=NAME``
pushes ``NAME=1`` to ``CLEARANCE_PUSH_URL``. ``APP_EXIT_EARLY=1`` writes to stderr and exits 3
before listening; ``APP_START_DELAY=S`` waits ``S`` seconds before listening.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--version", required=True)
    parser.add_argument("--slot", default=os.environ.get("CLEARANCE_SLOT", ""))
    args = parser.parse_args()
    if os.environ.get("APP_EXIT_EARLY"):
        print("loading configuration", file=sys.stderr)
        print("fatal: ORDERS_DB_URL is not set", file=sys.stderr)
        sys.exit(3)
    time.sleep(float(os.environ.get("APP_START_DELAY", "0")))
    fail_health = bool(os.environ.get("APP_FAIL_HEALTH"))

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # headers and body go out as two writes

        def log_message(self, format: str, *values: object) -> None:
            pass

        def answer(self) -> None:
            url = urlsplit(self.path)
            query = parse_qs(url.query)
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            if url.path == "/healthz":
                status = 503 if fail_health else 200
                self.reply(status, {"ok": not fail_health, "version": args.version})
                return
            if "ms" in query:
                time.sleep(float(query["ms"][0]) / 1000.0)
            if url.path == "/push":
                push = {
                    "service": os.environ["CLEARANCE_SERVICE"],
                    "slot": os.environ["CLEARANCE_SLOT"],
                    "counter": query["counter"][0],
                    "value": 1.0,
                }
                request = urllib.request.Request(
                    os.environ["CLEARANCE_PUSH_URL"],
                    data=json.dumps(push).encode(),
                    headers={"Content-Type": "application/json"},
                    method="POST",
                )
                with urllib.request.urlopen(request, timeout=5) as pushed:
                    pushed.read()
            status = int(query["status"][0]) if "status" in query else 200
            self.reply(
                status,
                {
                    "version": args.version,
                    "slot": args.slot,
                    "method": self.command,
                    "path": url.path,
                    "query": url.query,
                    "body": body.decode("utf-8", "replace"),
                    "host": self.headers.get("Host"),
                    "pid": os.getpid(),
                },
            )

        def reply(self, status: int, data: object) -> None:
            payload = json.dumps(data).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(payload)

        do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = answer

    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    server.serve_forever()


if __name__ == "__main__":
    main()
