"""Governed release: approvals, the gate, promotion, where things run, and the definition of done.

Every decision is computed from the ledger. Approving and promoting happen inside the ledger's
write lock, so what was checked is exactly what is recorded, and two promotions to one
environment are serialised.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from clearance.attest import statements
from clearance.attest.dsse import sign_envelope
from clearance.core.approvals import Meaning, evidence_judged, evidence_set_digest
from clearance.core.canonical import canonical_json
from clearance.core.classify import Classification
from clearance.core.digests import Digest, hex_of
from clearance.core.envconfig import check_config
from clearance.core.gates import BREAK_GLASS, ControlResult, Decision, decide
from clearance.core.policy import Policy
from clearance.core.release import ApprovalFact, EvidenceFact, PromotionFact, ReleaseFacts
from clearance.errors import ConflictError, InputError, RefusedError
from clearance.files import NamedText
from clearance.store.ledger import Appender, Entry
from clearance.usecases.accounts import display_names
from clearance.usecases.artifacts import registration
from clearance.usecases.classification import stored_policy
from clearance.usecases.evidence import ATTESTED
from clearance.usecases.instance import Instance

APPROVED = "approval.signed"
PROMOTED = "promotion.recorded"
REFUSED = "access.refused"


class GateBlocked(RefusedError):
    """A promotion the gate refused; ``decision`` says which controls are not met."""

    def __init__(self, decision: Decision) -> None:
        blockers = "; ".join(f"{c.control}: {c.detail}" for c in decision.blockers)
        super().__init__(f"promotion of {decision.digest} to {decision.env} blocked: {blockers}")
        self.decision = decision


def release_facts(
    instance: Instance, digest: Digest, within: Appender | None
) -> tuple[ReleaseFacts, Policy | None]:
    entries = within.find(subject=digest) if within is not None else instance.ledger.about(digest)
    reg = registration(entries, digest).data
    classification = (
        Classification.from_json(reg["classification"]) if reg.get("classification") else None
    )
    policy_blob = reg.get("blobs", {}).get("policy")
    policy = stored_policy(instance, Digest(policy_blob)) if policy_blob else None
    facts = ReleaseFacts(
        digest=digest,
        name=reg["name"],
        author=reg.get("author"),
        classification=classification,
        evidence=tuple(_evidence_fact(e) for e in entries if e.kind == ATTESTED),
        approvals=tuple(
            ApprovalFact(
                e.seq, e.actor, e.data["env"], e.data["meaning"], e.data["evidence_set"], e.at
            )
            for e in entries
            if e.kind == APPROVED
        ),
        promotions=tuple(
            PromotionFact(
                e.seq,
                e.data["env"],
                e.actor,
                e.at,
                e.data.get("config"),
                tuple(e.data.get("decision", {}).get("controls", ())),
            )
            for e in entries
            if e.kind == PROMOTED
        ),
    )
    return facts, policy


def _evidence_fact(e: Entry) -> EvidenceFact:
    return EvidenceFact(
        e.seq,
        e.data["type"],
        e.data["format"],
        e.data["result"],
        e.data["passed"],
        e.data["summary"],
        e.data["blobs"]["report"],
        e.at,
    )


def gate(instance: Instance, digest: Digest, env: str) -> Decision:
    facts, policy = release_facts(instance, digest, None)
    known_env(policy, env)
    return decide(policy, facts, env)


def known_env(policy: Policy | None, env: str) -> None:
    if policy is not None and env not in policy.environments:
        raise InputError(
            f"unknown environment {env!r}",
            hint=f"the policy's environments are {', '.join(policy.environments)}",
        )


def approve(
    instance: Instance,
    digest: Digest,
    *,
    env: str,
    meaning: Meaning,
    actor: str,
    reason: str | None = None,
    expected_evidence_set: str | None = None,
) -> Entry:
    """Sign an approval over the evidence set as it stands; the author is refused.

    ``expected_evidence_set`` is the digest the signer was shown: if evidence arrived since, the
    signature is refused (checked under the write lock, so nothing can slip in between).
    """
    # The printed name of a signer with an account (everyone who signs in the browser), part of
    # the signed statement: a signature shows who signed by name, not only by login.
    printed_name = display_names(instance, {actor}).get(actor)
    with instance.ledger.appending() as appender:
        facts, policy = release_facts(instance, digest, appender)
        if policy is None:
            raise InputError(
                f"{digest} has no classification, so there is nothing to approve against",
                hint="register it with --repo and --base",
            )
        known_env(policy, env)
        if facts.author and actor == facts.author:
            raise RefusedError(
                f"{actor} authored this change and cannot approve it",
                hint="separation of duties: ask another eligible approver",
            )
        if any(p.actor == actor and p.env == env for p in facts.promotions):
            raise RefusedError(
                f"{actor} promoted this release to {env} and cannot also approve it there",
                hint="separation of duties: a retro-approval comes from someone else",
            )
        judged = evidence_judged(facts, env)
        evidence_set = evidence_set_digest(judged)
        if expected_evidence_set is not None and expected_evidence_set != evidence_set:
            raise ConflictError(
                f"the evidence for {env} changed since it was shown (it is now {evidence_set}, "
                f"the signer was shown {expected_evidence_set}); nothing was signed",
                hint="review the evidence again and sign what is current",
            )
        roles = policy.roles_of(actor)
        predicate = statements.approval(
            signer=actor,
            roles=roles,
            meaning=meaning.value,
            env=env,
            evidence_set=evidence_set,
            reason=reason,
            signed_at=appender.at,
            policy_digest=policy.digest,
            printed_name=printed_name,
        )
        envelope = sign_envelope(
            canonical_json(
                statements.statement(facts.name, digest, statements.APPROVAL, predicate)
            ),
            instance.signer,
        )
        envelope_digest = instance.blobs.put_bytes(canonical_json(envelope))
        return appender.add(
            APPROVED,
            digest,
            actor,
            {
                "env": env,
                "meaning": meaning.value,
                "printed_name": printed_name,
                "roles": list(roles),
                "reason": reason,
                "evidence_set": evidence_set,
                "evidence_entries": [e.seq for e in judged],
                "policy_digest": policy.digest,
                "blobs": {"envelope": envelope_digest},
            },
        )


@dataclass(frozen=True)
class Promotion:
    entry: Entry
    decision: Decision


def promote(
    instance: Instance,
    digest: Digest,
    *,
    env: str,
    actor: str,
    config: NamedText | None = None,
    break_glass: str | None = None,
) -> Promotion:
    """Run the gate under the write lock; record the deployment only if it allows.

    ``break_glass`` (the reason, required) waives missing approvals only: the promotion is
    flagged wherever it appears and awaits retro-approval until the approvals are given.
    """
    if break_glass is not None and not break_glass.strip():
        raise InputError("a break-glass promotion needs a reason", hint="--reason TEXT")
    config_text = None
    if config is not None:
        check_config(config.text, config.name)
        config_text = config.text
    with instance.ledger.appending() as appender:
        facts, policy = release_facts(instance, digest, appender)
        known_env(policy, env)
        check_promoter(facts, actor, env)
        decision = decide(policy, facts, env)
        if break_glass is not None:
            decision = decision.break_glass(break_glass.strip())
        if not decision.allowed:
            raise GateBlocked(decision)
        entry = record_promotion(
            instance,
            appender,
            facts,
            policy,
            decision,
            actor=actor,
            config_text=config_text,
            break_glass=break_glass,
        )
    return Promotion(entry, decision)


def check_promoter(facts: ReleaseFacts, actor: str, env: str) -> None:
    """Separation of duties: whoever approved a release for an environment cannot promote it."""
    if any(a.actor == actor and a.env == env for a in facts.approvals):
        raise RefusedError(
            f"{actor} approved this release for {env} and cannot also promote it there",
            hint="separation of duties: a deployer or another release manager promotes",
        )


def record_promotion(
    instance: Instance,
    appender: Appender,
    facts: ReleaseFacts,
    policy: Policy | None,
    decision: Decision,
    *,
    actor: str,
    config_text: str | None = None,
    break_glass: str | None = None,
    extra: dict[str, Any] | None = None,
) -> Entry:
    """Record an allowed promotion with its signed SLSA VSA, inside the caller's write lock."""
    assert policy is not None and decision.tier is not None
    digest = Digest(facts.digest)
    env = decision.env
    config_digest = (
        instance.blobs.put_bytes(config_text.encode()) if config_text is not None else None
    )
    vsa = statements.verification_summary(
        resource=f"{facts.name}@{digest}",
        verified_at=appender.at,
        policy_digest=policy.digest,
        inputs=[
            {"uri": f"ledger:{e.seq}", "digest": {"sha256": hex_of(Digest(e.report))}}
            for e in facts.evidence
        ],
        passed=True,
        tier=decision.tier,
    )
    envelope = sign_envelope(
        canonical_json(statements.statement(facts.name, digest, statements.VSA, vsa)),
        instance.signer,
    )
    blobs: dict[str, str] = {"envelope": instance.blobs.put_bytes(canonical_json(envelope))}
    if config_digest is not None:
        blobs["config"] = config_digest
    return appender.add(
        PROMOTED,
        digest,
        actor,
        {
            "env": env,
            "name": facts.name,
            "config": config_digest,
            "tier": decision.tier,
            "break_glass": {"reason": break_glass.strip()} if break_glass else None,
            "decision": decision.to_json(),
            "blobs": blobs,
            **(extra or {}),
        },
    )


