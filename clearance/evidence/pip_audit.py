"""pip-audit JSON (``pip-audit -f json``) → :class:`Report`.

Two shapes: the current ``{"dependencies": [...], "fixes": [...]}`` and the older bare list of
dependencies. A dependency is ``{"name", "version", "vulns": [{"id", "fix_versions",
"aliases", "description"}]}``, or ``{"name", "skip_reason"}`` when pip-audit could not audit it.

The result is FAILED on any vulnerability; otherwise WARNED when a dependency was skipped (the
audit has a hole), else PASSED.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from clearance.core.evidence import Report, ReportFormat, Result

from .bounds import clip
from .jsonpull import JsonReader, read_json
from .source import Source

#: How many vulnerable packages the summary lists, and how many ids/fix versions for each.
MAX_PACKAGES = 50
MAX_PER_PACKAGE = 20


@dataclass
class _Tally:
    dependencies: int = 0
    skipped: int = 0
    vulnerabilities: int = 0
    vulnerable: int = 0
    packages: list[dict[str, Any]] = field(default_factory=list)
    fixes: int | None = None


def parse(source: Source) -> Report:
    tally = _Tally()
    with read_json(source) as reader:
        if reader.kind() == "a list":
            _read_dependencies(reader, tally)
        else:
            seen_dependencies = False
            for key in reader.members(unique=("dependencies", "fixes")):
                if key == "dependencies":
                    seen_dependencies = True
                    _read_dependencies(reader, tally)
                elif key == "fixes":
                    tally.fixes = sum(1 for _ in reader.items())
            if not seen_dependencies:
                raise reader.error('no "dependencies" list: not pip-audit JSON')
        reader.finish()
    summary: dict[str, Any] = {
        "dependencies": tally.dependencies,
        "skipped": tally.skipped,
        "vulnerabilities": tally.vulnerabilities,
        "vulnerable_dependencies": tally.vulnerable,
        "vulnerable_packages": tally.packages,
        "packages_truncated": tally.vulnerable > len(tally.packages),
    }
    if tally.fixes is not None:
        summary["fixes"] = tally.fixes
    if tally.vulnerabilities:
        result = Result.FAILED
    elif tally.skipped:
        result = Result.WARNED
    else:
        result = Result.PASSED
    return Report(format=ReportFormat.PIP_AUDIT, result=result, summary=summary, tool="pip-audit")


def _read_dependencies(reader: JsonReader, tally: _Tally) -> None:
    for _ in reader.items():
        _read_dependency(reader, tally)


def _read_dependency(reader: JsonReader, tally: _Tally) -> None:
    name = version = None
    ids: list[str] = []
    fix_versions: list[str] = []
    count = 0
    skipped = False
    for key in reader.members(unique=("name", "version", "vulns", "skip_reason")):
        if key == "name":
            name = reader.string()
        elif key == "version":
            version = reader.string()
        elif key == "skip_reason":
            skipped = True
        elif key == "vulns":
            for _ in reader.items():
                count += 1
                _read_vulnerability(reader, ids, fix_versions)
    tally.dependencies += 1
    tally.skipped += skipped
    if not count:
        return
    tally.vulnerabilities += count
    tally.vulnerable += 1
    if len(tally.packages) < MAX_PACKAGES:
        tally.packages.append(
            {
                "name": clip(name) if name else None,
                "version": clip(version) if version else None,
                "ids": ids,
                "fix_versions": fix_versions,
            }
        )


def _read_vulnerability(reader: JsonReader, ids: list[str], fix_versions: list[str]) -> None:
    for key in reader.members(unique=("id", "fix_versions")):
        if key == "id":
            found = reader.string()
            if found and len(ids) < MAX_PER_PACKAGE:
                ids.append(clip(found))
        elif key == "fix_versions":
            for _ in reader.items():
                fix = reader.string()
                if fix and len(fix_versions) < MAX_PER_PACKAGE and clip(fix) not in fix_versions:
                    fix_versions.append(clip(fix))
