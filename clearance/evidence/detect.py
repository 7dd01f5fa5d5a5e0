"""Which format a report is, decided from its content alone, never from its file name.

The first byte that is not a byte-order mark or whitespace picks the family:

- ``<``: XML, read (defused) up to its root element: ``<testsuites>`` or ``<testsuite>`` is
  JUnit; any other root is refused by name.
- ``{`` or ``[``: JSON, whose top-level members are streamed (bounded memory, any size):

  1. ``bomFormat: "CycloneDX"`` is CycloneDX;
  2. a ``$schema`` mentioning SARIF, or ``runs`` with ``version: "2.1.0"``, is SARIF;
  3. a ``dependencies`` list of pip-audit dependencies (with ``vulns`` or ``skip_reason``), or
     ``dependencies`` next to ``fixes``, or a top-level list whose first item is such a
     dependency, is pip-audit;
  4. a ``passed`` member is a generic result (its parser insists on a boolean);
  5. ``runs`` with any other ``version`` is SARIF of a version we refuse, with that message.

Anything else is refused with :data:`UNRECOGNISED`.
"""

from __future__ import annotations

from typing import BinaryIO

from clearance.core.evidence import ReportFormat

from .bounds import Scalar, one_line
from .jsonpull import JsonReader, reader_over
from .source import Source, first_byte, open_report, parse_xml

UNRECOGNISED = (
    "not a recognised report (JUnit XML, SARIF 2.1.0, CycloneDX JSON, pip-audit JSON "
    'or a JSON object with a boolean "passed")'
)

#: How each format is called in messages.
LABELS = {
    ReportFormat.JUNIT: "JUnit XML",
    ReportFormat.SARIF: "SARIF 2.1.0",
    ReportFormat.CYCLONEDX: "CycloneDX JSON",
    ReportFormat.PIP_AUDIT: "pip-audit JSON",
    ReportFormat.GENERIC: 'a generic JSON result (an object with a boolean "passed")',
}

JUNIT_ROOTS = frozenset({"testsuites", "testsuite"})
_DECISIVE = frozenset({"bomFormat", "$schema", "version", "runs", "passed", "dependencies"})
_SHOWN_KEYS = 8


def detect(source: Source) -> ReportFormat:
    """The format of the report in ``source``; :class:`EvidenceFormatError` if none fits."""
    with open_report(source) as stream:
        first = first_byte(stream)
        if not first:
            raise source.error("the file holds only whitespace")
        if first == b"<":
            root = xml_root(stream, source)
            if root in JUNIT_ROOTS:
                return ReportFormat.JUNIT
            shown = "{" + root if "}" in root else root  # expat writes "uri}local"
            raise source.error(
                f"XML root element <{one_line(shown, 80)}> is not a JUnit report "
                "(expected <testsuites> or <testsuite>)"
            )
        if first in (b"{", b"["):
            return _json_format(reader_over(stream, source), source)
    raise source.error(UNRECOGNISED, hint="it starts with neither '<', '{' nor '['")


class _RootFound(Exception):
    """Stops the parse at the root element: a signal, not an error."""

    def __init__(self, tag: str) -> None:
        super().__init__(tag)
        self.tag = tag


class _RootHandler:
    def start(self, tag: str, attrib: dict[str, str]) -> None:
        raise _RootFound(tag)

    def end(self, tag: str) -> None:  # pragma: no cover - start always stops the parse first
        pass


def xml_root(stream: BinaryIO, source: Source) -> str:
    """The tag of the root element, read through the defused parser (a DOCTYPE is refused)."""
    try:
        parse_xml(stream, _RootHandler(), source)
    except _RootFound as found:
        return found.tag
    raise source.error("XML document without a root element")  # pragma: no cover - expat says


def _json_format(reader: JsonReader, source: Source) -> ReportFormat:
    if reader.kind() == "a list":
        for _ in reader.items():
            if reader.kind() == "an object" and _is_dependency(reader):
                return ReportFormat.PIP_AUDIT
            break
        raise source.error(UNRECOGNISED, hint="a JSON list that is not pip-audit's dependencies")

    keys: list[str] = []
    version: Scalar = None
    runs = passed = audit = fixes = dependencies = False
    for key in reader.members(unique=_DECISIVE):
        if len(keys) < _SHOWN_KEYS:
            keys.append(one_line(key, 40))
        if key == "bomFormat" and reader.kind() == "a string":
            if reader.string() == "CycloneDX":
                return ReportFormat.CYCLONEDX
        elif key == "$schema" and reader.kind() == "a string":
            if "sarif" in (reader.string() or "").lower():
                return ReportFormat.SARIF
        elif key == "version" and reader.kind() not in ("an object", "a list"):
            version = reader.scalar()
        elif key == "runs":
            runs = True
        elif key == "passed":
            passed = True
        elif key == "fixes":
            fixes = True
        elif key == "dependencies" and reader.kind() == "a list":
            dependencies = True
            for index in reader.items():
                if index < 3 and reader.kind() == "an object":
                    audit = audit or _is_dependency(reader)
    reader.finish()

    if runs and version == "2.1.0":
        return ReportFormat.SARIF
    if audit or (dependencies and fixes):
        return ReportFormat.PIP_AUDIT
    if passed:
        return ReportFormat.GENERIC
    if runs and version is not None:
        return ReportFormat.SARIF
    shown = ", ".join(keys) + (", ..." if len(keys) == _SHOWN_KEYS else "")
    raise source.error(UNRECOGNISED, hint=f"top-level keys: {shown}" if keys else "an empty object")


def _is_dependency(reader: JsonReader) -> bool:
    """Whether the object at the reader is a pip-audit dependency (consumes it)."""
    found = False
    for key in reader.members():
        found = found or key in ("vulns", "skip_reason")
    return found
