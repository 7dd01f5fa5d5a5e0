"""The sample clinical repository the demo governs: an orders service and a patient portal.

Small but real: the orders service has medication rules, a patient model, migrations and tests
that pass; the portal has help copy and locales. The files are plain text written here so the
demo needs nothing from the network.
"""

from __future__ import annotations

import os
import subprocess
import zipfile
from pathlib import Path

FILES: dict[str, str] = {
    "README.md": "# St. Example clinical platform\n\nOrders service and patient portal.\n",
    "requirements.txt": "flask==3.0.3\nrequests==2.32.3\n",
    "Dockerfile": 'FROM python:3.11-slim\nCOPY services/orders /app\nCMD ["python", "-m", "orders"]\n',
    "infra/deploy.yaml": "replicas: 2\nhealth_check: /healthz\n",
    "docs/runbooks/orders.md": "# Orders runbook\n\nRollback: redeploy the previous digest.\n",
    "services/orders/__init__.py": "",
    "services/orders/app.py": '''"""Order submission for the orders service."""

from services.orders.models.patient import Patient
from services.orders.rules.medication import check_dose


def submit_order(patient: Patient, drug: str, dose_mg: float) -> dict[str, object]:
    problems = check_dose(patient, drug, dose_mg)
    return {"accepted": not problems, "problems": problems}
''',
    "services/orders/models/__init__.py": "",
    "services/orders/models/patient.py": '''"""The patient record as the orders service sees it (synthetic data only)."""

from dataclasses import dataclass


@dataclass(frozen=True)
class Patient:
    mrn: str
    weight_kg: float
    age_years: int
''',
    "services/orders/rules/__init__.py": "",
    "services/orders/rules/medication.py": '''"""Medication dose rules: clinical logic, high risk by policy."""

from services.orders.models.patient import Patient

MAX_MG_PER_KG = {"amoxicillin": 30.0, "paracetamol": 15.0}


def check_dose(patient: Patient, drug: str, dose_mg: float) -> list[str]:
    limit = MAX_MG_PER_KG.get(drug)
    if limit is None:
        return [f"unknown drug {drug}"]
    if dose_mg > limit * patient.weight_kg:
        return [f"{drug} {dose_mg} mg exceeds {limit} mg/kg"]
    return []
''',
    "services/orders/migrations/0001_orders.sql": "CREATE TABLE orders (id INTEGER PRIMARY KEY, mrn TEXT, drug TEXT);\n",
    "services/orders/tests/__init__.py": "",
    "services/orders/tests/test_orders.py": """from services.orders.app import submit_order
from services.orders.models.patient import Patient

CHILD = Patient(mrn="SYN-0001", weight_kg=20.0, age_years=6)


def test_normal_dose_is_accepted():
    assert submit_order(CHILD, "paracetamol", 250)["accepted"]


def test_overdose_is_refused():
    result = submit_order(CHILD, "paracetamol", 500)
    assert not result["accepted"]
    assert "exceeds" in result["problems"][0]


def test_unknown_drug_is_refused():
    assert not submit_order(CHILD, "unobtainium", 1)["accepted"]
""",
    "services/orders/tools/export.py": '''"""An export helper with the kind of finding a SAST scan reports."""

import subprocess


def export(path: str) -> int:
    return subprocess.call("tar czf export.tgz " + path, shell=True)
''',
    "web/portal/help.md": "# Help\n\nCall the clinic to change an appointment.\n",
    "web/portal/locales/en.json": '{"greeting": "Welcome back"}\n',
}

GIT_IDENTITY = {
    "GIT_AUTHOR_NAME": "Dana Developer",
    "GIT_AUTHOR_EMAIL": "dana@example.org",
    "GIT_COMMITTER_NAME": "Dana Developer",
    "GIT_COMMITTER_EMAIL": "dana@example.org",
}


def git(repo: Path, *args: str) -> str:
    env = {**os.environ, **GIT_IDENTITY}
    proc = subprocess.run(
        ["git", "-C", str(repo), *args], capture_output=True, text=True, env=env, check=True
    )
    return proc.stdout.strip()


def create_repository(root: Path) -> str:
    """Write the sample files, commit them, and return the commit SHA."""
    root.mkdir(parents=True, exist_ok=True)
    git(root, "init", "-q", "-b", "main")
    for name, text in FILES.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    git(root, "add", ".")
    git(root, "commit", "-q", "-m", "Orders service and patient portal")
    return git(root, "rev-parse", "HEAD")


def build(repo: Path, out: Path) -> Path:
    """Package the orders service reproducibly (fixed timestamps, sorted entries)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted((repo / "services").rglob("*.py")):
            info = zipfile.ZipInfo(str(path.relative_to(repo)), date_time=(2026, 1, 1, 0, 0, 0))
            archive.writestr(info, path.read_bytes())
    return out
