"""Registering a built artifact by digest, with signed SLSA provenance (build once, promote).

Registration is idempotent for the same bytes and the same provenance; the same bytes with other
provenance (another commit, branch, build or builder) is a conflict that names the difference.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from clearance.attest import statements
from clearance.attest.dsse import sign_envelope
from clearance.clock import rfc3339
from clearance.core.canonical import canonical_json
from clearance.core.dependencies import LOCK_FILES, pinned_requirements
from clearance.core.digests import Digest, digest_bytes
from clearance.errors import ConflictError, InputError, NotFoundError
from clearance.store.ledger import Appender, Entry
from clearance.usecases.classification import Classified, classify_change
from clearance.usecases.instance import Instance
from clearance.vcs.git import GitRepo

REGISTERED = "artifact.registered"
#: The provenance fields that identify a build; the same bytes may not claim two of them.
IDENTITY_FIELDS = ("commit", "branch", "build_number", "builder", "repository")
_COMMIT = re.compile(r"^[0-9a-f]{7,64}$")


@dataclass(frozen=True)
class BuildInfo:
    commit: str
    branch: str | None = None
    build_number: str | None = None
    builder: str = "unknown"
    change_request: str | None = None


@dataclass(frozen=True)
class Registration:
    digest: Digest
    entry: Entry
    created: bool


def dependencies_at(repo: GitRepo, commit: str) -> list[dict[str, Any]]:
    """Lock and requirements files at ``commit`` by digest, plus hash-pinned requirements."""
    found: list[dict[str, Any]] = []
    for path in repo.files_at(commit):
        name = path.rsplit("/", 1)[-1]
        if name not in LOCK_FILES and not re.match(r"^requirements.*\.txt$", name):
            continue
        content = repo.read_file(commit, path)
        found.append(statements.resource(path, digest_bytes(content)))
        if name.endswith(".txt"):
            for req in pinned_requirements(content.decode(errors="replace")):
                for sha in req.sha256:
                    found.append(
                        {
                            "name": f"{req.name}=={req.version}",
                            "uri": f"pkg:pypi/{req.name}@{req.version}",
                            "digest": {"sha256": sha},
                        }
                    )
    return found


def find_artifact(instance: Instance, digest: Digest, within: Appender | None = None) -> Entry:
    """The artifact's registration; ``within`` an append, as seen under the write lock."""
    finder = within.find if within is not None else instance.ledger.find
    found = finder(subject=digest, kinds=[REGISTERED])
    if not found:
        raise NotFoundError(
            f"no artifact {digest} is registered",
            hint="register it first with `clearance artifact register`",
        )
    return found[0]


def _differences(existing: Mapping[str, Any], proposed: Mapping[str, Any]) -> list[str]:
    return [
        f"{field} {existing.get(field)!r} vs {proposed.get(field)!r}"
        for field in IDENTITY_FIELDS
        if existing.get(field) != proposed.get(field)
    ]


def register_artifact(
    instance: Instance,
    *,
    build: BuildInfo,
    actor: str,
    path: Path | None = None,
    digest: Digest | None = None,
    name: str | None = None,
    repo: GitRepo | None = None,
    base: str | None = None,
    policy_file: Path | None = None,
) -> Registration:
    if (path is None) == (digest is None):
        raise InputError("give either an artifact file or --digest, not both or neither")
    commit = build.commit.strip().lower()
    repository: str | None = None
    author: str | None = None
    dependencies: list[dict[str, Any]] = []
    classified: Classified | None = None
    if repo is not None:
        commit = repo.resolve_commit(build.commit)
        repository = repo.remote_url() or str(repo.root)
        author = repo.author_email(commit)
        dependencies = dependencies_at(repo, commit)
        if base is not None:
            classified = classify_change(repo, base, commit, policy_file)
    elif base is not None:
        raise InputError("--base needs --repo: the change is read from the git repository")
    elif not _COMMIT.match(commit):
        raise InputError(f"--commit {build.commit!r} is not a git commit SHA")

    staged = instance.blobs.stage(path) if path is not None else None
    try:
        subject = staged.digest if staged is not None else digest
        assert subject is not None
        label = name or (path.name if path is not None else subject)
        now = rfc3339(instance.clock.now())
        predicate = statements.slsa_provenance(
            builder=build.builder,
            build_number=build.build_number,
            commit=commit,
            branch=build.branch,
            repository=repository,
            dependencies=dependencies,
            change_request=build.change_request,
            registered_at=now,
        )
        envelope = sign_envelope(
            canonical_json(
                statements.statement(label, subject, statements.SLSA_PROVENANCE, predicate)
            ),
            instance.signer,
        )
        data: dict[str, Any] = {
            "name": label,
            "size": staged.size if staged is not None else None,
            "stored": staged is not None,
            "commit": commit,
            "branch": build.branch,
            "build_number": build.build_number,
            "builder": build.builder,
            "repository": repository,
            "change_request": build.change_request,
            "author": author,
            "predicate_type": statements.SLSA_PROVENANCE,
        }
        if classified is not None:
            data["classification"] = classified.classification.to_json()
        with instance.ledger.appending() as appender:
            existing = appender.find(subject=subject, kinds=[REGISTERED])
            if existing:
                diff = _differences(existing[0].data, data)
                if diff:
                    raise ConflictError(
                        f"{subject} is already registered with other provenance: "
                        + "; ".join(diff),
                        hint="identical bytes cannot come from two builds; check the build",
                    )
                if staged is not None:
                    staged.discard()
                return Registration(subject, existing[0], created=False)
            if staged is not None:
                staged.commit()
            envelope_digest = instance.blobs.put_bytes(canonical_json(envelope))
            data["blobs"] = {"envelope": envelope_digest}
            if staged is not None:
                data["blobs"]["artifact"] = subject
            if classified is not None:
                data["blobs"]["policy"] = instance.blobs.put_bytes(classified.policy_text.encode())
            entry = appender.add(REGISTERED, subject, actor, data)
        return Registration(subject, entry, created=True)
    except BaseException:
        if staged is not None:
            staged.discard()
        raise
