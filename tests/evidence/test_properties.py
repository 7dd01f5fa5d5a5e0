"""Properties over generated input: nothing but a Report or a clearance Error ever comes out of
``read_report``, and generated JUnit documents read back to exactly what was written."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from xml.sax.saxutils import quoteattr

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clearance.core.canonical import canonical_json
from clearance.core.evidence import Report, Result
from clearance.errors import Error
from clearance.evidence import read_report

from .builders import OUTCOMES, Case, junit_xml

FUZZ = settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])

KEYS = [
    "version", "runs", "$schema", "tool", "driver", "name", "semanticVersion", "results",
    "level", "kind", "ruleId", "rule", "id", "bomFormat", "specVersion", "components",
    "licenses", "license", "expression", "metadata", "tools", "services", "dependencies",
    "fixes", "vulns", "fix_versions", "skip_reason", "passed", "passed_tests",
    "failed_tests", "warned_tests",
]  # fmt: skip
WORDS = ["2.1.0", "CycloneDX", "error", "warning", "note", "none", "fail", "pass", "sarif"]
SCALARS = (
    st.sampled_from(WORDS)
    | st.text(max_size=6)
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.booleans()
    | st.none()
)
JSON_VALUES = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=3), inner, max_size=5)
    ),
    max_leaves=25,
)
#: Documents that pass detection as one format or another, so the parsers meet odd shapes.
SHAPED = st.one_of(
    JSON_VALUES.map(lambda v: {"version": "2.1.0", "runs": v}),
    JSON_VALUES.map(lambda v: {"version": "2.1.0", "runs": [{"tool": v, "results": v}]}),
    JSON_VALUES.map(lambda v: {"version": "2.1.0", "runs": [{"results": [v, {"rule": v}]}]}),
    JSON_VALUES.map(lambda v: {"bomFormat": "CycloneDX", "components": v, "metadata": v}),
    JSON_VALUES.map(lambda v: {"bomFormat": "CycloneDX", "components": [{"licenses": v}]}),
    JSON_VALUES.map(lambda v: {"dependencies": [{"vulns": v}], "fixes": v}),
    JSON_VALUES.map(lambda v: [{"name": v, "version": v, "vulns": [v]}]),
    JSON_VALUES.map(lambda v: {"passed": True, "passed_tests": v, "x": v}),
)
XML_BITS = [
    '<?xml version="1.0"?>', "<testsuites>", "</testsuites>", '<testsuite name="s">',
    "</testsuite>", '<testcase classname="c" name="n" time="1">', "</testcase>",
    "<testcase/>", "<failure/>", "<error>", "</error>", "<skipped/>", "&amp;", "&lt;",
    "&unknown;", "<!DOCTYPE x>", '<!ENTITY a "b">', "<!--", "-->", "<![CDATA[", "]]>", "<?pi x?>",
    "\n", " ", '"', "'", "=", "<", ">", "/",
]  # fmt: skip
XML_NOISE = st.lists(
    st.sampled_from(XML_BITS) | st.text(alphabet="<>/=\"'&;!?abc ", max_size=4), max_size=25
).map("".join)
TAGS = st.sampled_from(
    ["testsuites", "testsuite", "testcase", "failure", "error", "skipped", "system-out", "x"]
)
ATTRIBUTES = st.dictionaries(
    st.sampled_from(["name", "classname", "time", "message"]), st.text(max_size=5), max_size=3
)


def _element(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    def render(tag: str, attributes: dict[str, str], kids: list[str]) -> str:
        attrs = "".join(f" {key}={quoteattr(value)}" for key, value in attributes.items())
        return f"<{tag}{attrs}>{''.join(kids)}</{tag}>"

    return st.builds(render, TAGS, ATTRIBUTES, st.lists(children, max_size=4))


XML_TREES = st.recursive(st.sampled_from(["", "text", "&amp;", "<x/>"]), _element, max_leaves=20)
XML_ISH = XML_TREES | XML_NOISE | st.builds(str.__add__, XML_TREES, XML_NOISE)
PREFIXES = st.sampled_from([b"", b"<", b"{", b"[", b"\xef\xbb\xbf", b"<?xml version='1.0'?>"])


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz") / "report"


def read_or_refuse(path: Path, data: bytes) -> Report | None:
    """``read_report`` of ``data``: a Report with a signable summary, or a one-line Error."""
    path.write_bytes(data)
    try:
        report = read_report(path)
    except Error as exc:
        assert "\n" not in str(exc), str(exc)
        assert exc.where == str(path)
        return None
    canonical_json(dict(report.summary))
    return report


class TestNothingElseEscapes:
    @FUZZ
    @given(prefix=PREFIXES, data=st.binary(max_size=300))
    def test_random_bytes(self, scratch: Path, prefix: bytes, data: bytes) -> None:
        read_or_refuse(scratch, prefix + data)

    @FUZZ
    @given(value=JSON_VALUES | SHAPED, cut=st.none() | st.integers(min_value=0))
    def test_json_values_whole_or_cut(self, scratch: Path, value: Any, cut: int | None) -> None:
        data = json.dumps(value).encode()
        read_or_refuse(scratch, data if cut is None else data[:cut])

    @FUZZ
    @given(text=XML_ISH)
    def test_xml_ish_text(self, scratch: Path, text: str) -> None:
        read_or_refuse(scratch, text.encode())


NAME_CHARS = st.characters(codec="utf-8", exclude_categories=("Cs", "Cc", "Cn")) | st.sampled_from(
    "\t\n\r<>&\"' .;"
)
CASES = st.builds(
    Case,
    classname=st.text(NAME_CHARS, max_size=10),
    name=st.text(NAME_CHARS, min_size=1, max_size=20),
    outcome=st.sampled_from(OUTCOMES),
    time=st.none() | st.floats(min_value=0, max_value=100).map(str),
)


class TestJunitRoundTrip:
    @settings(max_examples=150, deadline=None)
    @given(suites=st.lists(st.lists(CASES, max_size=12), max_size=4), bare=st.booleans())
    def test_counts_and_names_read_back(
        self, scratch: Path, suites: list[list[Case]], bare: bool
    ) -> None:
        if bare:
            suites = [[case for suite in suites for case in suite]]
        xml = junit_xml(suites, root="testsuite" if bare else "testsuites")
        report = read_or_refuse(scratch, xml.encode())
        assert report is not None

        cases = [case for suite in suites for case in suite]
        count = {outcome: sum(c.outcome == outcome for c in cases) for outcome in OUTCOMES}
        summary = report.summary
        assert summary["tests"] == len(cases)
        assert summary["passed"] == count["passed"]
        assert summary["failures"] == count["failure"]
        assert summary["errors"] == count["error"]
        assert summary["skipped"] == count["skipped"]
        assert summary["suites"] == len(suites)
        assert report.passed_tests == tuple(c.full_name for c in cases if c.outcome == "passed")
        assert report.failed_tests == tuple(
            c.full_name for c in cases if c.outcome in ("failure", "error")
        )
        seconds = sum(float(c.time) for c in cases if c.time)
        assert summary["duration_seconds"] == pytest.approx(seconds, abs=1e-5)
        failed = count["failure"] + count["error"] > 0 or count["passed"] == 0
        assert report.result is (Result.FAILED if failed else Result.PASSED)