def record_refusal(
    instance: Instance, *, actor: str, action: str, subject: str | None, reason: str
) -> Entry:
    """Put a refused attempt in the ledger: who tried what, when, and why it was refused."""
    return instance.ledger.append(REFUSED, subject, actor, {"action": action, "reason": reason})


def status(instance: Instance, env: str | None = None) -> list[dict[str, Any]]:
    """Which digest runs where, since when, promoted by whom: the latest promotion of each
    artifact name (service) to each environment."""
    latest: dict[tuple[str, str], Entry] = {}
    for entry in instance.ledger.find(kinds=[PROMOTED]):
        latest[(entry.data["env"], entry.data.get("name") or "")] = entry
    rows = [
        {
            "break_glass": (e.data.get("break_glass") or {}).get("reason"),
            "retro_approval": _retro_state(instance, e),
            "env": e.data["env"],
            "digest": e.subject,
            "name": e.data.get("name"),
            "tier": e.data.get("tier"),
            "since": e.at,
            "by": e.actor,
            "entry": e.seq,
            "config": e.data.get("config"),
        }
        for (where, _), e in sorted(latest.items())
        if env is None or where == env
    ]
    return rows


def _retro_state(instance: Instance, promotion: Entry) -> str | None:
    """For a break-glass promotion: "awaiting" until its approvals are given, then "done"."""
    if not promotion.data.get("break_glass"):
        return None
    env = promotion.data["env"]
    facts, policy = release_facts(instance, Digest(str(promotion.subject)), None)
    approvals = [c for c in decide(policy, facts, env).controls if c.control == "approvals"]
    return "done" if all(c.satisfied for c in approvals) else "awaiting"


