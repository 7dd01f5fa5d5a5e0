"""Reports written by hand for the shapes no installed tool produces here, escaped properly."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape, quoteattr

OUTCOMES = ("passed", "failure", "error", "skipped")


@dataclass(frozen=True)
class Case:
    classname: str
    name: str
    outcome: str = "passed"
    time: str | None = "0.001"

    @property
    def full_name(self) -> str:
        return f"{self.classname}.{self.name}" if self.classname else self.name


def junit_xml(
    suites: Sequence[Sequence[Case]], *, root: str = "testsuites", name: str | None = "tool"
) -> str:
    """A JUnit document: ``<testsuites>`` holding the suites, or a bare ``<testsuite>``."""
    parts = ['<?xml version="1.0" encoding="utf-8"?>\n']
    if root == "testsuites":
        parts.append(f"<testsuites{_attr('name', name)}>\n")
    for index, cases in enumerate(suites):
        suite_name = name if root == "testsuite" else f"suite{index}"
        parts.append(f'<testsuite{_attr("name", suite_name)} tests="{len(cases)}">\n')
        parts.extend(_case(case) for case in cases)
        parts.append("</testsuite>\n")
    if root == "testsuites":
        parts.append("</testsuites>\n")
    return "".join(parts)


def _attr(key: str, value: str | None) -> str:
    return "" if value is None else f" {key}={quoteattr(value)}"


def _case(case: Case) -> str:
    attrs = _attr("classname", case.classname) + _attr("name", case.name) + _attr("time", case.time)
    if case.outcome == "passed":
        return f"  <testcase{attrs} />\n"
    body = escape("E   assert 1 == 2 <&>")
    return (
        f'  <testcase{attrs}>\n    <{case.outcome} message="it broke">{body}</{case.outcome}>\n'
        "    <system-out>some output</system-out>\n  </testcase>\n"
    )


def many_cases(count: int, *, fail_every: int = 20) -> Iterable[Case]:
    """``count`` cases, every ``fail_every``-th failing (none when it is 0)."""
    for i in range(count):
        outcome = "failure" if fail_every and i % fail_every == 0 else "passed"
        yield Case(f"tests.test_mod{i // 100}", f"test_case_{i}", outcome)


def write_json(path: Path, value: Any) -> Path:
    path.write_text(json.dumps(value), encoding="utf-8")
    return path
