"""The sample clinical repository the demo governs: an orders service and a patient portal.

Small but real: the orders service has medication rules, a patient model, a migration, unit and
integration tests that pass and an API contract; the portal has help copy, locales and tests. The
repository commits the reference ``clearance.yaml``. :data:`CHANGES` are the three changes the
demo governs (plus the fix a SAST finding forces), as file edits. Everything is plain text written
here, so the demo needs nothing from the network.
"""

from __future__ import annotations

import os
import subprocess
import zipfile
from dataclasses import dataclass
from pathlib import Path

POLICY = """\
version: 1
environments: [dev, staging, prod]          # promotion order
services:
  orders:  {paths: ["services/orders/**"], runbook: docs/runbooks/orders.md}
  portal:  {paths: ["web/portal/**"]}
signals:
  phi:              {paths: ["**/patient/**", "**/models/patient*.py"]}
  clinical_logic:   {paths: ["services/orders/rules/**"]}
  schema_migration: {paths: ["**/migrations/**"]}
  infrastructure:   {paths: ["infra/**", "Dockerfile"]}
  ui_copy:          {paths: ["web/**/*.md", "web/**/locales/**"]}
tiers:                                       # first tier whose `when` holds wins, top to bottom
  high:
    when: '"clinical_logic" in signals || "phi" in signals || "schema_migration" in signals'
    require:
      evidence: [unit-tests, integration-tests, contract-tests, sast, sca, sbom]
      approvals: {count: 2, roles: [release-manager, clinical-safety]}
      checklists:
        - {when: '"phi" in signals', evidence: [privacy-review]}
        - {when: '"schema_migration" in signals', evidence: [rollback-drill]}
  medium:
    when: '"infrastructure" in signals || size(services) > 1'
    require:
      evidence: [unit-tests, integration-tests, sast]
      approvals: {count: 1, roles: [release-manager]}
  low:
    when: 'true'
    require:
      evidence: [unit-tests]
      approvals: {count: 1}
roles:
  release-manager: [alice@example.org]
  clinical-safety: [carol@example.org]
"""

PATIENT = '''"""The patient record as the orders service sees it (synthetic data only)."""

from dataclasses import dataclass


@dataclass(frozen=True)
class Patient:
    mrn: str
    weight_kg: float
    age_years: int
'''

MEDICATION = '''"""Medication dose rules: clinical logic, high risk by policy."""

from services.orders.models.patient import Patient

MAX_MG_PER_KG = {"amoxicillin": 30.0, "paracetamol": 15.0}


def check_dose(patient: Patient, drug: str, dose_mg: float) -> list[str]:
    limit = MAX_MG_PER_KG.get(drug)
    if limit is None:
        return [f"unknown drug {drug}"]
    if dose_mg > limit * patient.weight_kg:
        return [f"{drug} {dose_mg} mg exceeds {limit} mg/kg"]
    return []
'''

UNIT_TESTS = """from services.orders.models.patient import Patient
from services.orders.rules.medication import check_dose

CHILD = Patient(mrn="SYN-0001", weight_kg=20.0, age_years=6)


def test_normal_dose_is_accepted():
    assert check_dose(CHILD, "paracetamol", 250) == []


def test_overdose_is_refused():
    assert "exceeds" in check_dose(CHILD, "paracetamol", 500)[0]


def test_unknown_drug_is_refused():
    assert check_dose(CHILD, "unobtainium", 1) == ["unknown drug unobtainium"]
"""

EXPORT = '''"""Export the orders table for the pharmacy's nightly reconciliation."""

import subprocess


def export(path: str) -> int:
    return subprocess.call("tar czf export.tgz " + path, shell=True)
'''

