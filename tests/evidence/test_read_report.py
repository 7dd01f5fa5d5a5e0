"""The public entry points: detection from content, the expected format, names in messages."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import clearance.evidence
from clearance.core.evidence import ReportFormat
from clearance.errors import EvidenceFormatError
from clearance.evidence import detect_format, read_report

from .builders import write_json


@pytest.fixture(scope="module")
def samples(
    tmp_path_factory: pytest.TempPathFactory,
    junit_from_pytest: Path,
    bandit_reports: dict[str, Path],
    cyclonedx_bom: Path,
) -> dict[ReportFormat, Path]:
    """One real report per format, each under a misleading name."""
    root = tmp_path_factory.mktemp("misnamed")
    pip_audit = write_json(root / "audit", {"dependencies": [], "fixes": []})
    generic = write_json(root / "result", {"passed": True})
    misnamed = {
        ReportFormat.JUNIT: root / "report.json",
        ReportFormat.SARIF: root / "report.xml",
        ReportFormat.CYCLONEDX: root / "report.sarif",
        ReportFormat.PIP_AUDIT: root / "bom.cdx.json",
        ReportFormat.GENERIC: root / "junit.xml",
    }
    originals = {
        ReportFormat.JUNIT: junit_from_pytest,
        ReportFormat.SARIF: bandit_reports["risky"],
        ReportFormat.CYCLONEDX: cyclonedx_bom,
        ReportFormat.PIP_AUDIT: pip_audit,
        ReportFormat.GENERIC: generic,
    }
    for fmt, path in misnamed.items():
        shutil.copyfile(originals[fmt], path)
    return misnamed


class TestPublicApi:
    def test_exports(self) -> None:
        assert clearance.evidence.__all__ == ["detect_format", "read_report"]


class TestDetectFormat:
    @pytest.mark.parametrize("fmt", list(ReportFormat))
    def test_content_decides_not_the_name(
        self, samples: dict[ReportFormat, Path], fmt: ReportFormat
    ) -> None:
        assert detect_format(samples[fmt]) is fmt
        assert read_report(samples[fmt]).format is fmt

    def test_key_order_does_not_matter(self, tmp_path: Path) -> None:
        path = tmp_path / "late.json"
        path.write_text('{"runs": [{"results": [{"ruleId": "X"}]}], "version": "2.1.0"}')
        assert detect_format(path) is ReportFormat.SARIF
        path.write_text('{"components": [], "specVersion": "1.6", "bomFormat": "CycloneDX"}')
        assert detect_format(path) is ReportFormat.CYCLONEDX

    def test_cyclonedx_dependencies_are_not_pip_audit(self, tmp_path: Path) -> None:
        doc = {"dependencies": [{"ref": "a", "dependsOn": []}], "bomFormat": "CycloneDX"}
        assert detect_format(write_json(tmp_path / "b.json", doc)) is ReportFormat.CYCLONEDX

    def test_unrecognised_json_lists_its_keys(self, tmp_path: Path) -> None:
        path = write_json(tmp_path / "odd.json", {"status": "ok", "count": 3})
        with pytest.raises(
            EvidenceFormatError,
            match=r"odd\.json: not a recognised report \(JUnit XML, SARIF 2\.1\.0, CycloneDX JSON, "
            r'pip-audit JSON or a JSON object with a boolean "passed"\) '
            r"\(top-level keys: status, count\)",
        ):
            detect_format(path)

    @pytest.mark.parametrize("doc", [[], [1, 2], [{"name": "x"}], {}])
    def test_other_json_is_unrecognised(self, tmp_path: Path, doc: object) -> None:
        path = write_json(tmp_path / "x.json", doc)
        with pytest.raises(EvidenceFormatError, match=r"x\.json: not a recognised report"):
            read_report(path)


class TestExpected:
    def test_matching_format_is_read(self, samples: dict[ReportFormat, Path]) -> None:
        path = samples[ReportFormat.SARIF]
        assert read_report(path, expected=ReportFormat.SARIF).format is ReportFormat.SARIF

    def test_other_format_is_refused_saying_what_it_is(
        self, samples: dict[ReportFormat, Path]
    ) -> None:
        path = samples[ReportFormat.CYCLONEDX]
        with pytest.raises(
            EvidenceFormatError,
            match=r"report\.sarif: expected SARIF 2\.1\.0, but the file is CycloneDX JSON",
        ):
            read_report(path, expected=ReportFormat.SARIF)

    def test_generic_expected_junit_found(self, samples: dict[ReportFormat, Path]) -> None:
        with pytest.raises(
            EvidenceFormatError,
            match=r"expected a generic JSON result .* but the file is JUnit XML",
        ):
            read_report(samples[ReportFormat.JUNIT], expected=ReportFormat.GENERIC)


class TestNames:
    def test_messages_use_the_given_name(self, tmp_path: Path) -> None:
        path = tmp_path / "staged-copy"
        path.write_text("{")
        with pytest.raises(EvidenceFormatError) as caught:
            read_report(path, name="reports/unit.json")
        assert caught.value.where == "reports/unit.json"
        assert str(caught.value).startswith("reports/unit.json: truncated JSON")
