"""Slowing password guessing: too many failed passwords for one account lock it for a while.

Counted per account (sign-in and re-authentication at signing alike), in this server process:
after ``limit`` failures within ``window`` seconds, further attempts are refused until the oldest
failure leaves the window. A successful sign-in clears the count.
"""

from __future__ import annotations

import threading
from collections import deque


class Throttle:
    def __init__(self, limit: int = 5, window: float = 900.0) -> None:
        self.limit = limit
        self.window = window
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, key: str, now: float) -> deque[float]:
        failures = self._failures.setdefault(key, deque())
        while failures and failures[0] <= now - self.window:
            failures.popleft()
        return failures

    def wait(self, key: str, now: float) -> int:
        """Seconds until ``key`` may try again (0: now)."""
        with self._lock:
            failures = self._recent(key, now)
            if len(failures) < self.limit:
                return 0
            return max(1, int(failures[0] + self.window - now) + 1)

    def failed(self, key: str, now: float) -> None:
        with self._lock:
            self._recent(key, now).append(now)
            if len(self._failures) > 10_000:  # bounded memory under a spray of made-up emails
                self._failures = {k: v for k, v in self._failures.items() if v}

    def succeeded(self, key: str) -> None:
        with self._lock:
            self._failures.pop(key, None)
