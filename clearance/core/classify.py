"""Change classification: from the files a change touches to its risk tier, with the reasons.

``classify(policy, change)`` matches every changed path against each service's and signal's
patterns (compiled once per policy, matched in bulk), then evaluates the tiers' CEL conditions top
to bottom over ``signals``, ``services``, ``files`` and ``change``; the first that holds wins. The
result says which rule matched which files, so a reviewer can see why a change got its tier.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from clearance.core.policy import Mode, PathMatcher, Policy, cel_activation

#: At most this many file names per match are kept in a classification (the count is exact).
MAX_FILES_PER_MATCH = 50


@dataclass(frozen=True)
class FileChange:
    path: str
    added: int | None = 0  # None for binary files
    removed: int | None = 0


@dataclass(frozen=True)
class ChangeSet:
    base: str
    head: str
    author: str
    message: str
    files: tuple[FileChange, ...]

    @property
    def lines_added(self) -> int:
        return sum(f.added or 0 for f in self.files)

    @property
    def lines_removed(self) -> int:
        return sum(f.removed or 0 for f in self.files)


@dataclass(frozen=True)
class Match:
    kind: str  # "signal" or "service"
    name: str
    pattern: str
    files: tuple[str, ...]
    count: int

    def to_json(self) -> dict[str, Any]:
        return {
            self.kind: self.name,
            "pattern": self.pattern,
            "files": list(self.files),
            "count": self.count,
        }


@dataclass(frozen=True)
class Classification:
    tier: str
    signals: tuple[str, ...]
    services: tuple[str, ...]
    files: int
    matches: tuple[Match, ...]
    policy_digest: str
    base: str
    head: str
    author: str
    reason: str
    #: The tier's checklists whose condition held for this change: ``{"when", "evidence": [{"type",
    #: "at", "mode"}]}``, decided once here so the gate needs no CEL.
    checklists: tuple[dict[str, Any], ...] = field(default=())
    notes: tuple[str, ...] = field(default=())

    def to_json(self) -> dict[str, Any]:
        return {
            "tier": self.tier,
            "signals": list(self.signals),
            "services": list(self.services),
            "files": self.files,
            "matches": [m.to_json() for m in self.matches],
            "policy_digest": self.policy_digest,
            "base": self.base,
            "head": self.head,
            "author": self.author,
            "reason": self.reason,
            "checklists": [dict(c) for c in self.checklists],
            "notes": list(self.notes),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Classification:
        matches = tuple(
            Match(
                "signal" if "signal" in m else "service",
                m.get("signal") or m["service"],
                m["pattern"],
                tuple(m["files"]),
                m["count"],
            )
            for m in data["matches"]
        )
        return cls(
            data["tier"],
            tuple(data["signals"]),
            tuple(data["services"]),
            data["files"],
            matches,
            data["policy_digest"],
            data["base"],
            data["head"],
            data["author"],
            data["reason"],
            checklists=tuple(data.get("checklists", ())),
            notes=tuple(data.get("notes", ())),
        )


def _match_all(kind: str, matchers: Sequence[PathMatcher], paths: Sequence[str]) -> list[Match]:
    found: list[Match] = []
    for matcher in matchers:
        by_pattern: dict[str, list[str]] = {}
        match = matcher.match
        for path in paths:
            pattern = match(path)
            if pattern is not None:
                by_pattern.setdefault(pattern, []).append(path)
        for pattern, files in by_pattern.items():
            found.append(
                Match(kind, matcher.name, pattern, tuple(files[:MAX_FILES_PER_MATCH]), len(files))
            )
    return found


def activation(
    change: ChangeSet, signals: Sequence[str], services: Sequence[str], paths: Sequence[str]
) -> dict[str, Any]:
    return {
        "signals": list(signals),
        "services": list(services),
        "files": list(paths),
        "change": {
            "author": change.author,
            "message": change.message,
            "lines_added": change.lines_added,
            "lines_removed": change.lines_removed,
            "files": len(paths),
        },
    }


def classify(policy: Policy, change: ChangeSet) -> Classification:
    paths = [f.path for f in change.files]
    candidates = [p for p in paths if policy.may_match(p)]
    matches = _match_all("signal", policy.signals, candidates) + _match_all(
        "service", policy.services, candidates
    )
    signals = tuple(dict.fromkeys(m.name for m in matches if m.kind == "signal"))
    services = tuple(dict.fromkeys(m.name for m in matches if m.kind == "service"))
    context = cel_activation(activation(change, signals, services, paths))
    notes: list[str] = []
    chosen, reason = policy.tiers[-1].name, "no tier condition held, so the last tier applies"
    for tier in policy.tiers:
        holds, problem = tier.condition.holds(context)
        if problem:
            notes.append(f"tier {tier.name}: {problem}; treated as true")
        if holds:
            chosen, reason = tier.name, f"{tier.condition.source} holds"
            break
    checklists = []
    for checklist, condition in policy.tier(chosen).checklists:
        holds, problem = condition.holds(context)
        if problem:
            notes.append(f"checklist {checklist.when!r}: {problem}; treated as true")
        if holds:
            checklists.append(
                {
                    "when": checklist.when,
                    "evidence": [
                        {
                            "type": e.type,
                            "at": list(e.at or checklist.at or ()) or None,
                            "mode": "warn" if Mode.WARN in (e.mode, checklist.mode) else "enforce",
                        }
                        for e in checklist.evidence
                    ],
                }
            )
    return Classification(
        tier=chosen,
        signals=signals,
        services=services,
        files=len(paths),
        matches=tuple(matches),
        policy_digest=policy.digest,
        base=change.base,
        head=change.head,
        author=change.author,
        reason=reason,
        checklists=tuple(checklists),
        notes=tuple(notes),
    )
