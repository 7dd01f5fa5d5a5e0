"""JUnit XML: pytest's real report, Surefire-style bare suites, edge cases and bounded memory."""

from __future__ import annotations

import json
import tracemalloc
from pathlib import Path

import pytest

from clearance.core.evidence import MAX_TEST_NAMES, ReportFormat, Result
from clearance.errors import EvidenceFormatError
from clearance.evidence import read_report

from .builders import Case, junit_xml, many_cases
from .conftest import SAMPLE_FAILED, SAMPLE_PASSED


def write(tmp_path: Path, text: str, name: str = "report.xml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


class TestPytestReport:
    def test_counts_match_what_pytest_ran(self, junit_from_pytest: Path) -> None:
        report = read_report(junit_from_pytest)
        assert report.format is ReportFormat.JUNIT
        summary = dict(report.summary)
        assert summary["tests"] == 11
        assert summary["passed"] == 5
        assert summary["failures"] == 2
        assert summary["errors"] == 1
        assert summary["skipped"] == 3
        assert summary["suites"] == 1
        assert summary["pass_rate"] == pytest.approx(5 / 8)
        assert summary["duration_seconds"] >= 0
        assert summary["names_truncated"] is False

    def test_names_are_classname_dot_name_unescaped(self, junit_from_pytest: Path) -> None:
        report = read_report(junit_from_pytest)
        assert report.passed_tests == SAMPLE_PASSED
        assert report.failed_tests == SAMPLE_FAILED
        assert report.warned_tests == ()

    def test_failed_run_is_failed_evidence(self, junit_from_pytest: Path) -> None:
        report = read_report(junit_from_pytest)
        assert report.result is Result.FAILED
        assert not report.passed
        assert report.tool == "pytest tests"
        assert report.is_test_report

    def test_summary_is_json(self, junit_from_pytest: Path) -> None:
        summary = dict(read_report(junit_from_pytest).summary)
        assert json.loads(json.dumps(summary)) == summary


class TestShapes:
    def test_bare_testsuite_root_like_surefire(self, tmp_path: Path) -> None:
        cases = [Case("com.example.OrderTest", "totals"), Case("com.example.OrderTest", "tax")]
        xml = junit_xml([cases], root="testsuite", name="com.example.OrderTest")
        report = read_report(write(tmp_path, xml))
        assert report.result is Result.PASSED
        assert report.tool == "com.example.OrderTest"
        assert report.passed_tests == ("com.example.OrderTest.totals", "com.example.OrderTest.tax")
        assert report.summary["suites"] == 1
        assert report.summary["pass_rate"] == 1.0

    def test_counts_across_suites(self, tmp_path: Path) -> None:
        suites = [
            [Case("a", "one"), Case("a", "two", "failure")],
            [Case("b", "three", "error"), Case("b", "four", "skipped"), Case("b", "five")],
        ]
        report = read_report(write(tmp_path, junit_xml(suites)))
        assert dict(report.summary) | {"duration_seconds": 0} == {
            "tests": 5,
            "failures": 1,
            "errors": 1,
            "skipped": 1,
            "passed": 2,
            "duration_seconds": 0,
            "pass_rate": 0.5,
            "suites": 2,
            "names_truncated": False,
        }
        assert report.failed_tests == ("a.two", "b.three")
        assert report.summary["duration_seconds"] == pytest.approx(0.005)

    def test_failure_wins_over_error_and_skipped(self, tmp_path: Path) -> None:
        xml = (
            '<testsuites><testsuite name="s"><testcase classname="c" name="t">'
            "<skipped/><error/><failure/></testcase></testsuite></testsuites>"
        )
        summary = read_report(write(tmp_path, xml)).summary
        assert (summary["failures"], summary["errors"], summary["skipped"]) == (1, 0, 0)

    def test_flaky_notes_do_not_fail_a_passing_case(self, tmp_path: Path) -> None:
        xml = (
            '<testsuite name="s"><testcase classname="c" name="t">'
            "<flakyFailure message='once'/><system-out>x</system-out></testcase></testsuite>"
        )
        report = read_report(write(tmp_path, xml))
        assert report.result is Result.PASSED
        assert report.passed_tests == ("c.t",)

    def test_no_test_cases_is_failed(self, tmp_path: Path) -> None:
        report = read_report(write(tmp_path, '<testsuites name="pytest tests"/>'))
        assert report.result is Result.FAILED
        assert report.summary["note"] == "no test cases"
        assert report.summary["pass_rate"] == 0.0

    def test_all_skipped_is_failed(self, tmp_path: Path) -> None:
        xml = junit_xml([[Case("c", "a", "skipped"), Case("c", "b", "skipped")]])
        report = read_report(write(tmp_path, xml))
        assert report.result is Result.FAILED
        assert report.summary["note"] == "every test case was skipped"

    def test_odd_times_are_tolerated(self, tmp_path: Path) -> None:
        cases = [
            Case("c", "a", time="1,234.5"),
            Case("c", "b", time="soon"),
            Case("c", "d", time="nan"),
        ]
        summary = read_report(write(tmp_path, junit_xml([cases]))).summary
        assert summary["duration_seconds"] == 1234.5

    def test_missing_classname_or_root_name(self, tmp_path: Path) -> None:
        report = read_report(write(tmp_path, junit_xml([[Case("", "lonely")]], name=None)))
        assert report.passed_tests == ("lonely",)
        assert report.tool is None

    def test_byte_order_mark_and_leading_blank_lines(self, tmp_path: Path) -> None:
        path = tmp_path / "bom.xml"
        path.write_bytes(b"\xef\xbb\xbf" + junit_xml([[Case("c", "a")]]).encode())
        assert read_report(path).passed_tests == ("c.a",)
        path.write_bytes(b"\n\n  <testsuite><testcase name='a'/></testsuite>")
        assert read_report(path).passed_tests == ("a",)

    def test_declared_latin1_encoding(self, tmp_path: Path) -> None:
        path = tmp_path / "latin1.xml"
        text = (
            "<?xml version='1.0' encoding='iso-8859-1'?>"
            "<testsuite><testcase name='caf\xe9'/></testsuite>"
        )
        path.write_bytes(text.encode("latin-1"))
        assert read_report(path).passed_tests == ("café",)


class TestBounds:
    def test_names_are_capped(self, tmp_path: Path) -> None:
        xml = junit_xml([list(many_cases(MAX_TEST_NAMES + 5, fail_every=0))])
        report = read_report(write(tmp_path, xml))
        assert report.summary["tests"] == MAX_TEST_NAMES + 5
        assert report.summary["passed"] == MAX_TEST_NAMES + 5
        assert len(report.passed_tests) == MAX_TEST_NAMES
        assert report.passed_tests[-1] == f"tests.test_mod99.test_case_{MAX_TEST_NAMES - 1}"
        assert report.summary["names_truncated"] is True

    def test_long_names_are_clipped(self, tmp_path: Path) -> None:
        report = read_report(write(tmp_path, junit_xml([[Case("c", "x" * 5000)]])))
        (name,) = report.passed_tests
        assert len(name) == 500
        assert name.endswith("…")

    def test_20000_cases_parse_in_bounded_memory(self, tmp_path: Path) -> None:
        path = write(tmp_path, junit_xml([list(many_cases(20_000))]))
        tracemalloc.start()
        try:
            report = read_report(path)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert report.summary["tests"] == 20_000
        assert report.summary["failures"] == 1_000
        assert peak < 16 * 1024 * 1024, f"peak {peak / 1e6:.1f} MB"


class TestRefusals:
    def test_other_root_element_is_named(self, tmp_path: Path) -> None:
        path = write(tmp_path, "<html><body/></html>")
        with pytest.raises(EvidenceFormatError, match=r"XML root element <html> is not a JUnit"):
            read_report(path)

    def test_namespaced_root_is_named_in_clark_notation(self, tmp_path: Path) -> None:
        path = write(
            tmp_path, '<t:testsuites xmlns:t="urn:x"><t:testcase name="a"/></t:testsuites>'
        )
        with pytest.raises(EvidenceFormatError, match=r"XML root element <\{urn:x\}testsuites> is"):
            read_report(path)
