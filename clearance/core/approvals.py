"""Approvals as electronic signatures bound to the evidence the approver saw.

An approval names the digest of the artifact's evidence set at the moment of signing. Adding or
changing evidence changes that digest, so earlier approvals stop counting ("voided"). Counting:
distinct people; the commit author never counts; when roles are listed only their holders count
and each listed role needs at least one. Meanings ``approval`` and ``responsibility`` count;
``review`` is recorded but does not.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache

from clearance.core.canonical import canonical_json
from clearance.core.digests import digest_bytes
from clearance.core.policy import ApprovalRule, Policy
from clearance.core.release import ApprovalFact, EvidenceFact, ReleaseFacts


class Meaning(StrEnum):
    REVIEW = "review"
    APPROVAL = "approval"
    RESPONSIBILITY = "responsibility"


COUNTING = frozenset({Meaning.APPROVAL, Meaning.RESPONSIBILITY})


def evidence_set_digest(evidence: Sequence[EvidenceFact]) -> str:
    """The digest of what an approver is shown: every evidence record, in ledger order."""
    return _set_digest(tuple(sorted((e.seq, e.type, e.report, e.result) for e in evidence)))


@lru_cache(maxsize=512)
def _set_digest(items: tuple[tuple[int, str, str, str], ...]) -> str:
    """Memoised: a busy artifact's gate recomputes the same set's digest on every call."""
    return digest_bytes(
        canonical_json(
            [{"seq": s, "type": t, "report": r, "result": res} for s, t, r, res in items]
        )
    )


def evidence_judged(facts: ReleaseFacts, env: str) -> list[EvidenceFact]:
    """The evidence an approval for ``env`` is about.

    Everything recorded so far, until the artifact first reaches ``env``; after that, what was
    recorded before it got there. Post-deploy verification then does not void the approvals the
    release went out with, and a retro-approval signs what the release was judged on.
    """
    first = next((p for p in facts.promotions if p.env == env), None)
    return [e for e in facts.evidence if first is None or e.seq < first.seq]


def approved_evidence(facts: ReleaseFacts, env: str) -> str:
    """The evidence-set digest an approval for ``env`` is bound to."""
    return evidence_set_digest(evidence_judged(facts, env))


@dataclass(frozen=True)
class Tally:
    satisfied: bool
    detail: str
    counted: tuple[str, ...]


def tally(
    rule: ApprovalRule,
    policy: Policy,
    env: str,
    author: str | None,
    approvals: Sequence[ApprovalFact],
    current_set: str,
) -> Tally:
    eligible_roles = {r: set(policy.role_members(r)) for r in rule.roles}
    pool = set().union(*eligible_roles.values()) if rule.roles else None
    counted: dict[str, ApprovalFact] = {}
    notes: list[str] = []
    for a in approvals:
        if a.env != env or a.meaning not in COUNTING:
            continue
        if author and a.actor == author:
            notes.append(f"{a.actor}'s approval does not count: they authored the change")
        elif a.evidence_set != current_set:
            notes.append(
                f"{a.actor}'s approval (entry {a.seq}) is void: the evidence changed "
                "after they signed; they must approve again"
            )
        elif pool is not None and a.actor not in pool:
            notes.append(f"{a.actor} holds none of {', '.join(rule.roles)}: not counted")
        else:
            counted.setdefault(a.actor, a)
    people = sorted(counted)
    missing_roles = [r for r, members in eligible_roles.items() if not members & set(people)]
    enough = len(people) >= rule.count and not missing_roles
    described = ", ".join(_who(p, policy) for p in people) or "none"
    detail = f"{len(people)} of {rule.count} approvals for {env}: {described}"
    if missing_roles:
        detail += f"; missing a {' and a '.join(missing_roles)} approver"
    if not enough and pool is not None:
        available = pool - {author} if author else pool
        if len(available) < rule.count or any(
            not (m - {author} if author else m) for m in eligible_roles.values()
        ):
            detail += (
                f"; this can never be met: only {len(available)} eligible approver(s) "
                f"once the author {author} is excluded"
            )
    if notes:
        detail += "; " + "; ".join(notes)
    return Tally(enough, detail, tuple(people))


def _who(person: str, policy: Policy) -> str:
    roles = policy.roles_of(person)
    return f"{person} ({', '.join(roles)})" if roles else person