FILES: dict[str, str] = {
    "README.md": "# St. Example clinical platform\n\nOrders service and patient portal.\n",
    "clearance.yaml": POLICY,
    "pytest.ini": "[pytest]\naddopts = -p no:cacheprovider\n",
    "requirements.txt": "flask==3.0.3\nrequests==2.32.3\n",
    "Dockerfile": 'FROM python:3.11-slim\nCOPY services/orders /app\nCMD ["python", "-m", "orders"]\n',
    "infra/deploy.yaml": "service: orders\nreplicas: 2\nhealth_check: /healthz\n",
    "docs/runbooks/orders.md": "# Orders runbook\n\nRollback: redeploy the previous digest.\n",
    "services/orders/__init__.py": "",
    "services/orders/app.py": '''"""Order submission: check the dose rules, then record the order."""

import sqlite3
from pathlib import Path

from services.orders.models.patient import Patient
from services.orders.rules.medication import check_dose

MIGRATIONS = Path(__file__).parent / "migrations"


def connect(path: str = ":memory:") -> sqlite3.Connection:
    db = sqlite3.connect(path)
    for script in sorted(MIGRATIONS.glob("*.sql")):
        db.executescript(script.read_text())
    return db


def submit_order(db: sqlite3.Connection, patient: Patient, drug: str, dose_mg: float) -> dict:
    problems = check_dose(patient, drug, dose_mg)
    order_id = None
    if not problems:
        with db:
            cursor = db.execute(
                "INSERT INTO orders (mrn, drug, dose_mg) VALUES (?, ?, ?)",
                (patient.mrn, drug, dose_mg),
            )
        order_id = cursor.lastrowid
    return {"accepted": not problems, "order_id": order_id, "problems": problems}
''',
    "services/orders/models/__init__.py": "",
    "services/orders/models/patient.py": PATIENT,
    "services/orders/rules/__init__.py": "",
    "services/orders/rules/medication.py": MEDICATION,
    "services/orders/migrations/0001_orders.sql": (
        "CREATE TABLE orders (id INTEGER PRIMARY KEY, mrn TEXT NOT NULL, drug TEXT NOT NULL, "
        "dose_mg REAL NOT NULL);\n"
    ),
    "services/orders/contracts/orders-api-v1.json": (
        '{"suite": "orders-api-v1", "response": {"accepted": "bool", "order_id": "int|None", '
        '"problems": "list"}}\n'
    ),
    "services/orders/tests/__init__.py": "",
    "services/orders/tests/unit/__init__.py": "",
    "services/orders/tests/unit/test_medication.py": UNIT_TESTS,
    "services/orders/tests/integration/__init__.py": "",
    "services/orders/tests/integration/test_order_flow.py": '''"""An order submitted end to end: rules, the app, the migrated database."""

from services.orders.app import connect, submit_order
from services.orders.models.patient import Patient

ADULT = Patient(mrn="SYN-0002", weight_kg=70.0, age_years=41)


def test_an_accepted_order_is_stored():
    db = connect()
    result = submit_order(db, ADULT, "amoxicillin", 500)
    assert result["accepted"]
    row = db.execute("SELECT mrn, drug, dose_mg FROM orders WHERE id = ?", (result["order_id"],))
    assert row.fetchone() == ("SYN-0002", "amoxicillin", 500.0)


def test_a_refused_order_is_not_stored():
    db = connect()
    assert not submit_order(db, ADULT, "paracetamol", 5000)["accepted"]
    assert db.execute("SELECT count(*) FROM orders").fetchone() == (0,)
''',
    "services/orders/tools/__init__.py": "",
    "services/orders/tools/export.py": EXPORT,
    "services/orders/tools/check_contract.py": '''"""Check the order API against its contract; print a JSON result with a boolean "passed"."""

import json
import sys
from pathlib import Path

from services.orders.app import connect, submit_order
from services.orders.models.patient import Patient

TYPES = {"bool": (bool,), "int|None": (int, type(None)), "list": (list,)}
CASES = {
    "accepted order": ("amoxicillin", 250),
    "refused dose": ("paracetamol", 9000),
    "unknown drug": ("unobtainium", 1),
}


def main() -> None:
    contract = json.loads((Path(__file__).parents[1] / "contracts/orders-api-v1.json").read_text())
    patient = Patient(mrn="SYN-0003", weight_kg=30.0, age_years=9)
    passed, failed = [], []
    for name, (drug, dose) in CASES.items():
        response = submit_order(connect(), patient, drug, dose)
        ok = set(response) == set(contract["response"]) and all(
            isinstance(response[field], TYPES[kind]) for field, kind in contract["response"].items()
        )
        (passed if ok else failed).append(name)
    json.dump(
        {"passed": not failed, "tool": "check_contract", "suite": contract["suite"],
         "checks": len(CASES), "passed_tests": passed, "failed_tests": failed},
        sys.stdout,
    )


if __name__ == "__main__":
    main()
''',
    "web/portal/help.md": "# Help\n\nCall the clinic to change an appointment.\n",
    "web/portal/locales/en.json": '{"greeting": "Welcome back", "appointments": "Appointments"}\n',
    "web/portal/tests/test_copy.py": '''"""The portal's copy: every locale parses and help never promises what we cannot do."""

import json
from pathlib import Path

PORTAL = Path(__file__).parents[1]


def test_locales_are_json_with_the_same_keys():
    keys = {p.name: set(json.loads(p.read_text())) for p in (PORTAL / "locales").glob("*.json")}
    assert keys and len({frozenset(k) for k in keys.values()}) == 1


def test_help_has_no_placeholders():
    text = (PORTAL / "help.md").read_text()
    assert "TODO" not in text and "lorem" not in text.lower()
''',
}

