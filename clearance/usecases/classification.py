"""Loading the policy (from a file or from the governed repository) and classifying a change."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from clearance.core.classify import Classification, classify
from clearance.core.digests import Digest
from clearance.core.policy import Policy, parse_policy
from clearance.errors import InputError
from clearance.files import read_text
from clearance.usecases.instance import Instance
from clearance.vcs.git import GitRepo

POLICY_FILE = "clearance.yaml"
_CACHE: dict[str, Policy] = {}


@dataclass(frozen=True)
class Classified:
    policy: Policy
    policy_text: str
    classification: Classification


def parse_cached(text: str, name: str) -> Policy:
    """Parse (and compile) a policy once per process per content."""
    key = f"{name}\0{text}"
    if key not in _CACHE:
        if len(_CACHE) > 64:
            _CACHE.clear()
        _CACHE[key] = parse_policy(text, name)
    return _CACHE[key]


def _decode(data: bytes, where: str) -> str:
    try:
        return data.decode()
    except UnicodeDecodeError as exc:
        raise InputError("the policy is not UTF-8 text", where=where) from exc


def load_policy_file(path: Path) -> tuple[Policy, str]:
    text = read_text(path, limit=1 << 20, what="policy").text
    return parse_cached(text, str(path)), text


def policy_at(repo: GitRepo, commit: str, policy_file: Path | None) -> tuple[Policy, str]:
    """``--policy FILE`` if given, else ``clearance.yaml`` as committed at ``commit``."""
    if policy_file is not None:
        return load_policy_file(policy_file)
    try:
        raw = repo.read_file(commit, POLICY_FILE)
    except InputError as exc:
        raise InputError(
            f"no {POLICY_FILE} at {commit[:12]}",
            where=str(repo.root),
            hint=f"commit a {POLICY_FILE} to the repository or pass --policy FILE",
        ) from exc
    text = _decode(raw, f"{POLICY_FILE}@{commit[:12]}")
    return parse_cached(text, f"{POLICY_FILE}@{commit[:12]}"), text


def classify_change(
    repo: GitRepo, base: str, head: str = "HEAD", policy_file: Path | None = None
) -> Classified:
    change = repo.change_set(base, head)
    policy, text = policy_at(repo, change.head, policy_file)
    return Classified(policy, text, classify(policy, change))


def stored_policy(instance: Instance, digest: Digest) -> Policy:
    """The policy an artifact was classified under, from the blob store."""
    text = instance.blobs.read_bytes(digest).decode()
    return parse_cached(text, f"policy {digest[:19]}…")
