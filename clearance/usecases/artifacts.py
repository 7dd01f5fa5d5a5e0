"""Registering a built artifact by digest, with signed SLSA provenance (build once, promote).

Registration is idempotent for the same bytes and the same provenance; the same bytes with other
provenance (another commit, branch, build or builder) is a conflict that names the difference.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from clearance.attest import statements
from clearance.attest.dsse import sign_envelope
from clearance.clock import rfc3339
from clearance.core.canonical import canonical_json
from clearance.core.classify import ChangeSet, classify
from clearance.core.dependencies import LOCK_FILES, pinned_requirements
from clearance.core.digests import Digest, digest_bytes
from clearance.errors import ConflictError, InputError, NotFoundError
from clearance.store.ledger import Appender, Entry
from clearance.usecases.classification import parse_cached, policy_at
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


def registration(entries: Sequence[Entry], digest: Digest) -> Entry:
    """The registration among an artifact's entries; an unregistered digest is NotFoundError."""
    for entry in entries:
        if entry.kind == REGISTERED:
            return entry
    raise NotFoundError(
        f"no artifact {digest} is registered",
        hint="register it first with `clearance artifact register`",
    )


def find_artifact(instance: Instance, digest: Digest, within: Appender | None = None) -> Entry:
    """The artifact's registration; ``within`` an append, as seen under the write lock."""
    finder = within.find if within is not None else instance.ledger.find
    return registration(finder(subject=digest, kinds=[REGISTERED]), digest)


def _differences(existing: Mapping[str, Any], proposed: Mapping[str, Any]) -> list[str]:
    return [
        f"{field} {existing.get(field)!r} vs {proposed.get(field)!r}"
        for field in IDENTITY_FIELDS
        if existing.get(field) != proposed.get(field)
    ]


@dataclass(frozen=True)
class Source:
    """What the governed repository says about a build: read where the repository is (the CI
    job), then recorded by the instance (local or a server)."""

    commit: str
    repository: str | None = None
    author: str | None = None
    dependencies: tuple[dict[str, Any], ...] = ()
    change: ChangeSet | None = None
    policy_text: str | None = None
    policy_name: str = "clearance.yaml"


def read_source(
    repo: GitRepo, commit: str, base: str | None = None, policy_file: Path | None = None
) -> Source:
    """Resolve the commit, its author, dependency hashes and (with ``base``) the change."""
    sha = repo.resolve_commit(commit)
    change = repo.change_set(base, sha) if base is not None else None
    policy_text, policy_name = None, "clearance.yaml"
    if change is not None:
        policy, policy_text = policy_at(repo, sha, policy_file)
        policy_name = policy.name
    return Source(
        commit=sha,
        repository=repo.remote_url() or str(repo.root),
        author=repo.author_email(sha),
        dependencies=tuple(dependencies_at(repo, sha)),
        change=change,
        policy_text=policy_text,
        policy_name=policy_name,
    )


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
    source: Source | None = None,
    size: int | None = None,
) -> Registration:
    """Record an artifact with signed provenance (and, given a change, its classification).

    ``repo``/``base``/``policy_file`` read the source here; a caller that read it elsewhere (the
    CLI talking to a server) passes ``source`` instead.
    """
    if (path is None) == (digest is None):
        raise InputError("give either an artifact file or --digest, not both or neither")
    if source is None and repo is not None:
        source = read_source(repo, build.commit, base, policy_file)
    elif base is not None and source is None:
        raise InputError("--base needs --repo: the change is read from the git repository")
    if source is None:
        source = Source(build.commit.strip().lower())
    if not _COMMIT.match(source.commit):
        raise InputError(
            f"--commit {source.commit!r} is not a git commit SHA",
            hint="give the full or abbreviated SHA, or --repo to resolve a revision",
        )
    classification = None
    if source.change is not None:
        if source.policy_text is None:
            raise InputError("a change to classify needs the policy it is classified against")
        policy = parse_cached(source.policy_text, source.policy_name)
        classification = classify(policy, source.change)

    staged = instance.blobs.stage(path) if path is not None else None
    try:
        subject = staged.digest if staged is not None else digest
        assert subject is not None
        label = name or (path.name if path is not None else subject)
        now = rfc3339(instance.clock.now())
        predicate = statements.slsa_provenance(
            builder=build.builder,
            build_number=build.build_number,
            commit=source.commit,
            branch=build.branch,
            repository=source.repository,
            dependencies=source.dependencies,
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
            "size": staged.size if staged is not None else size,
            "stored": staged is not None,
            "commit": source.commit,
            "branch": build.branch,
            "build_number": build.build_number,
            "builder": build.builder,
            "repository": source.repository,
            "change_request": build.change_request,
            "author": source.author,
            "predicate_type": statements.SLSA_PROVENANCE,
        }
        if classification is not None:
            data["classification"] = classification.to_json()
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
            if source.policy_text is not None and classification is not None:
                data["blobs"]["policy"] = instance.blobs.put_bytes(source.policy_text.encode())
            entry = appender.add(REGISTERED, subject, actor, data)
        return Registration(subject, entry, created=True)
    except BaseException:
        if staged is not None:
            staged.discard()
        raise


def search(
    instance: Instance,
    *,
    change_request: str | None = None,
    version: str | None = None,
    name: str | None = None,
    tenant: str | None = None,
    since: str | None = None,
    until: str | None = None,
) -> list[Entry]:
    """Registrations matching every filter given (an auditor's search).

    ``version`` matches a build number, a commit (7+ hex digits) or part of the name; ``since``
    and ``until`` are RFC 3339 times or dates compared with when the artifact was registered;
    ``tenant`` matches artifacts whose rollout names that tenant.
    """
    found = []
    for entry in instance.ledger.find(kinds=[REGISTERED]):
        d = entry.data
        if change_request and (d.get("change_request") or "").lower() != change_request.lower():
            continue
        if version and not (
            version == d.get("build_number")
            or (len(version) >= 7 and str(d.get("commit", "")).startswith(version.lower()))
            or version in str(d.get("name", ""))
        ):
            continue
        if name and name not in str(d.get("name", "")):
            continue
        if tenant and tenant not in d.get("tenants", []):
            continue
        if since and entry.at < since:
            continue
        if until and entry.at[: len(until)] > until:
            continue
        found.append(entry)
    return found
