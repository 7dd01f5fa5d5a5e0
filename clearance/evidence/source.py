"""Opening a report file, and turning every way reading it can fail into one clearance error.

This is the one place where OS, XML (expat through defusedxml) and JSON (ijson) exceptions become
:class:`~clearance.errors.Error` values; the format parsers never catch third-party exceptions.
Every message is one line that starts with the file's name (``Error.where``).

XML is only ever parsed by :class:`defusedxml.ElementTree.XMLParser` with DTDs, entity
declarations and external references all forbidden: billion-laughs and XXE documents are refused
at their ``<!DOCTYPE`` before anything is expanded or fetched. It streams: no element tree is
built, the handler sees each element open and close.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol
from xml.etree.ElementTree import ParseError
from xml.parsers.expat import ErrorString

import defusedxml.ElementTree as DefusedET
from defusedxml import DTDForbidden, EntitiesForbidden, ExternalReferenceForbidden

from clearance.errors import EvidenceFormatError
from clearance.files import reading

from .bounds import clip

UTF8_BOM = b"\xef\xbb\xbf"
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
_WHITESPACE = b" \t\r\n"
#: Bytes handed to the XML parser at a time; the JSON reader uses the same size.
CHUNK = 1 << 18


_NO_TARGET = object()  # XMLParser wants a target; with no methods it calls none of them


@dataclass(frozen=True)
class Source:
    """A report file and the name messages give it (the name a person typed, say)."""

    path: Path
    name: str

    def error(self, message: str, *, hint: str | None = None) -> EvidenceFormatError:
        return EvidenceFormatError(message, where=self.name, hint=hint)


@contextmanager
def open_report(source: Source) -> Iterator[BinaryIO]:
    """The file, open for reading in binary, positioned after a UTF-8 byte-order mark if any.

    Raises :class:`NotFoundError` when there is no such file, :class:`InputError` when it cannot
    be read (a directory, a FIFO, no permission) and :class:`EvidenceFormatError` when it is
    empty or UTF-16. A read failure while the caller streams the file is an :class:`InputError`.
    """
    with reading(source.path, name=source.name) as stream:
        head = stream.read(3)
        if not head:
            raise source.error("the file is empty")
        if head.startswith(_UTF16_BOMS):
            raise source.error("the file is UTF-16 encoded; reports must be UTF-8")
        stream.seek(3 if head == UTF8_BOM else 0)
        yield stream


def first_byte(stream: BinaryIO) -> bytes:
    """The first byte that is not whitespace (``b""`` if none), leaving the position unchanged."""
    start = stream.tell()
    try:
        while chunk := stream.read(CHUNK):
            rest = chunk.lstrip(_WHITESPACE)
            if rest:
                return rest[:1]
        return b""
    finally:
        stream.seek(start)


class XmlHandler(Protocol):
    """What :func:`parse_xml` calls as elements open and close."""

    def start(self, tag: str, attrib: dict[str, str]) -> None: ...

    def end(self, tag: str) -> None: ...


def parse_xml(stream: BinaryIO, handler: XmlHandler, source: Source) -> None:
    """Stream the whole document through the defused parser into ``handler``.

    The parser is :class:`defusedxml.ElementTree.XMLParser` with its DTD, entity and external
    reference refusals in place; expat then calls ``handler.start(tag, attrib)`` and
    ``handler.end(tag)`` directly (attributes as a dict, character data dropped) rather than
    through ElementTree's pure-Python callbacks, which would double the parse time. Exceptions
    the handler raises pass through unchanged; XML errors become :class:`EvidenceFormatError`
    with the line and column.
    """
    parser = DefusedET.XMLParser(
        target=_NO_TARGET, forbid_dtd=True, forbid_entities=True, forbid_external=True
    )
    expat = parser.parser
    expat.ordered_attributes = False
    expat.StartElementHandler = handler.start
    expat.EndElementHandler = handler.end
    expat.CharacterDataHandler = len  # text is never needed; a C builtin is the cheapest sink
    try:
        while chunk := stream.read(CHUNK):
            parser.feed(chunk)
        parser.close()
    except DTDForbidden as exc:
        raise source.error(
            f"refused: DTDs and entities are forbidden in reports (found <!DOCTYPE {exc.name}>)"
        ) from exc
    except EntitiesForbidden as exc:
        raise source.error(
            f"refused: DTDs and entities are forbidden in reports (found entity {exc.name!r})"
        ) from exc
    except ExternalReferenceForbidden as exc:
        raise source.error(
            "refused: DTDs and entities are forbidden in reports "
            f"(found an external reference to {exc.sysid!r})"
        ) from exc
    except ParseError as exc:
        line, column = exc.position
        reason = ErrorString(exc.code) or "malformed XML"
        raise source.error(f"malformed XML at line {line}, column {column + 1}: {reason}") from exc


def json_error(exc: Exception, source: Source) -> EvidenceFormatError:
    """The one-line error for what ijson raised (its own messages span three lines)."""
    raw = exc.args[0] if exc.args else ""
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    reason = lines[0] if lines else type(exc).__name__
    if "premature EOF" in reason:
        return source.error("truncated JSON: the file ends before the JSON document does")
    message = f"invalid JSON: {reason}"
    if len(lines) > 1 and "right here" not in lines[1]:
        message += f" near {clip(lines[1], 60)!r}"
    return source.error(message)
