"""The facts about one release the gate and the definition of done are computed from.

Use-cases read these from the ledger; the core never touches storage.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from clearance.core.classify import Classification
from clearance.core.evidence import headline


@dataclass(frozen=True)
class EvidenceFact:
    seq: int
    type: str
    format: str
    result: str
    passed: bool
    summary: Mapping[str, Any]
    report: str
    at: str

    @property
    def headline(self) -> str:
        """Computed on demand: a gate shows only the latest record of each type."""
        return headline(self.summary)


@dataclass(frozen=True)
class ApprovalFact:
    seq: int
    actor: str
    env: str
    meaning: str
    evidence_set: str
    at: str


@dataclass(frozen=True)
class PromotionFact:
    seq: int
    env: str
    actor: str
    at: str
    config: str | None = None
    #: The gate's controls as recorded when this promotion was allowed.
    controls: tuple[dict[str, Any], ...] = field(default=())


@dataclass(frozen=True)
class ReleaseFacts:
    digest: str
    name: str
    author: str | None
    classification: Classification | None
    evidence: tuple[EvidenceFact, ...] = field(default=())
    approvals: tuple[ApprovalFact, ...] = field(default=())
    promotions: tuple[PromotionFact, ...] = field(default=())

    def latest_evidence(self, evidence_type: str) -> EvidenceFact | None:
        for e in reversed(self.evidence):
            if e.type == evidence_type:
                return e
        return None

    def promoted_to(self, env: str) -> PromotionFact | None:
        found = [p for p in self.promotions if p.env == env]
        return found[-1] if found else None
