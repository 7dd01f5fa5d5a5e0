"""Dependency hashes from lock and requirements files, for SLSA ``resolvedDependencies``."""

from __future__ import annotations

import re
from dataclasses import dataclass

#: Files whose content pins a build's dependencies; each is recorded by its own digest.
LOCK_FILES = (
    "requirements.txt",
    "requirements.lock",
    "poetry.lock",
    "uv.lock",
    "Pipfile.lock",
    "pdm.lock",
    "package-lock.json",
    "yarn.lock",
    "pnpm-lock.yaml",
    "go.sum",
    "Cargo.lock",
)

_REQ = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?\s*==\s*([^\s;\\]+)")
_HASH = re.compile(r"--hash[=\s]+sha256:([0-9a-fA-F]{64})")


@dataclass(frozen=True)
class PinnedRequirement:
    name: str
    version: str
    sha256: tuple[str, ...]


def pinned_requirements(text: str) -> list[PinnedRequirement]:
    """Requirements pinned with ``==`` and their ``--hash=sha256:`` values (pip's hash mode)."""
    joined = re.sub(r"\\\r?\n", " ", text)
    result: list[PinnedRequirement] = []
    for line in joined.splitlines():
        line = line.split(" #", 1)[0]
        match = _REQ.match(line)
        if match:
            hashes = tuple(h.lower() for h in _HASH.findall(line))
            result.append(PinnedRequirement(match.group(1).lower(), match.group(2), hashes))
    return result
