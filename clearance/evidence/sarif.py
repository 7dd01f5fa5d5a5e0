"""SARIF 2.1.0 (bandit, semgrep, CodeQL, most static analysers) → :class:`Report`.

Streams ``runs[].tool.driver`` and ``runs[].results[]``, keeping only counts: results by level
and by rule. A result without ``level`` is a ``warning`` (the SARIF default), or ``none`` when
its ``kind`` says it is not a failure (``pass``, ``notApplicable``, ``informational``...). The
rule is ``ruleId``, else ``rule.id``. Rule-level default configurations are not consulted.

The result is FAILED on any error-level finding, WARNED on any warning, PASSED otherwise; a log
with no runs at all (``runs: []``, or ``null``: the tool did not start) is FAILED, since it
proves no analysis happened.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from clearance.core.evidence import Report, ReportFormat, Result

from .bounds import TopCounter, clip
from .jsonpull import JsonReader, read_json
from .source import Source

VERSION = "2.1.0"
LEVELS = ("error", "warning", "note", "none")


@dataclass
class _Tally:
    tool: str | None = None
    tool_version: str | None = None
    runs: int = 0
    findings: int = 0
    by_level: dict[str, int] = field(default_factory=lambda: dict.fromkeys(LEVELS, 0))
    rules: TopCounter = field(default_factory=TopCounter)


def parse(source: Source) -> Report:
    tally = _Tally()
    version: Any = None
    runs_null = False
    with read_json(source) as reader:
        for key in reader.members(unique=("version", "runs", "$schema")):
            if key == "version":
                version = reader.scalar()
            elif key == "runs":
                if reader.kind() == "null":
                    runs_null = True
                else:
                    for _ in reader.items():
                        _read_run(reader, tally)
        reader.finish()
    if version != VERSION:
        found = f"{clip(str(version), 40)!r}" if version is not None else "missing"
        raise source.error(f"SARIF version {found} is not supported (expected {VERSION!r})")
    return _report(tally, runs_null)


def _read_run(reader: JsonReader, tally: _Tally) -> None:
    tally.runs += 1
    for key in reader.members(unique=("tool", "results")):
        if key == "tool":
            for part in reader.members():
                if part == "driver":
                    _read_driver(reader, tally, first=tally.runs == 1)
        elif key == "results" and reader.kind() != "null":
            for _ in reader.items():
                _read_result(reader, tally)


def _read_driver(reader: JsonReader, tally: _Tally, *, first: bool) -> None:
    name = version = semantic = None
    for key in reader.members(unique=("name", "version", "semanticVersion")):
        if key == "name":
            name = reader.string()
        elif key == "version":
            version = reader.string()
        elif key == "semanticVersion":
            semantic = reader.string()
    if first:
        tally.tool = clip(name) if name else None
        found = version or semantic
        tally.tool_version = clip(found) if found else None


def _read_result(reader: JsonReader, tally: _Tally) -> None:
    level = kind = rule_id = None
    for key in reader.members(unique=("level", "kind", "ruleId", "rule")):
        if key == "level":
            level = reader.string()
            if level not in LEVELS:
                raise reader.error(f"{clip(str(level), 40)!r} is not a SARIF level {LEVELS}")
        elif key == "kind":
            kind = reader.string()
        elif key == "ruleId":
            rule_id = reader.string()
        elif key == "rule" and reader.kind() == "an object":
            for part in reader.members(unique=("id",)):
                if part == "id" and rule_id is None:
                    rule_id = reader.string()
    if level is None:
        level = "warning" if kind in (None, "fail") else "none"
    tally.findings += 1
    tally.by_level[level] += 1
    tally.rules.add(rule_id or "(no rule)")


def _report(tally: _Tally, runs_null: bool) -> Report:
    summary: dict[str, Any] = {
        "tool": tally.tool,
        "tool_version": tally.tool_version,
        "findings": tally.findings,
        "by_level": tally.by_level,
        "top_rules": [{"rule": rule, "count": count} for rule, count in tally.rules.top()],
        "rules_truncated": tally.rules.truncated,
        "runs": tally.runs,
    }
    if tally.by_level["error"]:
        result = Result.FAILED
    elif tally.by_level["warning"]:
        result = Result.WARNED
    else:
        result = Result.PASSED
    if not tally.runs:
        summary["note"] = "runs is null: the tool did not start" if runs_null else "no runs"
        result = Result.FAILED
    return Report(format=ReportFormat.SARIF, result=result, summary=summary, tool=tally.tool)
