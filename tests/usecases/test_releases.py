"""A governed release end to end on real git, SQLite and PostgreSQL: gate, approve, promote."""

from __future__ import annotations

import base64
import json
import shutil
from pathlib import Path

import pytest

from clearance.core.approvals import Meaning
from clearance.core.digests import Digest
from clearance.core.roles import Role
from clearance.errors import ConflictError, InputError, NotFoundError, RefusedError
from clearance.files import read_text
from clearance.usecases.accounts import create_account
from clearance.usecases.artifacts import BuildInfo, register_artifact
from clearance.usecases.evidence import attest
from clearance.usecases.instance import Instance
from clearance.usecases.ledger import verify_ledger
from clearance.usecases.releases import GateBlocked, approve, gate, promote, release_show, status
from clearance.vcs.git import GitRepo
from tests.conftest import git

FIXTURES = Path(__file__).parent.parent / "fixtures"
HIGH = ["unit-tests", "integration-tests", "contract-tests", "sast", "sca", "sbom"]


@pytest.fixture
def clinic(tmp_path: Path) -> Path:
    """A governed repository whose last commit changes a medication rule (high tier)."""
    repo = tmp_path / "clinic"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    shutil.copy(FIXTURES / "clearance.yaml", repo / "clearance.yaml")
    (repo / "services" / "orders" / "rules").mkdir(parents=True)
    (repo / "services" / "orders" / "app.py").write_text("print('orders')\n")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "orders service")
    (repo / "services" / "orders" / "rules" / "dose.py").write_text("MAX_MG_PER_KG = 15\n")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "paracetamol dose rule")
    return repo


@pytest.fixture
def passing(tmp_path: Path) -> Path:
    path = tmp_path / "passing.json"
    path.write_text(json.dumps({"passed": True, "checks": 4}))
    return path


@pytest.fixture
def release(instance: Instance, clinic: Path, tmp_path: Path) -> Digest:
    artifact = tmp_path / "orders.zip"
    artifact.write_bytes(b"orders build 412")
    return register_artifact(
        instance,
        build=BuildInfo("HEAD", "main", "412", "ci"),
        actor="ci@example.org",
        path=artifact,
        repo=GitRepo(clinic),
        base="HEAD~1",
    ).digest


def evidence(instance: Instance, digest: Digest, path: Path, *types: str) -> None:
    for t in types:
        attest(instance, digest, t, path, actor="ci@example.org")


class TestGovernedRelease:
    def test_high_tier_walks_to_prod(
        self, instance: Instance, release: Digest, passing: Path, tmp_path: Path
    ) -> None:
        assert gate(instance, release, "dev").allowed
        promote(instance, release, env="dev", actor="deployer@example.org")
        blocked = gate(instance, release, "staging")
        assert [c.control for c in blocked.blockers] == [f"evidence:{t}" for t in HIGH]
        evidence(instance, release, passing, *HIGH)
        promote(instance, release, env="staging", actor="deployer@example.org")
        for who in ("alice@example.org", "carol@example.org"):
            approve(instance, release, env="prod", meaning=Meaning.APPROVAL, actor=who)
        config = tmp_path / "prod.yaml"
        config.write_text("replicas: 3\ndb_password: env:ORDERS_DB_PASSWORD\n")
        result = promote(
            instance, release, env="prod", actor="deployer@example.org", config=read_text(config)
        )
        assert result.decision.allowed and result.entry.data["config"].startswith("sha256:")
        [prod] = status(instance, "prod")
        assert (prod["digest"], prod["by"], prod["tier"]) == (
            release,
            "deployer@example.org",
            "high",
        )
        done = release_show(instance, release)
        assert [n for n, ok, _ in done.items if not ok] == ["post-deploy verification"]
        evidence(instance, release, passing, "post-deploy-verification")
        assert release_show(instance, release).complete
        # Evidence recorded after the release does not void the approvals it went out with.
        assert gate(instance, release, "prod").allowed
        assert verify_ledger(instance).ok

    def test_a_signature_carries_the_signers_printed_name(
        self, instance: Instance, release: Digest
    ) -> None:
        create_account(
            instance,
            email="carol@example.org",
            name="Carol Clinical",
            role=Role.APPROVER,
            password="carol-signs-carefully-5",
            actor="admin@example.org",
        )
        by_account = approve(
            instance, release, env="prod", meaning=Meaning.APPROVAL, actor="carol@example.org"
        )
        without = approve(
            instance, release, env="prod", meaning=Meaning.APPROVAL, actor="alice@example.org"
        )
        envelope = json.loads(instance.blobs.read_bytes(by_account.data["blobs"]["envelope"]))
        statement = json.loads(base64.b64decode(envelope["payload"]))
        assert statement["predicate"]["signer"] == "carol@example.org"
        assert statement["predicate"]["signerName"] == "Carol Clinical"
        assert by_account.data["printed_name"] == "Carol Clinical"
        assert without.data["printed_name"] is None  # no account: the login is all there is

    def test_blocked_promotion_records_nothing(self, instance: Instance, release: Digest) -> None:
        size = instance.ledger.size()
        with pytest.raises(
            GateBlocked, match="blocked: environment-order: not yet promoted to dev"
        ):
            promote(instance, release, env="staging", actor="deployer@example.org")
        assert instance.ledger.size() == size

    def test_author_cannot_approve(self, instance: Instance, release: Digest) -> None:
        size = instance.ledger.size()
        with pytest.raises(
            RefusedError, match=r"dana@example.org authored this change and cannot approve it"
        ):
            approve(
                instance, release, env="prod", meaning=Meaning.APPROVAL, actor="dana@example.org"
            )
        assert instance.ledger.size() == size

    def test_approval_voided_by_late_evidence(
        self, instance: Instance, release: Digest, passing: Path
    ) -> None:
        evidence(instance, release, passing, *HIGH)
        for who in ("alice@example.org", "carol@example.org"):
            approve(instance, release, env="prod", meaning=Meaning.APPROVAL, actor=who)
        evidence(instance, release, passing, "integration-tests")
        detail = next(
            c.detail for c in gate(instance, release, "prod").controls if c.control == "approvals"
        )
        assert detail.startswith("0 of 2 approvals for prod: none")
        assert "is void: the evidence changed after they signed" in detail

    def test_clear_text_secret_in_config_is_refused(
        self, instance: Instance, release: Digest, tmp_path: Path
    ) -> None:
        config = tmp_path / "dev.yaml"
        config.write_text("db_password: hunter2\n")
        size = instance.ledger.size()
        with pytest.raises(InputError, match=r"dev.yaml:1: db_password: looks like a secret"):
            promote(
                instance, release, env="dev", actor="deployer@example.org", config=read_text(config)
            )
        assert instance.ledger.size() == size

    def test_unknown_environment_and_digest(self, instance: Instance, release: Digest) -> None:
        with pytest.raises(InputError, match="unknown environment 'qa'"):
            gate(instance, release, "qa")
        with pytest.raises(NotFoundError, match="is registered"):
            gate(instance, Digest("sha256:" + "0" * 64), "dev")

    def test_unknown_base_revision_writes_nothing(
        self, instance: Instance, clinic: Path, tmp_path: Path
    ) -> None:
        artifact = tmp_path / "x.zip"
        artifact.write_bytes(b"x")
        size = instance.ledger.size()
        with pytest.raises(InputError, match=r"revision 'v9\.9' does not exist"):
            register_artifact(
                instance,
                build=BuildInfo("HEAD"),
                actor="ci",
                path=artifact,
                repo=GitRepo(clinic),
                base="v9.9",
            )
        assert instance.ledger.size() == size


