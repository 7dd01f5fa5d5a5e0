"""Generic JSON results (contract and workflow tests, AI prompt-regression and output-schema
checks, rollback drills, post-deploy verification...) → :class:`Report`.

The contract for any tool: write one JSON object with a boolean ``passed`` and whatever else it
likes. The summary keeps the top-level scalar members as written (at most
:data:`MAX_FIELDS`, strings clipped to 200 characters); nested values stay in the raw report.
Lists of strings named ``passed_tests``, ``warned_tests`` and ``failed_tests`` become the test
names (at most :data:`MAX_TEST_NAMES` of each). A string ``tool`` member names the tool.

The result follows ``passed``, failing closed: ``passed: true`` with a non-empty
``failed_tests`` is FAILED (with a note), and with a non-empty ``warned_tests`` is WARNED.
"""

from __future__ import annotations

from typing import Any

from clearance.core.evidence import MAX_TEST_NAMES, Report, ReportFormat, Result

from .bounds import NameList, Scalar, clip, summary_scalar
from .jsonpull import JsonReader, read_json
from .source import Source

#: Top-level scalar members kept in the summary, in file order.
MAX_FIELDS = 50
_NAME_LISTS = ("passed_tests", "warned_tests", "failed_tests")
_COMPOSITE = ("an object", "a list")


def parse(source: Source) -> Report:
    fields: dict[str, Scalar] = {}
    omitted = 0
    passed: bool | None = None
    names = {key: NameList(MAX_TEST_NAMES) for key in _NAME_LISTS}
    with read_json(source) as reader:
        if reader.kind() != "an object":
            raise source.error(
                f'expected a JSON object with a boolean "passed", found {reader.kind()}'
            )
        for key in reader.members(unique=("passed", *_NAME_LISTS)):
            kind = reader.kind()
            if key in names and kind == "a list":
                _read_names(reader, names[key])
                continue
            if key == "passed" and kind != "a boolean":
                raise reader.error(f"must be true or false, found {kind}")
            if kind in _COMPOSITE:
                continue
            value = reader.scalar()
            if key == "passed":
                passed = bool(value)
            if len(fields) < MAX_FIELDS:
                fields[clip(key)] = summary_scalar(value)
            else:
                omitted += 1
        reader.finish()
    if passed is None:
        raise source.error('no boolean "passed" member at the top level of the JSON object')
    return _report(fields, omitted, passed, names)


def _read_names(reader: JsonReader, names: NameList) -> None:
    for _ in reader.items():
        if reader.kind() != "a string":
            raise reader.error(f"test names must be strings, found {reader.kind()}")
        names.add(reader.string() or "")


def _report(
    fields: dict[str, Scalar], omitted: int, passed: bool, names: dict[str, NameList]
) -> Report:
    summary: dict[str, Any] = dict(fields)
    if omitted:
        summary["fields_omitted"] = omitted
    lists = [key for key in _NAME_LISTS if names[key].total]
    for key in lists:
        summary[f"{key}_count"] = names[key].total
    if lists:
        summary["names_truncated"] = any(names[key].truncated for key in lists)
    failed, warned = names["failed_tests"].total, names["warned_tests"].total
    if not passed:
        result = Result.FAILED
    elif failed:
        result = Result.FAILED
        summary["note"] = f'"passed" is true but {failed} failed test(s) are listed'
    elif warned:
        result = Result.WARNED
    else:
        result = Result.PASSED
    tool = fields.get("tool")
    return Report(
        format=ReportFormat.GENERIC,
        result=result,
        summary=summary,
        tool=tool if isinstance(tool, str) and tool else None,
        passed_tests=tuple(names["passed_tests"].names),
        warned_tests=tuple(names["warned_tests"].names),
        failed_tests=tuple(names["failed_tests"].names),
    )
