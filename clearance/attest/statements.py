"""in-toto Statement v1 builders: SLSA provenance v1, test-result v0.1 and Clearance evidence.

Pure functions from values to JSON-able dicts; signing happens in :mod:`clearance.attest.dsse`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from clearance.core.digests import Digest, hex_of
from clearance.core.evidence import MAX_TEST_NAMES, Report

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
SLSA_PROVENANCE = "https://slsa.dev/provenance/v1"
TEST_RESULT = "https://in-toto.io/attestation/test-result/v0.1"
EVIDENCE = "https://clearance.dev/attestation/evidence/v1"
BUILD_TYPE = "https://clearance.dev/build/registered/v1"


def resource(name: str, digest: Digest, **extra: Any) -> dict[str, Any]:
    """An in-toto ResourceDescriptor naming content by its sha256."""
    return {"name": name, "digest": {"sha256": hex_of(digest)}, **extra}


def statement(
    subject_name: str, subject: Digest, predicate_type: str, predicate: Mapping[str, Any]
) -> dict[str, Any]:
    return {
        "_type": STATEMENT_TYPE,
        "subject": [resource(subject_name, subject)],
        "predicateType": predicate_type,
        "predicate": dict(predicate),
    }


def slsa_provenance(
    *,
    builder: str,
    build_number: str | None,
    commit: str,
    branch: str | None,
    repository: str | None,
    dependencies: Sequence[Mapping[str, Any]],
    change_request: str | None,
    registered_at: str,
) -> dict[str, Any]:
    source: dict[str, Any] = {"digest": {"gitCommit": commit}}
    if repository:
        ref = f"@refs/heads/{branch}" if branch else ""
        source["uri"] = f"git+{repository}{ref}"
    else:
        source["name"] = f"refs/heads/{branch}" if branch else "source"
    external: dict[str, Any] = {"commit": commit}
    if branch:
        external["branch"] = branch
    if repository:
        external["repository"] = repository
    if change_request:
        external["changeRequest"] = change_request
    metadata: dict[str, Any] = {"finishedOn": registered_at}
    if build_number:
        metadata["invocationId"] = build_number
    return {
        "buildDefinition": {
            "buildType": BUILD_TYPE,
            "externalParameters": external,
            "internalParameters": {"buildNumber": build_number} if build_number else {},
            "resolvedDependencies": [source, *dependencies],
        },
        "runDetails": {"builder": {"id": builder}, "metadata": metadata},
    }


def test_result(report: Report, report_resource: Mapping[str, Any]) -> dict[str, Any]:
    """The in-toto test-result predicate; name lists are capped, the raw report is referenced."""
    return {
        "result": report.result.value,
        "configuration": [dict(report_resource)],
        "passedTests": list(report.passed_tests[:MAX_TEST_NAMES]),
        "warnedTests": list(report.warned_tests[:MAX_TEST_NAMES]),
        "failedTests": list(report.failed_tests[:MAX_TEST_NAMES]),
    }


def evidence(
    evidence_type: str, report: Report, report_resource: Mapping[str, Any]
) -> dict[str, Any]:
    """Clearance's predicate for scans, SBOMs and other non-test evidence."""
    return {
        "type": evidence_type,
        "format": report.format.value,
        "result": report.result.value,
        "tool": report.tool,
        "summary": dict(report.summary),
        "report": dict(report_resource),
    }


APPROVAL = "https://clearance.dev/attestation/approval/v1"
VSA = "https://slsa.dev/verification_summary/v1"
GATE_VERIFIER = "https://clearance.dev/gate/v1"


def approval(
    *,
    signer: str,
    roles: Sequence[str],
    meaning: str,
    env: str,
    evidence_set: str,
    reason: str | None,
    signed_at: str,
    policy_digest: str | None,
    printed_name: str | None = None,
) -> dict[str, Any]:
    """An electronic signature: who (and their printed name), as what, meaning what, over
    exactly which evidence."""
    return {
        "signer": signer,
        "signerName": printed_name,
        "roles": list(roles),
        "meaning": meaning,
        "environment": env,
        "evidenceSet": evidence_set,
        "reason": reason,
        "signedAt": signed_at,
        "policyDigest": policy_digest,
    }


def verification_summary(
    *,
    resource: str,
    verified_at: str,
    policy_digest: str,
    inputs: Sequence[Mapping[str, Any]],
    passed: bool,
    tier: str,
) -> dict[str, Any]:
    """SLSA Verification Summary Attestation for one gate decision to promote."""
    return {
        "verifier": {"id": GATE_VERIFIER},
        "timeVerified": verified_at,
        "resourceUri": resource,
        "policy": {"uri": "clearance.yaml", "digest": {"sha256": policy_digest.split(":", 1)[1]}},
        "inputAttestations": [dict(i) for i in inputs],
        "verificationResult": "PASSED" if passed else "FAILED",
        "verifiedLevels": [f"CLEARANCE_TIER_{tier.upper()}"],
    }