class TestBreakGlass:
    def ready_for_prod(self, instance: Instance, release: Digest, passing: Path) -> None:
        promote(instance, release, env="dev", actor="deployer@example.org")
        evidence(instance, release, passing, *HIGH)
        promote(instance, release, env="staging", actor="deployer@example.org")

    def test_waives_approvals_only_and_awaits_retro_approval(
        self, instance: Instance, release: Digest, passing: Path
    ) -> None:
        self.ready_for_prod(instance, release, passing)
        result = promote(
            instance,
            release,
            env="prod",
            actor="rm@example.org",
            break_glass="order entry down at St Mary's, INC-311",
        )
        [control] = [c for c in result.decision.controls if c.control == "approvals"]
        assert control.mode == "break-glass" and not control.satisfied
        assert "waived by break-glass: order entry down at St Mary's, INC-311" in control.detail
        [row] = status(instance, "prod")
        assert row["break_glass"] == "order entry down at St Mary's, INC-311"
        assert row["retro_approval"] == "awaiting"
        shown = {n: (ok, d) for n, ok, d in release_show(instance, release).items}
        assert shown["approvals"][0] is False
        assert shown["approvals"][1].startswith("awaiting retro-approval")
        with pytest.raises(RefusedError, match=r"rm@example.org promoted this release to prod"):
            approve(instance, release, env="prod", meaning=Meaning.APPROVAL, actor="rm@example.org")
        for who in ("alice@example.org", "carol@example.org"):
            approve(instance, release, env="prod", meaning=Meaning.APPROVAL, actor=who)
        assert status(instance, "prod")[0]["retro_approval"] == "done"
        shown = {n: (ok, d) for n, ok, d in release_show(instance, release).items}
        assert shown["approvals"][0] is True
        assert shown["approvals"][1].startswith("retro-approved after a break-glass release")
        assert verify_ledger(instance).ok

    def test_cannot_waive_evidence_or_skip_a_reason(
        self, instance: Instance, release: Digest
    ) -> None:
        promote(instance, release, env="dev", actor="deployer@example.org")
        size = instance.ledger.size()
        with pytest.raises(GateBlocked, match="evidence:unit-tests"):
            promote(instance, release, env="staging", actor="rm@example.org", break_glass="hurry")
        with pytest.raises(InputError, match="a break-glass promotion needs a reason"):
            promote(instance, release, env="staging", actor="rm@example.org", break_glass=" ")
        assert instance.ledger.size() == size


def test_approval_refused_when_the_evidence_changed_since_it_was_shown(
    instance: Instance, release: Digest, passing: Path
) -> None:
    shown = gate(instance, release, "prod").evidence_set
    evidence(instance, release, passing, "unit-tests")
    size = instance.ledger.size()
    with pytest.raises(ConflictError, match="the evidence for prod changed since it was shown"):
        approve(
            instance,
            release,
            env="prod",
            meaning=Meaning.APPROVAL,
            actor="alice@example.org",
            expected_evidence_set=shown,
        )
    assert instance.ledger.size() == size
    now = gate(instance, release, "prod").evidence_set
    approve(
        instance,
        release,
        env="prod",
        meaning=Meaning.APPROVAL,
        actor="alice@example.org",
        expected_evidence_set=now,
    )
