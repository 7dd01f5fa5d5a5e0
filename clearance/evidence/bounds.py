"""The caps that keep every summary small whatever the size of the report.

A summary is stored in the ledger and signed into an attestation, so it must stay small and
JSON-able: strings are clipped, lists are capped, and counters track a bounded number of
distinct keys. The full detail always stays in the raw report, which is kept byte for byte.
"""

from __future__ import annotations

from collections.abc import Iterable

#: Longest string kept in a summary (longer ones are clipped and end with an ellipsis).
MAX_TEXT = 200
#: Longest test name kept; longer ones are clipped the same way.
MAX_NAME_CHARS = 500
#: How many entries a "top N" list (rules, licences) keeps.
TOP_N = 20
#: How many distinct keys a counter tracks exactly; keys first seen later count as "other".
MAX_DISTINCT = 10_000
#: Largest integer kept as a number: beyond it RFC 8785 cannot represent it exactly.
MAX_SAFE_INTEGER = 2**53 - 1

Scalar = str | int | float | bool | None


def clip(text: str, limit: int = MAX_TEXT) -> str:
    """``text`` cut to ``limit`` characters, always valid UTF-8."""
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            text = text.encode("utf-8", "replace").decode("utf-8")
    return text


def one_line(text: str, limit: int = MAX_TEXT) -> str:
    """``text`` clipped, control characters escaped (``\\n``): safe inside a one-line message."""
    if not text.isprintable():
        text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
    return clip(text, limit)


def summary_scalar(value: Scalar) -> Scalar:
    """A scalar as it may appear in a summary: clipped text, integers RFC 8785 can hold."""
    if isinstance(value, str):
        return clip(value)
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_SAFE_INTEGER:
        return str(value)
    return value


class TopCounter:
    """Counts keys exactly for the first :data:`MAX_DISTINCT` distinct ones, in bounded memory.

    A key first seen once the table is full is added to :attr:`other` instead, so
    ``sum(counts) + other`` is always the number of :meth:`add` calls.
    """

    def __init__(self, max_distinct: int = MAX_DISTINCT) -> None:
        self.counts: dict[str, int] = {}
        self.other = 0
        self._max = max_distinct

    def add(self, key: str) -> None:
        key = clip(key)
        counts = self.counts
        if key in counts:
            counts[key] += 1
        elif len(counts) < self._max:
            counts[key] = 1
        else:
            self.other += 1

    def update(self, keys: Iterable[str]) -> None:
        for key in keys:
            self.add(key)

    def top(self, n: int = TOP_N) -> list[tuple[str, int]]:
        """The ``n`` most frequent keys, most frequent first, ties in alphabetical order."""
        return sorted(self.counts.items(), key=lambda kv: (-kv[1], kv[0]))[:n]

    @property
    def truncated(self) -> bool:
        """Whether the summary drops keys: more distinct keys than :data:`TOP_N`, or untracked."""
        return self.other > 0 or len(self.counts) > TOP_N


class NameList:
    """At most ``cap`` names, in report order, and how many there were in all."""

    def __init__(self, cap: int) -> None:
        self.names: list[str] = []
        self.total = 0
        self._cap = cap

    def add(self, name: str) -> None:
        self.total += 1
        if len(self.names) < self._cap:
            self.names.append(clip(name, MAX_NAME_CHARS))

    @property
    def truncated(self) -> bool:
        return self.total > len(self.names)
