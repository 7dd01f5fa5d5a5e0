"""Evidence parsers: report files (JUnit, SARIF, CycloneDX, pip-audit, generic JSON) → Report.

::

    read_report(path)                   detect the format from the content, then parse it
    read_report(path, expected=FORMAT)  the same, refusing any other format
    detect_format(path)                 only the detection

Every report is streamed in bounded memory whatever its size (the file is read twice: once to
detect, once to parse). Whatever is wrong with the file, the only exceptions are
:class:`~clearance.errors.Error` subclasses with a one-line message naming the file:
:class:`~clearance.errors.NotFoundError` (no such file), :class:`~clearance.errors.InputError`
(unreadable) or :class:`~clearance.errors.EvidenceFormatError` (empty, malformed, of the wrong
shape or format, or an XML document with a DTD or entities, which are refused).

One module per format (:mod:`.junit`, :mod:`.sarif`, :mod:`.cyclonedx`, :mod:`.pip_audit`,
:mod:`.generic`), the detection rules in :mod:`.detect`, opening files and mapping third-party
errors in :mod:`.source`, the streaming JSON reader in :mod:`.jsonpull`, the summary caps in
:mod:`.bounds`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

from clearance.core.evidence import Report, ReportFormat

from . import cyclonedx, generic, junit, pip_audit, sarif
from .detect import LABELS, detect
from .source import Source

__all__ = ["detect_format", "read_report"]

_PARSERS: Mapping[ReportFormat, Callable[[Source], Report]] = {
    ReportFormat.JUNIT: junit.parse,
    ReportFormat.SARIF: sarif.parse,
    ReportFormat.CYCLONEDX: cyclonedx.parse,
    ReportFormat.PIP_AUDIT: pip_audit.parse,
    ReportFormat.GENERIC: generic.parse,
}


def read_report(
    path: Path, *, expected: ReportFormat | None = None, name: str | None = None
) -> Report:
    """The report in ``path``, its format detected from the content (never the file name).

    ``expected`` refuses a report of any other format, saying what was found instead. ``name``
    is what messages call the file (by default the path), for a copy parsed in its place.
    """
    source = Source(Path(path), name or str(path))
    found = detect(source)
    if expected is not None and found != expected:
        wanted = LABELS[ReportFormat(expected)]
        raise source.error(f"expected {wanted}, but the file is {LABELS[found]}")
    return _PARSERS[found](source)


def detect_format(path: Path, *, name: str | None = None) -> ReportFormat:
    """The format of the report in ``path``, from its content alone (see :mod:`.detect`)."""
    return detect(Source(Path(path), name or str(path)))
