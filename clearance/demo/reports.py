"""The reports CI would produce for the sample, made here by running the real tools on it.

pytest writes the JUnit reports (unit and integration suites), bandit the SARIF scan, cyclonedx-py
the CycloneDX SBOM, and the sample's own contract check a generic JSON result. pip-audit needs a
vulnerability service this machine cannot reach, so :meth:`Reports.sca_stand_in` writes a report
in pip-audit's JSON format from the requirements with no vulnerabilities; the story says so.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from clearance.core.dependencies import pinned_requirements
from clearance.errors import InfrastructureError

#: The Python modules the demo runs, and the package that provides each.
TOOLS = {"pytest": "pytest", "bandit": "bandit[sarif]", "cyclonedx_py": "cyclonedx-bom"}


def check_tools() -> None:
    """Refuse to start when a tool the story needs is not installed."""
    missing = [package for module, package in TOOLS.items() if not importlib.util.find_spec(module)]
    if missing:
        raise InfrastructureError(
            f"the demo runs real tools and these are not installed: {', '.join(missing)}",
            hint="pip install 'clearance[demo]'",
        )


class Reports:
    """Runs the tools in the sample repository and writes their reports under ``out``."""

    def __init__(self, repo: Path, out: Path) -> None:
        self.repo = repo
        self.out = out
        out.mkdir(parents=True, exist_ok=True)

    def _run(self, label: str, args: list[str], report: Path, ok: tuple[int, ...]) -> Path:
        # Third-party pytest plugins are not the sample's: skipping their discovery saves ~1 s.
        env = {**os.environ, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
        proc = subprocess.run(
            [sys.executable, "-m", *args],
            cwd=self.repo,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        if proc.returncode not in ok or not report.exists():
            said = (proc.stderr or proc.stdout).strip().splitlines()
            raise InfrastructureError(
                f"{label} failed (exit {proc.returncode}): {said[-1] if said else 'no output'}",
                where=str(self.repo),
            )
        return report

    def pytest(self, name: str, suite: str) -> Path:
        """Run one test suite of the sample and return its JUnit XML (failures are evidence)."""
        report = self.out / f"{name}.xml"
        return self._run(
            f"pytest {suite}",
            ["pytest", "-q", f"--junitxml={report}", "-o", f"junit_suite_name={name}", suite],
            report,
            ok=(0, 1),
        )

    def bandit(self, name: str, target: str) -> Path:
        """A SARIF scan of ``target``; bandit exits 1 when it finds something, still a report."""
        report = self.out / f"{name}.sarif"
        return self._run(
            "bandit",
            ["bandit", "-q", "-r", target, "-f", "sarif", "-o", str(report)],
            report,
            ok=(0, 1),
        )

    def sbom(self, name: str) -> Path:
        """A reproducible CycloneDX 1.6 SBOM of the sample's requirements."""
        report = self.out / f"{name}.cdx.json"
        return self._run(
            "cyclonedx-py",
            [
                "cyclonedx_py",
                "requirements",
                "requirements.txt",
                "--of",
                "JSON",
                "--sv",
                "1.6",
                "--output-reproducible",
                "-o",
                str(report),
            ],
            report,
            ok=(0,),
        )

    def contract(self, name: str) -> Path:
        """The sample's order-API contract check, which prints a generic JSON result."""
        report = self.out / f"{name}.json"
        module = "services.orders.tools.check_contract"
        proc = subprocess.run(
            [sys.executable, "-m", module],
            cwd=self.repo,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if proc.returncode != 0 or not proc.stdout.strip():
            raise InfrastructureError(
                f"the contract check failed (exit {proc.returncode}): {proc.stderr.strip()}",
                where=str(self.repo),
            )
        report.write_text(proc.stdout)
        return report

    def sca_stand_in(self, name: str) -> Path:
        """pip-audit's JSON for the pinned requirements, with no vulnerabilities (see module)."""
        text = (self.repo / "requirements.txt").read_text()
        dependencies = [
            {"name": req.name, "version": req.version, "vulns": []}
            for req in pinned_requirements(text)
        ]
        return self.generic(name, {"dependencies": dependencies, "fixes": []})

    def generic(self, name: str, data: dict[str, Any]) -> Path:
        report = self.out / f"{name}.json"
        report.write_text(json.dumps(data, indent=2) + "\n")
        return report
