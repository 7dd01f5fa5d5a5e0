"""pip-audit JSON, written by hand in the shape pip-audit documents (its service is unreachable
from this machine): the current object shape, the older bare list and skipped dependencies."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from clearance.core.evidence import ReportFormat, Result
from clearance.errors import EvidenceFormatError
from clearance.evidence import read_report

from .builders import write_json

VULNERABLE: list[dict[str, Any]] = [
    {
        "name": "jinja2",
        "version": "3.1.2",
        "vulns": [
            {
                "id": "GHSA-h5c8-rqwp-cp95",
                "fix_versions": ["3.1.3"],
                "aliases": ["CVE-2024-22195"],
                "description": "The xmlattr filter accepts keys containing spaces.",
            },
            {"id": "PYSEC-2024-54", "fix_versions": ["3.1.4"], "aliases": []},
        ],
    },
    {"name": "flask", "version": "3.0.3", "vulns": []},
    {
        "name": "urllib3",
        "version": "2.0.6",
        "vulns": [
            {"id": "GHSA-34jh-p97f-mpxf", "fix_versions": ["1.26.19", "2.2.2"], "aliases": []}
        ],
    },
]
FIXES = [{"name": "jinja2", "old_version": "3.1.2", "new_version": "3.1.4"}]


def audit(deps: list[dict[str, Any]], fixes: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"dependencies": deps, "fixes": fixes or []}


class TestCurrentShape:
    def test_vulnerabilities_fail(self, tmp_path: Path) -> None:
        report = read_report(write_json(tmp_path / "audit.json", audit(VULNERABLE, FIXES)))
        assert report.format is ReportFormat.PIP_AUDIT
        assert report.result is Result.FAILED
        assert report.tool == "pip-audit"
        summary = dict(report.summary)
        assert summary["dependencies"] == 3
        assert summary["vulnerabilities"] == 3
        assert summary["fixes"] == 1
        assert summary["vulnerable_packages"] == [
            {
                "name": "jinja2",
                "version": "3.1.2",
                "ids": ["GHSA-h5c8-rqwp-cp95", "PYSEC-2024-54"],
                "fix_versions": ["3.1.3", "3.1.4"],
            },
            {
                "name": "urllib3",
                "version": "2.0.6",
                "ids": ["GHSA-34jh-p97f-mpxf"],
                "fix_versions": ["1.26.19", "2.2.2"],
            },
        ]

    def test_clean_audit_passes(self, tmp_path: Path) -> None:
        deps = [{"name": "flask", "version": "3.0.3", "vulns": []}]
        report = read_report(write_json(tmp_path / "audit.json", audit(deps)))
        assert report.result is Result.PASSED
        assert report.summary["vulnerabilities"] == 0

    def test_empty_environment(self, tmp_path: Path) -> None:
        report = read_report(write_json(tmp_path / "audit.json", audit([])))
        assert report.format is ReportFormat.PIP_AUDIT
        assert report.summary["dependencies"] == 0

    def test_skipped_dependency_warns(self, tmp_path: Path) -> None:
        deps: list[dict[str, Any]] = [
            {"name": "internal-lib", "skip_reason": "Dependency not found on PyPI"},
            {"name": "flask", "version": "3.0.3", "vulns": []},
        ]
        report = read_report(write_json(tmp_path / "audit.json", audit(deps)))
        assert report.result is Result.WARNED
        assert report.summary["skipped"] == 1

    def test_packages_listed_are_capped(self, tmp_path: Path) -> None:
        deps = [
            {
                "name": f"p{i}",
                "version": "1",
                "vulns": [{"id": f"V{i}-{j}", "fix_versions": []} for j in range(30)],
            }
            for i in range(60)
        ]
        summary = read_report(write_json(tmp_path / "audit.json", audit(deps))).summary
        assert summary["vulnerabilities"] == 1800
        assert len(summary["vulnerable_packages"]) == 50
        assert len(summary["vulnerable_packages"][0]["ids"]) == 20
        assert summary["packages_truncated"] is True


class TestOlderShape:
    def test_bare_list(self, tmp_path: Path) -> None:
        report = read_report(write_json(tmp_path / "audit.json", VULNERABLE))
        assert report.format is ReportFormat.PIP_AUDIT
        assert report.result is Result.FAILED
        assert report.summary["dependencies"] == 3
        assert "fixes" not in report.summary


class TestRefusals:
    def test_vulns_not_a_list(self, tmp_path: Path) -> None:
        deps: list[dict[str, Any]] = [
            {"name": "a", "version": "1", "vulns": []},
            {"name": "b", "vulns": "none"},
        ]
        path = write_json(tmp_path / "audit.json", audit(deps))
        with pytest.raises(
            EvidenceFormatError, match=r"dependencies\[1\]\.vulns: expected a list, found a string"
        ):
            read_report(path)
