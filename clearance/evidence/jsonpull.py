"""A pull reader over a streamed JSON document: keep what a parser asks for, skip the rest.

Built on ijson's ``basic_parse`` events (no per-event path strings, so deep nesting costs
nothing), it reads a file of any size in bounded memory. A parser walks the document with
:meth:`JsonReader.members`, :meth:`JsonReader.items`, :meth:`JsonReader.scalar`,
:meth:`JsonReader.string` and :meth:`JsonReader.skip`; each consumes exactly one value, and a
member or item the parser leaves alone is skipped for it. Shape errors name the JSON path
(``runs[0].results[3].level: expected a string, found an object``), and ijson's errors become
:class:`~clearance.errors.EvidenceFormatError` through :func:`.source.json_error`.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from contextlib import contextmanager
from typing import Any, BinaryIO

import ijson

from clearance.errors import EvidenceFormatError

from .bounds import Scalar, clip, one_line
from .source import CHUNK, Source, json_error, open_report

Event = tuple[str, Any]

_KINDS = {
    "start_map": "an object",
    "start_array": "a list",
    "string": "a string",
    "number": "a number",
    "integer": "a number",
    "double": "a number",
    "boolean": "a boolean",
    "null": "null",
}
_OPEN = frozenset({"start_map", "start_array"})
_CLOSE = frozenset({"end_map", "end_array"})
_SCALARS = frozenset({"string", "number", "integer", "double", "boolean", "null"})


class JsonReader:
    """Consumes one JSON document value by value, tracking the path for messages."""

    def __init__(self, events: Iterator[Event], source: Source) -> None:
        self._events = events
        self._source = source
        self._ahead: Event | None = None
        self._path: list[str | int] = []
        self._taken = 0

    # -- looking ----------------------------------------------------------------------------

    def kind(self) -> str:
        """What the next value is: "an object", "a list", "a string", "a number"..."""
        if self._ahead is None:
            self._ahead = self._pull()
        return _kind(self._ahead[0])

    @property
    def path(self) -> str:
        """Where the reader is, as ``runs[0].results[3]`` (empty at the top level)."""
        text = ""
        for step in self._path:
            if isinstance(step, int):
                text += f"[{step}]"
            else:
                text += f".{one_line(step, 60)}" if text else one_line(step, 60)
        return text

    def error(self, message: str) -> EvidenceFormatError:
        """An error about the value at the current path."""
        where = self.path
        return self._source.error(f"{clip(where, 120)}: {message}" if where else message)

    # -- consuming --------------------------------------------------------------------------

    def members(self, *, unique: Collection[str] = ()) -> Iterator[str]:
        """The keys of the next value, which must be an object; the caller consumes each value.

        A key in ``unique`` seen twice is an error: two ``passed`` or two ``version`` members
        would let two readers of the same file disagree.
        """
        self._expect("start_map", "an object")
        seen: set[str] = set()
        path = self._path
        path.append("")
        try:
            while True:
                event, key = self._pull()
                if event == "end_map":
                    return
                path[-1] = key
                if key in unique:
                    if key in seen:
                        raise self.error("appears twice in the same object")
                    seen.add(key)
                mark = self._taken
                yield key
                if self._taken == mark:
                    self.skip()
        finally:
            path.pop()

    def items(self) -> Iterator[int]:
        """The indexes of the next value, which must be a list; the caller consumes each item."""
        self._expect("start_array", "a list")
        path = self._path
        path.append(0)
        index = 0
        try:
            while True:
                event = self._pull()
                if event[0] == "end_array":
                    return
                self._ahead = event
                path[-1] = index
                mark = self._taken
                yield index
                if self._taken == mark:
                    self.skip()
                index += 1
        finally:
            path.pop()

    def scalar(self) -> Scalar:
        """The next value, which must be a string, number, boolean or null."""
        event, value = self._take()
        if event not in _SCALARS:
            raise self.error(f"expected a string, number, boolean or null, found {_kind(event)}")
        return value  # type: ignore[no-any-return]

    def string(self, *, optional: bool = True) -> str | None:
        """The next value, which must be a string (or null, when ``optional``)."""
        event, value = self._take()
        if event == "string" or (optional and event == "null"):
            return value  # type: ignore[no-any-return]
        raise self.error(f"expected a string, found {_kind(event)}")

    def skip(self) -> None:
        """Consume the next value without keeping any of it."""
        event, _ = self._take()
        if event not in _OPEN:
            return
        depth = 1
        try:
            for event, _ in self._events:
                if event in _OPEN:
                    depth += 1
                elif event in _CLOSE:
                    depth -= 1
                    if depth == 0:
                        return
        except (ijson.JSONError, UnicodeDecodeError) as exc:
            raise json_error(exc, self._source) from exc
        raise self.error("the document ends inside this value")

    def finish(self) -> None:
        """Check that nothing follows the document (ijson reports trailing garbage here)."""
        try:
            for _ in self._events:
                raise self._source.error("invalid JSON: more than one JSON document")
        except (ijson.JSONError, UnicodeDecodeError) as exc:
            raise json_error(exc, self._source) from exc

    # -- internals --------------------------------------------------------------------------

    def _pull(self) -> Event:
        try:
            return next(self._events)
        except StopIteration:
            raise self._source.error(
                "truncated JSON: the file ends before the JSON document does"
            ) from None
        except (ijson.JSONError, UnicodeDecodeError) as exc:
            raise json_error(exc, self._source) from exc

    def _take(self) -> Event:
        self._taken += 1
        if self._ahead is not None:
            event, self._ahead = self._ahead, None
            return event
        return self._pull()

    def _expect(self, wanted: str, name: str) -> None:
        event, _ = self._take()
        if event != wanted:
            raise self.error(f"expected {name}, found {_kind(event)}")


def _kind(event: str) -> str:
    return _KINDS.get(event, event)


def reader_over(stream: BinaryIO, source: Source) -> JsonReader:
    """A reader over the JSON document in ``stream`` (numbers come as ``int`` or ``float``)."""
    return JsonReader(ijson.basic_parse(stream, use_float=True, buf_size=CHUNK), source)


@contextmanager
def read_json(source: Source) -> Iterator[JsonReader]:
    """A reader over the file's JSON document; the caller ends with :meth:`JsonReader.finish`."""
    with open_report(source) as stream:
        yield reader_over(stream, source)
