"""Registering artifacts against a real git repository, with real provenance."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from clearance.attest.dsse import open_envelope
from clearance.core.digests import Digest, digest_bytes
from clearance.errors import ConflictError, InputError, NotFoundError
from clearance.usecases.artifacts import BuildInfo, find_artifact, register_artifact
from clearance.usecases.evidence import envelopes
from clearance.usecases.instance import Instance
from clearance.usecases.ledger import verify_ledger
from clearance.vcs.git import GitRepo
from tests.conftest import git


@pytest.fixture
def wheel(tmp_path: Path) -> Path:
    path = tmp_path / "dist" / "orders-1.0-py3-none-any.whl"
    path.parent.mkdir()
    path.write_bytes(b"PK\x03\x04 pretend wheel bytes")
    return path


def build(commit: str = "HEAD", **kw: str) -> BuildInfo:
    return BuildInfo(
        commit,
        kw.get("branch", "main"),
        kw.get("build_number", "412"),
        kw.get("builder", "github-actions"),
        kw.get("change_request", "CR-1042"),
    )


class TestRegister:
    def test_provenance_is_signed_slsa_with_dependency_hashes(
        self, instance: Instance, wheel: Path, git_repo: Path
    ) -> None:
        head = git(git_repo, "rev-parse", "HEAD")
        result = register_artifact(
            instance, build=build(), actor="ci@example.org", path=wheel, repo=GitRepo(git_repo)
        )
        assert result.digest == digest_bytes(wheel.read_bytes())
        assert result.created
        [envelope] = list(envelopes(instance, result.digest))
        statement = open_envelope(
            envelope, instance.signer.public_key, instance.signer.keyid, where="provenance"
        )
        assert statement["_type"] == "https://in-toto.io/Statement/v1"
        assert statement["predicateType"] == "https://slsa.dev/provenance/v1"
        assert statement["subject"][0]["digest"]["sha256"] == result.digest.split(":")[1]
        definition = statement["predicate"]["buildDefinition"]
        assert definition["externalParameters"]["commit"] == head
        assert definition["externalParameters"]["changeRequest"] == "CR-1042"
        deps = definition["resolvedDependencies"]
        assert deps[0]["digest"] == {"gitCommit": head}
        requirements = (git_repo / "requirements.txt").read_bytes()
        assert {
            "name": "requirements.txt",
            "digest": {"sha256": digest_bytes(requirements).split(":")[1]},
        } in deps
        assert any(
            d.get("name") == "flask==3.0.3" and d["digest"]["sha256"] == "ab" * 32 for d in deps
        )
        assert statement["predicate"]["runDetails"]["builder"]["id"] == "github-actions"
        assert verify_ledger(instance).ok

    def test_same_bytes_same_provenance_is_idempotent(
        self, instance: Instance, wheel: Path
    ) -> None:
        first = register_artifact(instance, build=build("abc1234"), actor="ci", path=wheel)
        size = instance.ledger.size()
        again = register_artifact(instance, build=build("abc1234"), actor="ci", path=wheel)
        assert (again.created, again.entry.seq) == (False, first.entry.seq)
        assert instance.ledger.size() == size

    def test_same_bytes_other_commit_is_a_conflict(self, instance: Instance, wheel: Path) -> None:
        register_artifact(instance, build=build("abc1234"), actor="ci", path=wheel)
        size = instance.ledger.size()
        with pytest.raises(ConflictError, match="commit 'abc1234' vs 'def5678'"):
            register_artifact(instance, build=build("def5678"), actor="ci", path=wheel)
        assert instance.ledger.size() == size

    def test_external_digest_is_registered_without_bytes(self, instance: Instance) -> None:
        image = Digest("sha256:" + "c" * 64)
        result = register_artifact(
            instance,
            build=build("abc1234"),
            actor="ci",
            digest=image,
            name="registry.example.org/orders",
        )
        assert result.digest == image
        assert find_artifact(instance, image).data["stored"] is False
        assert verify_ledger(instance).ok

    def test_unknown_revision_writes_nothing(
        self, instance: Instance, wheel: Path, git_repo: Path
    ) -> None:
        size = instance.ledger.size()
        with pytest.raises(InputError, match="revision 'no-such-rev' does not exist"):
            register_artifact(
                instance, build=build("no-such-rev"), actor="ci", path=wheel, repo=GitRepo(git_repo)
            )
        assert instance.ledger.size() == size

    def test_not_a_repository(self, tmp_path: Path) -> None:
        with pytest.raises(InputError, match="not a git repository"):
            GitRepo(tmp_path)

    def test_missing_file_and_bad_commit(self, instance: Instance, tmp_path: Path) -> None:
        with pytest.raises(NotFoundError, match="no such file"):
            register_artifact(
                instance, build=build("abc1234"), actor="ci", path=tmp_path / "missing.whl"
            )
        with pytest.raises(InputError, match="is not a git commit SHA"):
            register_artifact(
                instance, build=build("main"), actor="ci", digest=Digest("sha256:" + "c" * 64)
            )
        assert instance.ledger.size() == 1

    def test_unknown_digest_is_not_found(self, instance: Instance) -> None:
        with pytest.raises(NotFoundError, match=r"no artifact sha256:d+ is registered"):
            find_artifact(instance, Digest("sha256:" + "d" * 64))

    def test_blob_changed_on_disk_is_caught(self, instance: Instance, wheel: Path) -> None:
        result = register_artifact(instance, build=build("abc1234"), actor="ci", path=wheel)
        hexd = result.digest.split(":")[1]
        blob = instance.settings.home / "blobs" / "sha256" / hexd[:2] / hexd[2:]
        blob.chmod(0o644)
        blob.write_bytes(b"swapped")
        problems = [str(p) for p in verify_ledger(instance).problems]
        assert problems == [
            f"entry {result.entry.seq}: artifact blob {result.digest} was changed "
            f"(its bytes now hash to {digest_bytes(b'swapped')})"
        ]

    def test_envelope_rewritten_is_caught(self, instance: Instance, wheel: Path) -> None:
        result = register_artifact(instance, build=build("abc1234"), actor="ci", path=wheel)
        env_digest = result.entry.data["blobs"]["envelope"]
        envelope = json.loads(instance.blobs.read_bytes(env_digest))
        envelope["payload"] = base64.b64encode(b'{"forged": true}').decode()
        hexd = env_digest.split(":")[1]
        blob = instance.settings.home / "blobs" / "sha256" / hexd[:2] / hexd[2:]
        blob.chmod(0o644)
        blob.write_text(json.dumps(envelope))
        problems = verify_ledger(instance).problems
        assert problems[0].seq == result.entry.seq
        assert "envelope blob" in problems[0].message and "was changed" in problems[0].message
