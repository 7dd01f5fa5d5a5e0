"""Generic JSON results: any tool's object with a boolean "passed"."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from clearance.core.evidence import MAX_TEST_NAMES, ReportFormat, Result
from clearance.errors import EvidenceFormatError
from clearance.evidence import read_report

from .builders import write_json

CONTRACT_RUN = {
    "tool": "schemathesis",
    "suite": "orders-api contract",
    "passed": True,
    "checks": 412,
    "duration_seconds": 12.5,
    "failures": 0,
    "operations": [{"path": "/orders", "checks": 200}],
    "config": {"base_url": "http://127.0.0.1:8000"},
    "seed": None,
    "passed_tests": ["GET /orders", "POST /orders"],
}


class TestSummary:
    def test_top_level_scalars_are_kept_nested_values_are_not(self, tmp_path: Path) -> None:
        report = read_report(write_json(tmp_path / "contract.json", CONTRACT_RUN))
        assert report.format is ReportFormat.GENERIC
        assert report.result is Result.PASSED
        assert report.tool == "schemathesis"
        assert dict(report.summary) == {
            "tool": "schemathesis",
            "suite": "orders-api contract",
            "passed": True,
            "checks": 412,
            "duration_seconds": 12.5,
            "failures": 0,
            "seed": None,
            "passed_tests_count": 2,
            "names_truncated": False,
        }
        assert report.passed_tests == ("GET /orders", "POST /orders")
        assert report.is_test_report

    def test_false_fails(self, tmp_path: Path) -> None:
        doc = {"passed": False, "failed_tests": ["prompt: refund policy"], "drift": 0.31}
        report = read_report(write_json(tmp_path / "ai-eval.json", doc))
        assert report.result is Result.FAILED
        assert report.failed_tests == ("prompt: refund policy",)
        assert report.tool is None

    def test_passed_with_failed_tests_fails_closed(self, tmp_path: Path) -> None:
        doc = {"passed": True, "failed_tests": ["rollback restores v1"]}
        report = read_report(write_json(tmp_path / "drill.json", doc))
        assert report.result is Result.FAILED
        assert "1 failed test" in report.summary["note"]

    def test_passed_with_warned_tests_warns(self, tmp_path: Path) -> None:
        doc = {"passed": True, "warned_tests": ["latency p99 near budget"]}
        report = read_report(write_json(tmp_path / "verify.json", doc))
        assert report.result is Result.WARNED
        assert report.warned_tests == ("latency p99 near budget",)

    def test_fields_and_strings_are_capped(self, tmp_path: Path) -> None:
        doc: dict[str, object] = {f"k{i:03}": i for i in range(80)}
        doc["passed"] = True
        doc["blurb"] = "x" * 1000
        summary = read_report(write_json(tmp_path / "big.json", doc)).summary
        assert len(summary) == 51
        assert summary["fields_omitted"] == 32
        assert "blurb" not in summary

        path = write_json(tmp_path / "long.json", {"passed": True, "blurb": "é" * 1000})
        blurb = read_report(path).summary["blurb"]
        assert len(blurb) == 200
        assert blurb.endswith("…")

    def test_huge_integers_become_strings(self, tmp_path: Path) -> None:
        path = write_json(tmp_path / "n.json", {"passed": True, "n": 2**60, "m": 2**53 - 1})
        summary = read_report(path).summary
        assert summary["n"] == str(2**60)
        assert summary["m"] == 2**53 - 1

    def test_test_names_are_capped(self, tmp_path: Path) -> None:
        doc = {"passed": True, "passed_tests": [f"t{i}" for i in range(MAX_TEST_NAMES + 1)]}
        report = read_report(write_json(tmp_path / "many.json", doc))
        assert len(report.passed_tests) == MAX_TEST_NAMES
        assert report.summary["passed_tests_count"] == MAX_TEST_NAMES + 1
        assert report.summary["names_truncated"] is True

    def test_a_count_named_passed_tests_is_just_a_field(self, tmp_path: Path) -> None:
        report = read_report(write_json(tmp_path / "c.json", {"passed": True, "passed_tests": 9}))
        assert report.summary["passed_tests"] == 9
        assert report.passed_tests == ()

    def test_summary_is_json(self, tmp_path: Path) -> None:
        summary = dict(read_report(write_json(tmp_path / "c.json", CONTRACT_RUN)).summary)
        assert json.loads(json.dumps(summary, allow_nan=False)) == summary


class TestRefusals:
    @pytest.mark.parametrize(
        ("value", "kind"), [("yes", "a string"), (1, "a number"), (None, "null"), ([], "a list")]
    )
    def test_passed_must_be_a_boolean(self, tmp_path: Path, value: object, kind: str) -> None:
        path = write_json(tmp_path / "r.json", {"passed": value})
        with pytest.raises(
            EvidenceFormatError, match=rf"r\.json: passed: must be true or false, found {kind}"
        ):
            read_report(path)

    def test_passed_twice(self, tmp_path: Path) -> None:
        path = tmp_path / "twice.json"
        path.write_text('{"passed": false, "detail": "x", "passed": true}')
        with pytest.raises(EvidenceFormatError, match=r"twice\.json: passed: appears twice"):
            read_report(path)

    def test_test_names_must_be_strings(self, tmp_path: Path) -> None:
        path = write_json(tmp_path / "r.json", {"passed": True, "failed_tests": ["a", {"n": 1}]})
        with pytest.raises(
            EvidenceFormatError, match=r"failed_tests\[1\]: test names must be strings"
        ):
            read_report(path)
