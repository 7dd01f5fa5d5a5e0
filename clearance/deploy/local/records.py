"""The request records of one service: a bounded in-memory ring buffer, newest last.

Two kinds of record share one sequence and one stream:

- a *request* record, one per proxied request, written when its response ends::

    {"seq": 17, "t": 1767000000.25, "slot": "canary", "version": "1.4.3", "tenant": "st-mary",
     "method": "POST", "path": "/orders", "status": 201, "ms": 12.7}

  A request the backend failed to answer is recorded with status 502 and the slot it was sent
  to; the path never carries the query string (it may hold identifiers a log should not).
- a *pushed* value, sent by an application to ``POST /push``::

    {"seq": 18, "t": 1767000000.31, "slot": "canary", "version": "1.4.3",
     "counter": "hl7_ack_failed", "value": 1.0}            (or "gauge": "queue_backlog")

Records are kept as tuples (a third of the memory of dicts) and turned into dicts when read.
When the buffer is full the oldest records go; a read whose window began before the newest
evicted record reports how many were evicted in all (``dropped``, an upper bound of what the
window lost), so a caller never mistakes a cut window for a quiet one.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass
from typing import Any

__all__ = ["DEFAULT_CAPACITY", "RecordBuffer", "Window"]

DEFAULT_CAPACITY = 500_000
#: Records are appended in completion order, so their times only step back by clock slew; a
#: backwards scan stops this far before ``since``.
_SCAN_SLACK = 5.0

_Request = tuple[int, float, str, str | None, str | None, str, str, int, float]
_Pushed = tuple[int, float, str, str, str, str, float]


@dataclass(frozen=True)
class Window:
    """The records of one read, oldest first, and how many the buffer evicted from it."""

    records: list[dict[str, Any]]
    dropped: int


class RecordBuffer:
    """Request records and pushed values of one service, at most ``capacity`` of them."""

    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1, got {capacity}")
        self._items: deque[_Request | _Pushed] = deque(maxlen=capacity)
        self._seq = 0
        self._evicted_until = float("-inf")  # the time of the newest record evicted

    def __len__(self) -> int:
        return len(self._items)

    @property
    def evicted(self) -> int:
        return self._seq - len(self._items)

    def request(
        self,
        *,
        slot: str,
        version: str | None,
        tenant: str | None,
        method: str,
        path: str,
        status: int,
        ms: float,
        t: float | None = None,
    ) -> int:
        """Record one proxied request; ``t`` defaults to now. Returns its sequence number."""
        moment = time.time() if t is None else t
        self._append((self._seq + 1, moment, slot, version, tenant, method, path, status,
                      round(ms, 3)))  # fmt: skip
        return self._seq

    def pushed(self, *, slot: str, version: str, kind: str, name: str, value: float) -> int:
        """Record one counter or gauge (``kind``) an application pushed."""
        if kind not in ("counter", "gauge"):
            raise ValueError(f"kind must be counter or gauge, got {kind!r}")
        self._append((self._seq + 1, time.time(), slot, version, kind, name, float(value)))
        return self._seq

    def _append(self, item: _Request | _Pushed) -> None:
        if len(self._items) == self._items.maxlen:
            self._evicted_until = max(self._evicted_until, self._items[0][1])
        self._items.append(item)
        self._seq += 1

    def window(
        self, since: float = 0.0, until: float = float("inf"), slot: str | None = None
    ) -> Window:
        """Records with ``since <= t <= until`` (of ``slot`` when given), oldest first."""
        found: list[_Request | _Pushed] = []
        for item in reversed(self._items):
            moment = item[1]
            if moment < since - _SCAN_SLACK:
                break
            if since <= moment <= until and (slot is None or item[2] == slot):
                found.append(item)
        found.reverse()
        dropped = self.evicted if self._evicted_until >= since else 0
        return Window([_to_json(item) for item in found], dropped)


def _to_json(item: _Request | _Pushed) -> dict[str, Any]:
    if len(item) == 9:
        seq, t, slot, version, tenant, method, path, status, ms = item  # type: ignore[misc]
        return {
            "seq": seq,
            "t": t,
            "slot": slot,
            "version": version,
            "tenant": tenant,
            "method": method,
            "path": path,
            "status": status,
            "ms": ms,
        }
    seq, t, slot, version, kind, name, value = item  # type: ignore[misc]
    return {"seq": seq, "t": t, "slot": slot, "version": version, kind: name, "value": value}
