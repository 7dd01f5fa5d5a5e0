"""SARIF 2.1.0: bandit's real output, the level defaults, rule ids and the shapes we refuse."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from clearance.core.evidence import ReportFormat, Result
from clearance.errors import EvidenceFormatError
from clearance.evidence import read_report

from .builders import write_json


def sarif(*runs: dict[str, Any], version: str = "2.1.0") -> dict[str, Any]:
    return {"version": version, "runs": list(runs)}


def run(*results: dict[str, Any], name: str = "scanner", **driver: str) -> dict[str, Any]:
    return {"tool": {"driver": {"name": name, **driver}}, "results": list(results)}


class TestBandit:
    def test_risky_code_fails_on_its_error_level_finding(
        self, bandit_reports: dict[str, Path]
    ) -> None:
        report = read_report(bandit_reports["risky"])
        assert report.format is ReportFormat.SARIF
        assert report.result is Result.FAILED
        assert report.tool == "Bandit"
        summary = dict(report.summary)
        assert summary["findings"] == 3
        assert summary["by_level"] == {"error": 1, "warning": 0, "note": 2, "none": 0}
        assert sorted(r["rule"] for r in summary["top_rules"]) == ["B101", "B404", "B602"]
        assert summary["runs"] == 1
        assert summary["tool_version"]

    def test_a_result_without_level_is_a_warning(self, bandit_reports: dict[str, Path]) -> None:
        raw = json.loads(bandit_reports["medium"].read_text())
        assert "level" not in raw["runs"][0]["results"][0]
        report = read_report(bandit_reports["medium"])
        assert report.result is Result.WARNED
        assert report.summary["by_level"]["warning"] == 1
        assert report.summary["top_rules"] == [{"rule": "B108", "count": 1}]

    def test_clean_code_passes(self, bandit_reports: dict[str, Path]) -> None:
        report = read_report(bandit_reports["clean"])
        assert report.result is Result.PASSED
        assert report.summary["findings"] == 0
        assert not report.is_test_report


class TestLevels:
    def test_notes_only_pass(self, tmp_path: Path) -> None:
        doc = sarif(run({"ruleId": "R1", "level": "note"}, {"ruleId": "R2", "level": "none"}))
        assert read_report(write_json(tmp_path / "s.json", doc)).result is Result.PASSED

    def test_kind_other_than_fail_defaults_to_none(self, tmp_path: Path) -> None:
        doc = sarif(run({"ruleId": "R1", "kind": "pass"}, {"ruleId": "R1", "kind": "fail"}))
        summary = read_report(write_json(tmp_path / "s.json", doc)).summary
        assert summary["by_level"] == {"error": 0, "warning": 1, "note": 0, "none": 1}

    def test_rules_are_counted_across_runs_top_first(self, tmp_path: Path) -> None:
        doc = sarif(
            run(*[{"ruleId": "A"}] * 3, {"rule": {"id": "B"}}, name="first", version="1.0"),
            run({"ruleId": "B"}, {"level": "error"}, name="second", semanticVersion="2.0.0"),
        )
        report = read_report(write_json(tmp_path / "s.json", doc))
        assert report.summary["top_rules"] == [
            {"rule": "A", "count": 3},
            {"rule": "B", "count": 2},
            {"rule": "(no rule)", "count": 1},
        ]
        assert (report.tool, report.summary["tool_version"]) == ("first", "1.0")
        assert report.summary["runs"] == 2
        assert report.result is Result.FAILED

    def test_top_rules_are_capped(self, tmp_path: Path) -> None:
        doc = sarif(run(*[{"ruleId": f"R{i:03}"} for i in range(100)]))
        summary = read_report(write_json(tmp_path / "s.json", doc)).summary
        assert len(summary["top_rules"]) == 20
        assert summary["rules_truncated"] is True
        assert summary["findings"] == 100

    def test_no_runs_proves_nothing(self, tmp_path: Path) -> None:
        report = read_report(write_json(tmp_path / "s.json", sarif()))
        assert report.result is Result.FAILED
        assert report.summary["note"] == "no runs"

    def test_schema_alone_identifies_sarif(self, tmp_path: Path) -> None:
        doc = {
            "runs": [run()],
            "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
            "version": "2.1.0",
        }
        assert read_report(write_json(tmp_path / "s.json", doc)).format is ReportFormat.SARIF


class TestRefusals:
    def test_wrong_version(self, tmp_path: Path) -> None:
        path = write_json(tmp_path / "old.sarif", sarif(run(), version="2.0.0"))
        with pytest.raises(
            EvidenceFormatError, match=r"old\.sarif: SARIF version '2\.0\.0' is not supported"
        ):
            read_report(path)

    def test_runs_not_a_list(self, tmp_path: Path) -> None:
        path = write_json(tmp_path / "s.sarif", {"version": "2.1.0", "runs": {"tool": {}}})
        with pytest.raises(
            EvidenceFormatError, match=r"s\.sarif: runs: expected a list, found an object"
        ):
            read_report(path)

    def test_unknown_level_names_its_path(self, tmp_path: Path) -> None:
        path = write_json(tmp_path / "s.sarif", sarif(run({}, {"level": "critical"})))
        with pytest.raises(
            EvidenceFormatError,
            match=r"runs\[0\]\.results\[1\]\.level: 'critical' is not a SARIF level",
        ):
            read_report(path)

    def test_driver_name_not_a_string(self, tmp_path: Path) -> None:
        path = write_json(tmp_path / "s.sarif", sarif({"tool": {"driver": {"name": 7}}}))
        with pytest.raises(
            EvidenceFormatError,
            match=r"runs\[0\]\.tool\.driver\.name: expected a string, found a number",
        ):
            read_report(path)

    def test_two_versions(self, tmp_path: Path) -> None:
        path = tmp_path / "dup.sarif"
        path.write_text('{"version": "2.1.0", "runs": [], "version": "2.1.0"}')
        with pytest.raises(EvidenceFormatError, match=r"dup\.sarif: version: appears twice"):
            read_report(path)
