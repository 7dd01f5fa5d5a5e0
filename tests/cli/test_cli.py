"""The ``clearance`` command end to end, as a CI job runs it: real processes, files and git."""

from __future__ import annotations

import base64
import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from securesystemslib.dsse import Envelope
from securesystemslib.signer import SSlibKey

from clearance.attest.keys import keyid_of, load_public_key
from clearance.core import merkle

WHEEL = b"PK\x03\x04 orders wheel"


class Cli:
    def __init__(self, home: Path, cwd: Path) -> None:
        self.home = home
        self.cwd = cwd
        self.extra_env: dict[str, str] = {}

    def __call__(self, *args: str, code: int = 0) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "CLEARANCE_HOME": str(self.home), "CLEARANCE_ACTOR": "ci@example.org"}
        for name in ("CLEARANCE_DATABASE_URL", "CLEARANCE_URL", "CLEARANCE_TOKEN"):
            env.pop(name, None)
        env.update(self.extra_env)
        proc = subprocess.run(
            [sys.executable, "-m", "clearance", *args],
            capture_output=True,
            text=True,
            env=env,
            cwd=self.cwd,
            timeout=120,
            check=False,
        )
        assert proc.returncode == code, (proc.returncode, proc.stdout, proc.stderr)
        return proc

    def size(self) -> int:
        return int(self("ledger", "verify").stdout.split()[1])


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return Cli(tmp_path / "home", tmp_path)


@pytest.fixture
def junit(tmp_path: Path) -> Path:
    """A JUnit report made by really running pytest on a small suite."""
    suite = tmp_path / "suite"
    suite.mkdir()
    (suite / "test_orders.py").write_text(
        "def test_accept():\n    assert 1 + 1 == 2\n\ndef test_refuse():\n    assert 'overdose'\n"
    )
    report = tmp_path / "junit.xml"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            f"--junitxml={report}",
            str(suite),
        ],
        capture_output=True,
        check=True,
    )
    return report


@pytest.fixture
def registered(cli: Cli, tmp_path: Path) -> str:
    cli("init", "--origin", "clearance.test/cli")
    wheel = tmp_path / "orders.whl"
    wheel.write_bytes(WHEEL)
    out = cli(
        "artifact",
        "register",
        str(wheel),
        "--commit",
        "0123abc",
        "--branch",
        "main",
        "--build-number",
        "412",
        "--builder",
        "github-actions",
        "--change-request",
        "CR-1042",
    ).stdout
    return out.strip()


class TestHappyPath:
    def test_register_attest_list_verify(self, cli: Cli, registered: str, junit: Path) -> None:
        assert registered.startswith("sha256:") and len(registered) == 71
        attested = json.loads(
            cli("attest", registered, "--type", "unit-tests", str(junit), "--json").stdout
        )
        assert (attested["format"], attested["result"], attested["passed"]) == (
            "junit",
            "PASSED",
            True,
        )
        assert attested["summary"]["tests"] == 2
        listed = json.loads(cli("evidence", "list", registered, "--json").stdout)
        assert [(e["type"], e["recorded_by"]) for e in listed] == [("unit-tests", "ci@example.org")]
        human = cli("evidence", "list", registered).stdout
        assert "unit-tests" in human and "PASSED" in human
        verified = cli("ledger", "verify").stdout.split()
        assert verified[:2] == ["OK", "3"] and len(verified[2]) == 64

    def test_attestations_verify_with_securesystemslib(
        self, cli: Cli, registered: str, junit: Path
    ) -> None:
        cli("attest", registered, "--type", "unit-tests", str(junit))
        pem = cli("key", "show").stdout
        public = load_public_key(pem.encode(), where="key show")
        key = SSlibKey.from_crypto(public, keyid=keyid_of(public))
        lines = cli("attestations", registered).stdout.splitlines()
        types = []
        for line in lines:
            envelope = json.loads(line)
            Envelope.from_dict(copy.deepcopy(envelope)).verify([key], 1)
            statement = json.loads(base64.b64decode(envelope["payload"]))
            assert statement["subject"][0]["digest"]["sha256"] == registered.split(":")[1]
            types.append(statement["predicateType"])
        assert types == [
            "https://slsa.dev/provenance/v1",
            "https://in-toto.io/attestation/test-result/v0.1",
        ]

    def test_witness_checkpoint_and_proofs(self, cli: Cli, registered: str, tmp_path: Path) -> None:
        witness = tmp_path / "witness.txt"
        cli("ledger", "checkpoint", "--export", str(witness))
        note = witness.read_text()
        assert note.splitlines()[:2] == ["clearance.test/cli", "2"]
        assert "\n\n\u2014 clearance.test/cli " in note
        assert cli("ledger", "verify", "--against", str(witness)).stdout.startswith("OK 2 ")
        proof = json.loads(cli("ledger", "proof", "inclusion", "1").stdout)
        assert merkle.verify_inclusion(
            base64.b64decode(proof["leaf_hash"]),
            1,
            proof["tree_size"],
            [base64.b64decode(p) for p in proof["proof"]],
            base64.b64decode(proof["root_hash"]),
        )
        cons = json.loads(cli("ledger", "proof", "consistency", "1").stdout)
        assert merkle.verify_consistency(
            1,
            2,
            base64.b64decode(cons["old_root"]),
            base64.b64decode(cons["new_root"]),
            [base64.b64decode(p) for p in cons["proof"]],
        )

    def test_reregistering_is_idempotent(self, cli: Cli, registered: str, tmp_path: Path) -> None:
        again = cli(
            "artifact",
            "register",
            str(tmp_path / "orders.whl"),
            "--commit",
            "0123abc",
            "--branch",
            "main",
            "--build-number",
            "412",
            "--builder",
            "github-actions",
            "--change-request",
            "CR-1042",
            "--json",
        ).stdout
        assert json.loads(again)["created"] is False
        assert cli.size() == 2


