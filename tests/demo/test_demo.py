"""`clearance demo`, the README's main job, runs end to end and leaves a state that verifies."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

from rich.console import Console

from clearance.demo.story import run_demo
from clearance.settings import Settings
from clearance.usecases.evidence import list_evidence
from clearance.usecases.instance import open_instance
from clearance.usecases.ledger import verify_ledger


def test_demo_story_leaves_a_verifiable_ledger(tmp_path: Path) -> None:
    buffer = io.StringIO()
    result = run_demo(tmp_path / "demo", Console(file=buffer, width=120))
    text = buffer.getvalue()
    assert "registering the same bytes again is a no-op (created=False)" in text
    assert f"OK {result.ledger_size} " in text
    assert "FAILED first bad: entry 1: record bytes do not match their stored leaf hash" in text
    with open_instance(Settings.from_env({}, home=result.home)) as instance:
        assert verify_ledger(instance).ok
        kinds = {e.data["type"]: e.data["result"] for e in list_evidence(instance, result.digest)}
    assert kinds == {
        "unit-tests": "PASSED",
        "sast": "FAILED",
        "sbom": "PASSED",
        "contract-tests": "PASSED",
    }


def test_demo_command_refuses_a_non_empty_directory(tmp_path: Path) -> None:
    (tmp_path / "precious.txt").write_text("keep me")
    proc = subprocess.run(
        [sys.executable, "-m", "clearance", "demo", "--dir", str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 2
    assert "the demo directory must be new or empty" in proc.stderr
    assert (tmp_path / "precious.txt").read_text() == "keep me"
