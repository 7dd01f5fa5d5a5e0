"""What a piece of evidence says, once read: its format, its result and a bounded summary.

Parsers in :mod:`clearance.evidence` turn report files into :class:`Report` values; the rules,
the ledger and the UI only ever see these values, never the raw files (those are kept byte for
byte in the blob store and referenced by digest).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

#: At most this many test names of each kind go into a test-result attestation; the full list
#: stays in the raw report, which the attestation references by digest.
MAX_TEST_NAMES = 10_000


class Result(StrEnum):
    """The in-toto test-result vocabulary, used for every kind of evidence."""

    PASSED = "PASSED"
    WARNED = "WARNED"
    FAILED = "FAILED"


class ReportFormat(StrEnum):
    JUNIT = "junit"
    SARIF = "sarif"
    CYCLONEDX = "cyclonedx"
    PIP_AUDIT = "pip-audit"
    GENERIC = "generic-json"


#: Formats that report test cases; their attestations use the in-toto test-result predicate.
TEST_FORMATS = frozenset({ReportFormat.JUNIT, ReportFormat.GENERIC})


@dataclass(frozen=True)
class Report:
    """A parsed report. ``summary`` is small and JSON-able whatever the size of the report."""

    format: ReportFormat
    result: Result
    summary: Mapping[str, Any]
    tool: str | None = None
    passed_tests: tuple[str, ...] = field(default=())
    failed_tests: tuple[str, ...] = field(default=())
    warned_tests: tuple[str, ...] = field(default=())

    @property
    def passed(self) -> bool:
        """Whether the evidence can satisfy a control: a failed report never does."""
        return self.result is not Result.FAILED

    @property
    def is_test_report(self) -> bool:
        return self.format in TEST_FORMATS


#: The summary figures a person reads first, in order, across formats.
HEADLINE_KEYS = (
    "tests",
    "failures",
    "errors",
    "skipped",
    "pass_rate",
    "findings",
    "by_level",
    "components",
    "dependencies",
    "vulnerabilities",
)


def headline(summary: Mapping[str, Any]) -> str:
    """A one-line digest of a summary, e.g. ``tests=3 failures=0 errors=0 skipped=0``."""
    parts = []
    for key in HEADLINE_KEYS:
        if key not in summary:
            continue
        value = summary[key]
        if isinstance(value, Mapping):
            value = ",".join(f"{k}:{v}" for k, v in value.items() if v)
        elif isinstance(value, float):
            value = f"{value:.3g}"
        parts.append(f"{key}={value}")
    if not parts:
        parts = [f"{k}={v}" for k, v in list(summary.items())[:4] if not isinstance(v, Mapping)]
    return " ".join(parts)