@dataclass(frozen=True)
class Completeness:
    digest: str
    complete: bool
    items: tuple[tuple[str, bool, str], ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "digest": self.digest,
            "complete": self.complete,
            "items": [{"item": n, "present": ok, "detail": d} for n, ok, d in self.items],
            "missing": [n for n, ok, _ in self.items if not ok],
        }


POST_DEPLOY = "post-deploy-verification"


def release_show(instance: Instance, digest: Digest) -> Completeness:
    """The definition of done, computed from the ledger: what is recorded and what is missing."""
    facts, policy = release_facts(instance, digest, None)
    items: list[tuple[str, bool, str]] = [("artifact hash", True, digest)]
    if policy is None or facts.classification is None:
        items.append(("manifest", False, "registered without a classification (--repo --base)"))
        return Completeness(digest, False, tuple(items))
    cls = facts.classification
    items.append(
        (
            "manifest",
            True,
            f"tier {cls.tier}, {cls.files} files, policy "
            f"{cls.policy_digest[:19]}…, commit {cls.head[:12]}",
        )
    )
    last = policy.environments[-1]
    target = facts.promoted_to(last)
    # Once released, the record is what the gate saw when it allowed the release; evidence added
    # afterwards (post-deploy verification) does not reopen it.
    controls = (
        [
            ControlResult(c["control"], c["satisfied"], c["detail"], c["mode"])
            for c in target.controls
        ]
        if target is not None
        else list(decide(policy, facts, last).controls)
    )
    evidence = [c for c in controls if c.control.startswith(("evidence:", "checklist:"))]
    bad = [c.control.split(":", 1)[1] for c in evidence if not c.satisfied]
    items.append(
        (
            "test results and evidence",
            not bad,
            f"missing or failing: {', '.join(bad)}"
            if bad
            else f"{len(evidence)} required items recorded and passing",
        )
    )
    approvals = [c for c in controls if c.control == "approvals"]
    retro = None
    if target is not None and any(c.mode == BREAK_GLASS for c in approvals):
        # Released through break-glass: complete only once the approvals are given after the fact.
        approvals = [c for c in decide(policy, facts, last).controls if c.control == "approvals"]
        retro = (
            "awaiting retro-approval"
            if not all(c.satisfied for c in approvals)
            else ("retro-approved after a break-glass release")
        )
    items.append(
        (
            "approvals",
            all(c.satisfied for c in approvals),
            (f"{retro}: " if retro else "")
            + (approvals[0].detail if approvals else "no approvals required"),
        )
    )
    items.append(
        (
            "deployment target",
            target is not None,
            f"in {last} since {target.at} (entry {target.seq})"
            if target
            else f"not promoted to {last}",
        )
    )
    verified = [
        e
        for e in facts.evidence
        if e.type == POST_DEPLOY and target is not None and e.seq > target.seq
    ]
    items.append(
        (
            "post-deploy verification",
            bool(verified) and verified[-1].passed,
            f"{verified[-1].result}, entry {verified[-1].seq}"
            if verified
            else f"no {POST_DEPLOY} evidence after the {last} promotion",
        )
    )
    return Completeness(digest, all(ok for _, ok, _ in items), tuple(items))
