"""CycloneDX JSON: cyclonedx-py's SBOM of this environment, nested components, licence shapes."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from clearance.core.evidence import ReportFormat, Result
from clearance.errors import EvidenceFormatError
from clearance.evidence import read_report

from .builders import write_json


def licence_names(component: dict[str, Any]) -> set[str]:
    names = set()
    for entry in component.get("licenses", []):
        found = entry.get("expression") or entry.get("license", {}).get("id")
        found = found or entry.get("license", {}).get("name")
        if found:
            names.add(found)
    return names


def bom(*components: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"bomFormat": "CycloneDX", "specVersion": "1.5", "components": list(components), **extra}


class TestCycloneDxPy:
    def test_counts_match_the_sbom(self, cyclonedx_bom: Path) -> None:
        raw = json.loads(cyclonedx_bom.read_text())
        expected: Counter[str] = Counter()
        for component in raw["components"]:
            expected.update(licence_names(component))
        report = read_report(cyclonedx_bom)
        assert report.format is ReportFormat.CYCLONEDX
        assert report.result is Result.PASSED
        summary = dict(report.summary)
        assert summary["spec_version"] == "1.6"
        assert summary["components"] == len(raw["components"])
        assert summary["components_without_licence"] == sum(
            1 for c in raw["components"] if not licence_names(c)
        )
        assert summary["licences"] == dict(
            sorted(expected.items(), key=lambda kv: (-kv[1], kv[0]))[:20]
        )

    def test_tool_comes_from_metadata(self, cyclonedx_bom: Path) -> None:
        report = read_report(cyclonedx_bom)
        assert report.tool == "cyclonedx-py"
        assert report.summary["tool_version"]


class TestShapes:
    def test_nested_components_and_every_licence_shape(self, tmp_path: Path) -> None:
        doc = bom(
            {
                "name": "app",
                "licenses": [{"expression": "MIT OR Apache-2.0"}],
                "components": [
                    {"name": "inner", "licenses": [{"license": {"id": "MIT"}}]},
                    {"name": "bare"},
                ],
            },
            {
                "name": "named",
                "licenses": [
                    {"license": {"name": "Custom EULA"}},
                    {"license": {"url": "https://x"}},
                ],
            },
            {"name": "urlonly", "licenses": [{"license": {"url": "https://x"}}]},
        )
        summary = read_report(write_json(tmp_path / "bom.json", doc)).summary
        assert summary["components"] == 5
        assert summary["components_without_licence"] == 2
        assert summary["licences"] == {"Custom EULA": 1, "MIT": 1, "MIT OR Apache-2.0": 1}
        assert summary["spec_version"] == "1.5"

    def test_legacy_tools_list(self, tmp_path: Path) -> None:
        doc = bom(metadata={"tools": [{"vendor": "anchore", "name": "syft", "version": "0.90"}]})
        report = read_report(write_json(tmp_path / "bom.json", doc))
        assert (report.tool, report.summary["tool_version"]) == ("syft", "0.90")

    def test_no_components(self, tmp_path: Path) -> None:
        summary = read_report(write_json(tmp_path / "bom.json", bom())).summary
        assert summary["components"] == 0
        assert summary["licences"] == {}

    def test_licences_are_capped(self, tmp_path: Path) -> None:
        doc = bom(*[{"licenses": [{"license": {"id": f"L{i:02}"}}]} for i in range(30)])
        summary = read_report(write_json(tmp_path / "bom.json", doc)).summary
        assert len(summary["licences"]) == 20
        assert summary["licences_truncated"] is True


class TestRefusals:
    def test_components_not_a_list(self, tmp_path: Path) -> None:
        path = write_json(tmp_path / "bom.json", {"bomFormat": "CycloneDX", "components": {}})
        with pytest.raises(
            EvidenceFormatError, match=r"bom\.json: components: expected a list, found an object"
        ):
            read_report(path)

    def test_absurd_nesting(self, tmp_path: Path) -> None:
        component: dict[str, Any] = {"name": "leaf"}
        for _ in range(100):
            component = {"name": "box", "components": [component]}
        path = write_json(tmp_path / "bom.json", bom(component))
        with pytest.raises(
            EvidenceFormatError, match=r"components nested more than 64 levels deep"
        ):
            read_report(path)
