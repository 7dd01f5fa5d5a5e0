"""Real reports made by the real tools (pytest, bandit, cyclonedx-py), once per session.

pip-audit needs its vulnerability service, which this machine cannot reach, so its reports are
written by hand in the shape pip-audit documents (see ``test_pip_audit.py``).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

SAMPLE_TESTS = """
import pytest


def test_adds():
    assert 1 + 1 == 2


def test_strings():
    assert "a" < "b"


@pytest.mark.parametrize("n", [1, 2])
def test_param(n):
    assert n > 0


@pytest.mark.parametrize("text", ["<&>\\"'"])
def test_escaping(text):
    assert text


def test_fails():
    assert 1 == 2


def test_raises():
    raise ValueError("boom")


@pytest.fixture
def broken():
    raise RuntimeError("the fixture is broken")


def test_errors(broken):
    pass


@pytest.mark.skip(reason="not today")
def test_skipped():
    pass


def test_skips_inside():
    pytest.skip("later")


@pytest.mark.xfail(reason="known bug", strict=True)
def test_expected_failure():
    assert False
"""

#: What pytest's report of SAMPLE_TESTS holds, as ``classname.name``.
SAMPLE_PASSED = (
    "test_sample.test_adds",
    "test_sample.test_strings",
    "test_sample.test_param[1]",
    "test_sample.test_param[2]",
    "test_sample.test_escaping[<&>\"']",
)
SAMPLE_FAILED = ("test_sample.test_fails", "test_sample.test_raises", "test_sample.test_errors")

RISKY_CODE = """import subprocess


def run(command):
    assert command
    return subprocess.call(command, shell=True)
"""
MEDIUM_CODE = """def save(data):
    with open("/tmp/out.txt", "w") as f:
        f.write(data)
"""
CLEAN_CODE = """def add(a, b):
    return a + b
"""


def _tool_env() -> dict[str, str]:
    """Our environment without the variables pytest sets for itself."""
    return {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}


def run_tool(*args: str, cwd: Path, ok: tuple[int, ...] = (0,)) -> None:
    proc = subprocess.run(
        [sys.executable, *args],
        cwd=cwd,
        env=_tool_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode in ok, f"{args[:2]} exited {proc.returncode}: {proc.stderr[-2000:]}"


@pytest.fixture(scope="session")
def junit_from_pytest(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """pytest's own JUnit XML for SAMPLE_TESTS: 5 passed, 2 failed, 1 error, 3 skipped."""
    root = tmp_path_factory.mktemp("pytest-run")
    (root / "test_sample.py").write_text(SAMPLE_TESTS)
    report = root / "junit.xml"
    run_tool(
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        f"--junitxml={report}",
        "test_sample.py",
        cwd=root,
        ok=(1,),
    )
    return report


def _bandit(root: Path, name: str, code: str, ok: tuple[int, ...]) -> Path:
    (root / f"{name}.py").write_text(code)
    report = root / f"{name}.sarif"
    run_tool("-m", "bandit", "-q", "-f", "sarif", "-o", str(report), f"{name}.py", cwd=root, ok=ok)
    return report


@pytest.fixture(scope="session")
def bandit_reports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """bandit's SARIF for risky code (B404, B101 as notes; B602 as an error), code with only
    a medium issue (B108, written without a level: a warning) and clean code."""
    root = tmp_path_factory.mktemp("bandit-run")
    return {
        "risky": _bandit(root, "risky", RISKY_CODE, ok=(1,)),
        "medium": _bandit(root, "medium", MEDIUM_CODE, ok=(1,)),
        "clean": _bandit(root, "clean", CLEAN_CODE, ok=(0,)),
    }


@pytest.fixture(scope="session")
def cyclonedx_bom(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """cyclonedx-py's CycloneDX 1.6 SBOM of this very environment.

    ``--no-validate`` skips only the tool's check of its own output against the JSON schema,
    which takes 13 s of the 14; the SBOM is the same byte for byte.
    """
    root = tmp_path_factory.mktemp("cyclonedx-run")
    report = root / "bom.json"
    run_tool(
        "-m",
        "cyclonedx_py",
        "environment",
        "--sv",
        "1.6",
        "--of",
        "JSON",
        "--output-reproducible",
        "--no-validate",
        "-o",
        str(report),
        sys.executable,
        cwd=root,
    )
    return report


@contextmanager
def unprivileged() -> Iterator[None]:
    """Run the block without root's power to read any file (as ``nobody``), if we are root."""
    if os.geteuid() != 0:
        yield
        return
    os.setegid(65534)
    os.seteuid(65534)
    try:
        yield
    finally:
        os.seteuid(0)
        os.setegid(0)
