"""CycloneDX JSON SBOMs (cyclonedx-py, syft, trivy...) → :class:`Report`.

Streams ``components[]`` (and components nested inside components) counting them and their
licences: each ``licenses[]`` entry names one by ``license.id``, ``license.name`` or
``expression``; a component naming none counts as without a licence. ``metadata.tools`` gives
the tool, in either shape (1.5+: ``{"components": [...], "services": [...]}``; before: a list).
An SBOM is an inventory, so the result is always PASSED; rules judge the licences.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from clearance.core.evidence import Report, ReportFormat, Result

from .bounds import TopCounter, clip
from .jsonpull import JsonReader, read_json
from .source import Source

#: Components nest inside components; deeper than this is refused rather than recursed into.
MAX_NESTING = 64


@dataclass
class _Tally:
    components: int = 0
    without_licence: int = 0
    licences: TopCounter = field(default_factory=TopCounter)
    tool: str | None = None
    tool_version: str | None = None


def parse(source: Source) -> Report:
    tally = _Tally()
    bom_format = spec_version = None
    with read_json(source) as reader:
        for key in reader.members(unique=("bomFormat", "specVersion", "components", "metadata")):
            if key == "bomFormat":
                bom_format = reader.string()
            elif key == "specVersion":
                spec_version = reader.string()
            elif key == "components":
                _read_components(reader, tally, depth=1)
            elif key == "metadata":
                for part in reader.members(unique=("tools",)):
                    if part == "tools":
                        _read_tools(reader, tally)
        reader.finish()
    if bom_format != "CycloneDX":
        found = repr(clip(bom_format, 40)) if bom_format else "missing"
        raise source.error(f"bomFormat is {found}, not 'CycloneDX'")
    summary: dict[str, Any] = {
        "spec_version": clip(spec_version) if spec_version else None,
        "components": tally.components,
        "licences": dict(tally.licences.top()),
        "licences_truncated": tally.licences.truncated,
        "components_without_licence": tally.without_licence,
        "tool": tally.tool,
        "tool_version": tally.tool_version,
    }
    return Report(
        format=ReportFormat.CYCLONEDX, result=Result.PASSED, summary=summary, tool=tally.tool
    )


def _read_components(reader: JsonReader, tally: _Tally, depth: int) -> None:
    if depth > MAX_NESTING:
        raise reader.error(f"components nested more than {MAX_NESTING} levels deep")
    for _ in reader.items():
        tally.components += 1
        names: set[str] = set()
        for key in reader.members(unique=("licenses", "components")):
            if key == "licenses":
                for _ in reader.items():
                    _read_licence(reader, names)
            elif key == "components":
                _read_components(reader, tally, depth + 1)
        if names:
            tally.licences.update(sorted(names))
        else:
            tally.without_licence += 1


def _read_licence(reader: JsonReader, names: set[str]) -> None:
    """One ``licenses[]`` entry: ``{"license": {"id"|"name": ...}}`` or ``{"expression": ...}``."""
    for key in reader.members():
        if key == "expression":
            expression = reader.string()
            if expression:
                names.add(expression)
        elif key == "license":
            found = {}
            for part in reader.members(unique=("id", "name")):
                if part in ("id", "name"):
                    found[part] = reader.string()
            name = found.get("id") or found.get("name")
            if name:
                names.add(name)


def _read_tools(reader: JsonReader, tally: _Tally) -> None:
    if reader.kind() == "a list":  # CycloneDX 1.4 and before: [{"vendor", "name", "version"}]
        for _ in reader.items():
            _read_tool(reader, tally)
        return
    for key in reader.members():  # 1.5 and later: {"components": [...], "services": [...]}
        if key in ("components", "services"):
            for _ in reader.items():
                _read_tool(reader, tally)


def _read_tool(reader: JsonReader, tally: _Tally) -> None:
    name = version = None
    for key in reader.members(unique=("name", "version")):
        if key == "name":
            name = reader.string()
        elif key == "version":
            version = reader.string()
    if tally.tool is None and name:
        tally.tool = clip(name)
        tally.tool_version = clip(version) if version else None