class TestBadInput:
    """One line naming the problem, the documented exit code, and nothing recorded."""

    def test_not_initialised(self, cli: Cli) -> None:
        err = cli("evidence", "list", "sha256:" + "a" * 64, code=2).stderr
        assert "run `clearance init`" in err

    def test_unknown_and_malformed_digests(self, cli: Cli, registered: str, junit: Path) -> None:
        err = cli("attest", "sha256:" + "f" * 64, "--type", "unit-tests", str(junit), code=2).stderr
        assert err.strip() == (
            f"error: no artifact sha256:{'f' * 64} is registered (register it "
            "first with `clearance artifact register`)"
        )
        err = cli("attest", "orders:1.2", "--type", "unit-tests", str(junit), code=2).stderr
        assert "DIGEST: 'orders:1.2' is not a digest" in err
        assert cli.size() == 2

    def test_bad_reports_record_nothing(self, cli: Cli, registered: str, tmp_path: Path) -> None:
        bomb = tmp_path / "bomb.xml"
        bomb.write_text(
            '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
            '<!ENTITY lol2 "&lol;&lol;&lol;">]><testsuite>&lol2;</testsuite>'
        )
        truncated = tmp_path / "truncated.json"
        truncated.write_text('{"passed": true, "checks": [1, 2')
        unknown = tmp_path / "notes.txt"
        unknown.write_text("all good, trust me")
        for path in (bomb, truncated, unknown, tmp_path / "missing.xml"):
            err = cli("attest", registered, "--type", "unit-tests", str(path), code=2).stderr
            assert err.startswith(f"error: {path}: ") and err.count("\n") == 1, err
        assert cli.size() == 2
        assert not list((cli.home / "blobs" / "tmp").iterdir())

    def test_unreadable_report(self, cli: Cli, registered: str, junit: Path) -> None:
        if os.geteuid() == 0:
            pytest.skip("root reads any file")
        junit.chmod(0)
        cli("attest", registered, "--type", "unit-tests", str(junit), code=2)

    def test_conflicting_provenance(self, cli: Cli, registered: str, tmp_path: Path) -> None:
        err = cli(
            "artifact", "register", str(tmp_path / "orders.whl"), "--commit", "9999abc", code=2
        ).stderr
        assert "already registered with other provenance: commit '0123abc' vs '9999abc'" in err
        assert cli.size() == 2

    def test_tampering_exits_1_and_names_the_entry(self, cli: Cli, registered: str) -> None:
        import sqlite3

        with sqlite3.connect(cli.home / "clearance.db") as db:
            db.execute("DROP TRIGGER ledger_entries_no_update")
            db.execute("UPDATE ledger_entries SET body = replace(body, '412', '413') WHERE seq = 1")
        db.close()
        out = cli("ledger", "verify", code=1).stdout
        assert out.startswith("FAILED 2 entries; first bad: entry 1: ")
        report = json.loads(cli("ledger", "verify", "--json", code=1).stdout)
        assert report["ok"] is False and report["first_bad_entry"] == 1

    def test_usage_errors_exit_2(self, cli: Cli) -> None:
        cli("attest", code=2)
        cli("no-such-command", code=2)
