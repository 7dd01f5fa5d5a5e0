"""What each page shows, assembled from the same service calls the CLI and the API make.

Nothing here decides anything: gates, approvals, completeness and verification come from
:class:`~clearance.usecases.service.LocalService`; this module only reads the ledger's records
about a release and shapes them for the templates (printed names, times, figures a person reads
first). The one computation of its own is checking each record's inclusion proof against the
latest signed checkpoint, from :mod:`clearance.core` functions.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from clearance.core import merkle
from clearance.core.approvals import Meaning
from clearance.core.digests import Digest
from clearance.core.evidence import headline
from clearance.core.ledger import Checkpoint, record_bytes
from clearance.errors import InputError, NotFoundError, VerificationError
from clearance.files import NamedText
from clearance.store.ledger import Entry
from clearance.usecases import artifacts
from clearance.usecases.accounts import display_names
from clearance.usecases.classification import stored_policy
from clearance.usecases.ledger import read_witness
from clearance.usecases.releases import APPROVED, PROMOTED
from clearance.usecases.rollouts import rollout_scope
from clearance.usecases.service import LocalService

#: The release list shows this many of the most recent registrations (search finds the rest).
LIST_LIMIT = 50
NOT_RECORDED = "not recorded"

MEANINGS = {
    Meaning.REVIEW: "Review: I have reviewed the evidence (recorded, does not count as approval)",
    Meaning.APPROVAL: "Approval: I approve this release for the environment",
    Meaning.RESPONSIBILITY: "Responsibility: I take responsibility for this release",
}


def short_time(at: str | None) -> str:
    """``2026-11-29T17:02:33.123456Z`` as ``2026-11-29 17:02 UTC``."""
    if not at:
        return ""
    return f"{at[:10]} {at[11:16]} UTC" if len(at) >= 16 and at[10] == "T" else at


def short_digest(digest: str | None) -> str:
    if not digest:
        return ""
    return digest[:19] + "…" if len(digest) > 19 else digest


def signature(name: str | None, email: str, meaning: str, at: str) -> str:
    """How a signature is shown everywhere: printed name, email, meaning, time."""
    who = f"{name} ({email})" if name else email
    return f"{who}, {meaning}, {short_time(at)}"


# -- the release list ------------------------------------------------------------------------------


@dataclass(frozen=True)
class GateState:
    env: str
    allowed: bool
    blockers: tuple[str, ...]
    evidence_set: str
    controls: tuple[Mapping[str, Any], ...]


@dataclass(frozen=True)
class ReleaseRow:
    digest: str
    name: str
    tier: str | None
    registered_at: str
    change_request: str | None
    runs_in: tuple[str, ...]
    #: Environments it reached but where a later release of the same name now runs.
    replaced_in: tuple[str, ...]
    next_gate: GateState | None
    released: bool


def gate_state(svc: LocalService, digest: Digest, env: str) -> GateState:
    decision = svc.gate(digest, env)
    controls = tuple(decision["controls"])
    return GateState(
        env,
        bool(decision["allowed"]),
        tuple(c["control"] for c in controls if not c["satisfied"] and c.get("mode") == "enforce"),
        str(decision["evidence_set"]),
        controls,
    )


def environments_of(svc: LocalService, registration: Entry) -> tuple[str, ...]:
    """The promotion order of the policy the artifact was classified under (empty if none)."""
    blob = registration.data.get("blobs", {}).get("policy")
    if not blob:
        return ()
    return stored_policy(svc.instance, Digest(str(blob))).environments


def _promoted_envs(entries: Iterable[Entry]) -> list[str]:
    return [str(e.data["env"]) for e in entries if e.kind == PROMOTED]


def release_rows(svc: LocalService) -> tuple[list[ReleaseRow], int]:
    """The most recent registrations, newest first, with where each runs and its next gate."""
    registered = artifacts.search(svc.instance)
    total = len(registered)
    running: dict[str, list[str]] = {}
    for row in svc.status(None):
        running.setdefault(row["digest"], []).append(row["env"])
    rows = []
    for entry in reversed(registered[-LIST_LIMIT:]):
        digest = Digest(str(entry.subject))
        envs = environments_of(svc, entry)
        promoted = set(_promoted_envs(svc.instance.ledger.about(digest)))
        pending = [e for e in envs if e not in promoted]
        here = running.get(digest, [])
        order = {e: i for i, e in enumerate(envs)}
        classification = entry.data.get("classification") or {}
        rows.append(
            ReleaseRow(
                digest=digest,
                name=str(entry.data.get("name") or digest),
                tier=classification.get("tier"),
                registered_at=entry.at,
                change_request=entry.data.get("change_request"),
                runs_in=tuple(sorted(here, key=lambda e: order.get(e, len(order)))),
                replaced_in=tuple(e for e in envs if e in promoted and e not in here),
                next_gate=gate_state(svc, digest, pending[0]) if pending else None,
                released=bool(envs) and not pending,
            )
        )
    return rows, total


# -- one release -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class EvidenceRow:
    entry: int
    type: str
    format: str
    result: str
    tests: str
    findings: str
    details: str
    recorded_at: str
    recorded_by: str
    report: str


@dataclass(frozen=True)
class ApprovalRow:
    entry: int
    env: str
    meaning: str
    signature: str
    reason: str | None
    evidence_set: str
    current: bool


@dataclass(frozen=True)
class PromotionRow:
    entry: int
    env: str
    at: str
    by: str
    tier: str | None
    config: str | None
    break_glass: str | None


@dataclass(frozen=True)
class LedgerRow:
    entry: int
    kind: str
    at: str
    actor: str
    included: bool | None
    status: str


@dataclass(frozen=True)
class ReleasePage:
    digest: str
    artifact: Mapping[str, Any]
    classification: Mapping[str, Any] | None
    environments: tuple[str, ...]
    selected_env: str | None
    gates: dict[str, GateState]
    evidence: list[EvidenceRow]
    summary: list[tuple[str, list[str]]]
    approvals: list[ApprovalRow]
    promotions: list[PromotionRow]
    ledger: list[LedgerRow]
    checkpoint: Checkpoint | None
    done: Mapping[str, Any]
    names: dict[str, str] = field(default_factory=dict)

    @property
    def signing_gate(self) -> GateState | None:
        return self.gates.get(self.selected_env) if self.selected_env else None


def _percent(rate: Any) -> str:
    return f"{float(rate) * 100:.1f}%" if isinstance(rate, int | float) else "?"


def test_figures(summary: Mapping[str, Any]) -> str:
    if "pass_rate" in summary and "tests" in summary:
        ran = int(summary.get("tests", 0)) - int(summary.get("skipped", 0))
        text = f"{summary.get('passed', 0)} of {ran} passed ({_percent(summary['pass_rate'])})"
        bad = int(summary.get("failures", 0)) + int(summary.get("errors", 0))
        if bad:
            text += f", {bad} failing"
        if summary.get("skipped"):
            text += f", {summary['skipped']} skipped"
        return text
    if isinstance(summary.get("passed"), bool):
        return "passed" if summary["passed"] else "not passed"
    return ""


def finding_figures(summary: Mapping[str, Any]) -> str:
    if "findings" in summary:
        levels = summary.get("by_level") or {}
        parts = ", ".join(f"{k} {v}" for k, v in levels.items() if v)
        return f"{summary['findings']} findings" + (f" ({parts})" if parts else "")
    if "vulnerabilities" in summary:
        return (
            f"{summary['vulnerabilities']} vulnerabilities in "
            f"{summary.get('vulnerable_dependencies', 0)} of {summary.get('dependencies', 0)} "
            "dependencies"
        )
    if "components" in summary:
        return f"{summary['components']} components (SBOM)"
    return ""


def evidence_rows(items: list[dict[str, Any]]) -> list[EvidenceRow]:
    return [
        EvidenceRow(
            entry=e["entry"],
            type=e["type"],
            format=e["format"],
            result=e["result"],
            tests=test_figures(e["summary"]),
            findings=finding_figures(e["summary"]),
            details=headline(e["summary"]),
            recorded_at=e["recorded_at"],
            recorded_by=e["recorded_by"],
            report=e["report"],
        )
        for e in items
    ]


def evidence_summary(
    rows: list[EvidenceRow],
    classification: Mapping[str, Any] | None,
    rollout: list[str] | None = None,
) -> list[tuple[str, list[str]]]:
    """The figures a reviewer reads first; what the ledger does not hold says so."""
    latest: dict[str, EvidenceRow] = {}
    for row in rows:
        latest[row.type] = row
    tests = [f"{r.type}: {r.tests}" for r in latest.values() if r.tests]
    findings = [f"{r.type}: {r.findings}" for r in latest.values() if r.findings]
    services = list(classification.get("services", ())) if classification else []
    return [
        ("Test pass rates", tests or ["no test results recorded"]),
        ("Vulnerability findings", findings or ["no scan results recorded"]),
        (
            "Affected services",
            services or (["no service's paths matched"] if classification else ["not classified"]),
        ),
        ("Rollout scope", rollout or [f"{NOT_RECORDED}: no rollout plan or rollout"]),
        (
            "Can a flag disable it without a redeploy?",
            [f"{NOT_RECORDED}: no kill-switch flag is recorded for this release"],
        ),
    ]


def latest_checkpoint(svc: LocalService) -> tuple[Checkpoint | None, str]:
    """The latest checkpoint with its signature verified, or None and why."""
    try:
        note = svc.checkpoint()["note"]
        return read_witness(svc.instance, NamedText("latest checkpoint", note)), ""
    except NotFoundError:
        return None, "the ledger has no checkpoint yet"
    except VerificationError as exc:
        return None, f"the latest checkpoint does not verify: {exc.message}"


def ledger_rows(
    svc: LocalService, entries: list[Entry], checkpoint: Checkpoint | None, problem: str
) -> list[LedgerRow]:
    rows = []
    for e in entries:
        if checkpoint is None:
            included, status = None, problem
        elif e.seq >= checkpoint.size:
            included, status = None, "recorded after the latest checkpoint"
        else:
            proof = svc.inclusion(e.seq, checkpoint.size)
            leaf = merkle.leaf_hash(
                record_bytes(
                    seq=e.seq, kind=e.kind, subject=e.subject, at=e.at, actor=e.actor, data=e.data
                )
            )
            included = merkle.verify_inclusion(
                leaf,
                e.seq,
                checkpoint.size,
                [base64.b64decode(h) for h in proof["proof"]],
                checkpoint.root,
            )
            status = (
                f"included in checkpoint {checkpoint.size}"
                if included
                else f"NOT provably included in checkpoint {checkpoint.size}"
            )
        rows.append(LedgerRow(e.seq, e.kind, e.at, e.actor, included, status))
    return rows


def release_page(svc: LocalService, digest: Digest, env: str | None) -> ReleasePage:
    artifact = svc.artifact(digest)  # NotFoundError for an unknown digest
    registration = artifacts.find_artifact(svc.instance, digest)
    envs = environments_of(svc, registration)
    if env is not None and env not in envs:
        raise InputError(
            f"unknown environment {env!r}",
            hint=f"this release's environments are {', '.join(envs) or 'none'}",
        )
    entries = svc.instance.ledger.about(digest)
    promoted = _promoted_envs(entries)
    pending = [e for e in envs if e not in promoted]
    selected = env or (pending[0] if pending else (envs[-1] if envs else None))
    gates = {e: gate_state(svc, digest, e) for e in envs}
    author = artifact.get("author")
    names = display_names(
        svc.instance, {e.actor for e in entries} | ({author} if author else set())
    )
    approvals = [
        ApprovalRow(
            entry=e.seq,
            env=str(e.data["env"]),
            meaning=str(e.data["meaning"]),
            signature=signature(names.get(e.actor), e.actor, str(e.data["meaning"]), e.at),
            reason=e.data.get("reason"),
            evidence_set=str(e.data["evidence_set"]),
            current=e.data["env"] in gates
            and gates[str(e.data["env"])].evidence_set == e.data["evidence_set"],
        )
        for e in entries
        if e.kind == APPROVED
    ]
    promotions = [
        PromotionRow(
            entry=e.seq,
            env=str(e.data["env"]),
            at=e.at,
            by=f"{names[e.actor]} ({e.actor})" if e.actor in names else e.actor,
            tier=e.data.get("tier"),
            config=e.data.get("config"),
            break_glass=(e.data.get("break_glass") or {}).get("reason"),
        )
        for e in entries
        if e.kind == PROMOTED
    ]
    evidence = evidence_rows(svc.evidence(digest))
    checkpoint, problem = latest_checkpoint(svc)
    classification = artifact.get("classification")
    return ReleasePage(
        digest=digest,
        artifact=artifact,
        classification=classification,
        environments=envs,
        selected_env=selected,
        gates=gates,
        evidence=evidence,
        summary=evidence_summary(evidence, classification, rollout_scope(svc.instance, digest)),
        approvals=approvals,
        promotions=promotions,
        ledger=ledger_rows(svc, entries, checkpoint, problem),
        checkpoint=checkpoint,
        done=svc.release(digest),
        names=names,
    )


# -- search ----------------------------------------------------------------------------------------

SEARCH_FIELDS = ("change_request", "version", "tenant", "since", "until")


def check_day(value: str, field_name: str) -> str:
    try:
        date.fromisoformat(value)
    except ValueError as exc:
        raise InputError(
            f"{value!r} is not a date", where=field_name, hint="write it as YYYY-MM-DD"
        ) from exc
    return value


def search(svc: LocalService, filters: Mapping[str, str]) -> list[dict[str, Any]]:
    """Registrations matching every filter given, newest first (dates as YYYY-MM-DD)."""
    for name in ("since", "until"):
        if filters.get(name):
            check_day(filters[name], name)
    found = svc.search(**{k: filters.get(k) or None for k in SEARCH_FIELDS})
    return list(reversed(found))
