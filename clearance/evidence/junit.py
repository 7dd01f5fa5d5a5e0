"""JUnit XML (pytest ``--junitxml``, Maven Surefire, most CI tools) → :class:`Report`.

The document streams through the defused parser (no DTD, no entities, no external references)
into a target that only counts: no element tree is ever built, so a 200,000-case report parses
in a few megabytes. Each ``<testcase>`` is classified by its first-level children, ``<failure>``
before ``<error>`` before ``<skipped>``; a case with none of them passed (Surefire's
``<flakyFailure>`` and ``<rerunFailure>`` notes do not change that). Test names are
``classname.name`` and only the first :data:`MAX_TEST_NAMES` of each kind are kept.

The result is FAILED when any case failed or errored, and also when nothing ran (no test cases,
or all skipped): an empty report proves nothing.
"""

from __future__ import annotations

import math
from typing import Any

from clearance.core.evidence import MAX_TEST_NAMES, Report, ReportFormat, Result

from .bounds import MAX_NAME_CHARS, clip
from .source import Source, open_report, parse_xml

_PASSED, _FAILED, _ERROR, _SKIPPED = 0, 1, 2, 3
_OUTCOMES = {"failure": _FAILED, "error": _ERROR, "skipped": _SKIPPED}


def parse(source: Source) -> Report:
    tally = _Tally(source)
    with open_report(source) as stream:
        parse_xml(stream, tally, source)
    return tally.report()


class _Tally:
    """The :class:`~.source.XmlHandler`: counts test cases as their elements open and close."""

    def __init__(self, source: Source) -> None:
        self._source = source
        self._depth = 0
        self._case: dict[str, str] | None = None
        self._case_depth = -1
        self._outcome = _PASSED
        self.tool: str | None = None
        self.counts = [0, 0, 0, 0]
        self.suites = 0
        self.duration = 0.0
        self.passed: list[str] = []
        self.failed: list[str] = []
        self.names_truncated = False

    def start(self, tag: str, attrib: dict[str, str]) -> None:
        depth = self._depth
        self._depth = depth + 1
        if self._case is not None:
            if depth == self._case_depth + 1:
                outcome = _OUTCOMES.get(tag)
                if outcome is not None and (self._outcome == _PASSED or outcome < self._outcome):
                    self._outcome = outcome
        elif tag == "testcase" and depth:
            self._case = attrib
            self._case_depth = depth
            self._outcome = _PASSED
        elif tag == "testsuite":
            self.suites += 1
            if not depth:
                self._root(attrib)
        elif not depth:
            if tag != "testsuites":
                raise self._source.error(
                    f"XML root element <{clip(tag, 80)}> is not a JUnit report "
                    "(expected <testsuites> or <testsuite>)"
                )
            self._root(attrib)

    def end(self, tag: str) -> None:
        self._depth -= 1
        case = self._case
        if case is None or self._depth != self._case_depth:
            return
        self._case = None
        outcome = self._outcome
        self.counts[outcome] += 1
        seconds = case.get("time")
        if seconds:
            self.duration += _seconds(seconds)
        if outcome == _PASSED:
            names = self.passed
        elif outcome == _SKIPPED:
            return
        else:
            names = self.failed
        if len(names) < MAX_TEST_NAMES:
            names.append(_name(case))
        else:
            self.names_truncated = True

    def _root(self, attrib: dict[str, str]) -> None:
        name = attrib.get("name")
        self.tool = clip(name) if name else None

    def report(self) -> Report:
        passed, failures, errors, skipped = self.counts
        tests = passed + failures + errors + skipped
        ran = tests - skipped
        summary: dict[str, Any] = {
            "tests": tests,
            "failures": failures,
            "errors": errors,
            "skipped": skipped,
            "passed": passed,
            "duration_seconds": round(self.duration, 6),
            "pass_rate": round(passed / ran, 6) if ran else 0.0,
            "suites": self.suites,
            "names_truncated": self.names_truncated,
        }
        if not tests:
            summary["note"] = "no test cases"
        elif not ran:
            summary["note"] = "every test case was skipped"
        failed = failures + errors > 0 or not ran
        return Report(
            format=ReportFormat.JUNIT,
            result=Result.FAILED if failed else Result.PASSED,
            summary=summary,
            tool=self.tool,
            passed_tests=tuple(self.passed),
            failed_tests=tuple(self.failed),
        )


def _name(case: dict[str, str]) -> str:
    classname = case.get("classname")
    name = case.get("name")
    if classname and name:
        full = f"{classname}.{name}"
    else:
        full = classname or name or "(unnamed test case)"
    return clip(full, MAX_NAME_CHARS)


def _seconds(text: str) -> float:
    """A ``time`` attribute in seconds; Surefire may write ``1,234.5``; junk counts as 0."""
    try:
        value = float(text.replace(",", "") if "," in text else text)
    except ValueError:
        return 0.0
    return value if math.isfinite(value) and value > 0 else 0.0