GIT_IDENTITY = {
    "GIT_AUTHOR_NAME": "Dana Developer",
    "GIT_AUTHOR_EMAIL": "dana@example.org",
    "GIT_COMMITTER_NAME": "Dana Developer",
    "GIT_COMMITTER_EMAIL": "dana@example.org",
}
AUTHOR = GIT_IDENTITY["GIT_AUTHOR_EMAIL"]


@dataclass(frozen=True)
class Change:
    """A commit the demo makes to the sample: a message and the files it writes."""

    message: str
    files: dict[str, str]


COPY_FIX = Change(
    "Tell patients how to change or cancel an appointment",
    {
        "web/portal/help.md": "# Help\n\nTo change or cancel an appointment, open Appointments "
        "in the portal or call the clinic on 555-0100.\n"
    },
)
INFRA = Change(
    "Run three orders replicas for the winter peak",
    {"infra/deploy.yaml": "service: orders\nreplicas: 3\nhealth_check: /healthz\n"},
)
SAST_FIX = Change(
    "Export with tarfile instead of a shell command (bandit B602)",
    {
        "services/orders/tools/export.py": '''"""Export the orders table for the pharmacy's nightly reconciliation."""

import tarfile


def export(path: str) -> int:
    with tarfile.open("export.tgz", "w:gz") as archive:
        archive.add(path)
    return 0
'''
    },
)
MEDICATION_RULE = Change(
    "Refuse medication orders the patient is recorded as allergic to",
    {
        "services/orders/models/patient.py": PATIENT.replace(
            "from dataclasses import dataclass\n", "from dataclasses import dataclass, field\n"
        )
        + "    allergies: tuple[str, ...] = field(default=())\n",
        "services/orders/rules/medication.py": MEDICATION.replace(
            "    limit = MAX_MG_PER_KG.get(drug)\n",
            "    if drug in patient.allergies:\n"
            '        return [f"patient is allergic to {drug}"]\n'
            "    limit = MAX_MG_PER_KG.get(drug)\n",
        ),
        "services/orders/tests/unit/test_medication.py": UNIT_TESTS
        + """

def test_allergy_is_refused():
    allergic = Patient(mrn="SYN-0004", weight_kg=20.0, age_years=6, allergies=("amoxicillin",))
    assert check_dose(allergic, "amoxicillin", 100) == ["patient is allergic to amoxicillin"]
""",
    },
)

#: What each service's artifact is built from (the orders image carries its deployment).
BUILD_PATHS = {
    "orders": ("services/orders", "Dockerfile", "infra", "requirements.txt"),
    "portal": ("web/portal",),
}


def git(repo: Path, *args: str) -> str:
    env = {**os.environ, **GIT_IDENTITY}
    proc = subprocess.run(
        ["git", "-C", str(repo), *args], capture_output=True, text=True, env=env, check=True
    )
    return proc.stdout.strip()


def _write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def create_repository(root: Path) -> str:
    """Write the sample files, commit them, and return the commit SHA."""
    root.mkdir(parents=True, exist_ok=True)
    git(root, "init", "-q", "-b", "main")
    _write(root, FILES)
    git(root, "add", ".")
    git(root, "commit", "-q", "-m", "Orders service and patient portal, governed by clearance.yaml")
    return git(root, "rev-parse", "HEAD")


def commit_change(root: Path, change: Change) -> str:
    """Apply ``change`` as one commit by the sample's author; return its SHA."""
    _write(root, change.files)
    git(root, "add", *change.files)
    git(root, "commit", "-q", "-m", change.message)
    return git(root, "rev-parse", "HEAD")


def build(repo: Path, service: str, out: Path) -> Path:
    """Package a service's committed files reproducibly (fixed timestamps, sorted entries)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tracked = git(repo, "ls-files", "-z", "--", *BUILD_PATHS[service]).split("\0")
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name in sorted(n for n in tracked if n):
            info = zipfile.ZipInfo(name, date_time=(2026, 1, 1, 0, 0, 0))
            archive.writestr(info, (repo / name).read_bytes())
    return out
