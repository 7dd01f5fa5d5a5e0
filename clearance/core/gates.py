"""The gate: may this artifact be promoted into this environment, and if not, exactly why.

``decide(policy, facts, env)`` lists every control the artifact's tier requires at ``env`` and
whether it is met: classification, environment order, each required evidence type (present and
not failing), checklists, and approvals. A control in ``mode: warn`` is reported but never blocks.
A "no" is data (:class:`Decision` with reasons), never an exception.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from clearance.core.approvals import approved_evidence, tally
from clearance.core.policy import EvidenceRule, Mode, Policy
from clearance.core.release import ReleaseFacts

#: The mode recorded for an approvals control a break-glass promotion waived.
BREAK_GLASS = "break-glass"


@dataclass(frozen=True)
class ControlResult:
    control: str
    satisfied: bool
    detail: str
    mode: str = Mode.ENFORCE.value

    @property
    def blocking(self) -> bool:
        return not self.satisfied and self.mode == Mode.ENFORCE.value

    def waived(self, reason: str) -> ControlResult:
        """The control as a break-glass promotion records it: unmet, not blocking, flagged."""
        return ControlResult(
            self.control, False, f"{self.detail}; waived by break-glass: {reason}", BREAK_GLASS
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "control": self.control,
            "satisfied": self.satisfied,
            "detail": self.detail,
            "mode": self.mode,
        }


@dataclass(frozen=True)
class Decision:
    allowed: bool
    digest: str
    env: str
    tier: str | None
    policy_digest: str | None
    evidence_set: str
    controls: tuple[ControlResult, ...]

    @property
    def blockers(self) -> list[ControlResult]:
        return [c for c in self.controls if c.blocking]

    def break_glass(self, reason: str) -> Decision:
        """Emergency path: missing approvals are waived (and flagged); nothing else is."""
        controls = tuple(
            c.waived(reason) if c.control == "approvals" and c.blocking else c
            for c in self.controls
        )
        allowed = not any(c.blocking for c in controls)
        return Decision(
            allowed,
            self.digest,
            self.env,
            self.tier,
            self.policy_digest,
            self.evidence_set,
            controls,
        )

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Decision:
        controls = tuple(
            ControlResult(c["control"], c["satisfied"], c["detail"], c.get("mode", "enforce"))
            for c in data["controls"]
        )
        return cls(
            data["allowed"],
            data["digest"],
            data["env"],
            data.get("tier"),
            data.get("policy_digest"),
            data["evidence_set"],
            controls,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "allowed": self.allowed,
            "digest": self.digest,
            "tier": self.tier,
            "env": self.env,
            "policy_digest": self.policy_digest,
            "evidence_set": self.evidence_set,
            "controls": [c.to_json() for c in self.controls],
        }


def applies(at: Sequence[str] | None, env: str, default: Sequence[str]) -> bool:
    return env in (at if at is not None else default)


def decide(policy: Policy | None, facts: ReleaseFacts, env: str) -> Decision:
    current_set = approved_evidence(facts, env)
    classification = facts.classification
    if policy is None or classification is None:
        control = ControlResult(
            "classification",
            False,
            "the artifact was registered without a classification: register it with --repo and "
            "--base so its change is classified against clearance.yaml",
        )
        return Decision(False, facts.digest, env, None, None, current_set, (control,))
    envs = policy.environments
    controls = [
        ControlResult(
            "classification", True, f"tier {classification.tier}: {classification.reason}"
        )
    ]
    controls.append(_order(envs, env, facts))
    tier = policy.tier(classification.tier)
    evidence_default = envs[1:]
    for rule in tier.require.evidence:
        if applies(rule.at, env, evidence_default):
            controls.append(_evidence(f"evidence:{rule.type}", rule, facts))
    for checklist in classification.checklists:
        for item in checklist["evidence"]:
            rule = EvidenceRule(type=item["type"], at=item["at"], mode=Mode(item["mode"]))
            if applies(rule.at, env, evidence_default):
                result = _evidence(f"checklist:{rule.type}", rule, facts)
                controls.append(
                    ControlResult(
                        result.control,
                        result.satisfied,
                        f"{result.detail} (required because {checklist['when']})",
                        result.mode,
                    )
                )
    approvals = tier.require.approvals
    if approvals is not None and approvals.count > 0 and applies(approvals.at, env, envs[-1:]):
        t = tally(approvals, policy, env, facts.author, facts.approvals, current_set)
        controls.append(ControlResult("approvals", t.satisfied, t.detail, approvals.mode.value))
    allowed = not any(c.blocking for c in controls)
    return Decision(
        allowed, facts.digest, env, classification.tier, policy.digest, current_set, tuple(controls)
    )


def _order(envs: Sequence[str], env: str, facts: ReleaseFacts) -> ControlResult:
    if env not in envs:
        return ControlResult(
            "environment-order",
            False,
            f"unknown environment {env!r} (environments: {', '.join(envs)})",
        )
    index = envs.index(env)
    if index == 0:
        return ControlResult("environment-order", True, f"{env} is the first environment")
    previous = envs[index - 1]
    promotion = facts.promoted_to(previous)
    if promotion is None:
        return ControlResult(
            "environment-order",
            False,
            f"not yet promoted to {previous}: {env} requires the same digest in {previous} first",
        )
    return ControlResult(
        "environment-order", True, f"promoted to {previous} at {promotion.at} by {promotion.actor}"
    )


def _evidence(control: str, rule: EvidenceRule, facts: ReleaseFacts) -> ControlResult:
    latest = facts.latest_evidence(rule.type)
    if latest is None:
        return ControlResult(
            control,
            False,
            f"missing: no {rule.type} evidence recorded "
            f"(clearance attest {facts.digest[:19]}… --type {rule.type} REPORT)",
            rule.mode.value,
        )
    if not latest.passed:
        return ControlResult(
            control,
            False,
            f"failing: {latest.format} {latest.result} ({latest.headline}), entry {latest.seq}",
            rule.mode.value,
        )
    return ControlResult(
        control,
        True,
        f"{latest.format} {latest.result} ({latest.headline}), entry {latest.seq}",
        rule.mode.value,
    )
