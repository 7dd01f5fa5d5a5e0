"""Attaching evidence to an artifact: parse the report, keep it, sign an attestation, record it.

The report is copied aside once and parsed from that copy, so what the summary says and what the
blob store keeps are the same bytes. A report that cannot be read leaves nothing behind.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from clearance import evidence as parsers
from clearance.attest import statements
from clearance.attest.dsse import sign_envelope
from clearance.core.canonical import canonical_json
from clearance.core.digests import Digest
from clearance.core.evidence import ReportFormat
from clearance.errors import InputError
from clearance.store.ledger import Entry
from clearance.usecases.artifacts import find_artifact, registration
from clearance.usecases.instance import Instance

ATTESTED = "evidence.attested"
_TYPE = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")


def check_evidence_type(evidence_type: str) -> str:
    if not _TYPE.match(evidence_type):
        raise InputError(
            f"evidence type {evidence_type!r} is not a lower-case name like unit-tests or sast"
        )
    return evidence_type


def attest(
    instance: Instance,
    digest: Digest,
    evidence_type: str,
    path: Path,
    *,
    actor: str,
    expected: ReportFormat | None = None,
    filename: str | None = None,
) -> Entry:
    """Parse, keep, sign and record a report; ``filename`` names an uploaded copy."""
    check_evidence_type(evidence_type)
    artifact = find_artifact(instance, digest)
    staged = instance.blobs.stage(path)
    try:
        shown = filename or path.name
        report = parsers.read_report(staged.path, expected=expected, name=filename or str(path))
        descriptor = statements.resource(shown, staged.digest, mediaType=_media_type(report.format))
        if report.is_test_report:
            predicate_type = statements.TEST_RESULT
            predicate = statements.test_result(report, descriptor)
        else:
            predicate_type = statements.EVIDENCE
            predicate = statements.evidence(evidence_type, report, descriptor)
        envelope = sign_envelope(
            canonical_json(
                statements.statement(artifact.data["name"], digest, predicate_type, predicate)
            ),
            instance.signer,
        )
        staged.commit()
        envelope_digest = instance.blobs.put_bytes(canonical_json(envelope))
        data = {
            "type": evidence_type,
            "format": report.format.value,
            "result": report.result.value,
            "passed": report.passed,
            "tool": report.tool,
            "summary": dict(report.summary),
            "filename": shown,
            "size": staged.size,
            "predicate_type": predicate_type,
            "blobs": {"report": staged.digest, "envelope": envelope_digest},
        }
        with instance.ledger.appending() as appender:
            find_artifact(instance, digest, within=appender)
            return appender.add(ATTESTED, digest, actor, data)
    finally:
        staged.discard()


def _media_type(fmt: ReportFormat) -> str:
    return {
        ReportFormat.JUNIT: "application/xml",
        ReportFormat.SARIF: "application/sarif+json",
        ReportFormat.CYCLONEDX: "application/vnd.cyclonedx+json",
    }.get(fmt, "application/json")


def list_evidence(instance: Instance, digest: Digest) -> list[Entry]:
    entries = instance.ledger.about(digest)
    registration(entries, digest)
    return [e for e in entries if e.kind == ATTESTED]


def envelopes(instance: Instance, digest: Digest) -> Iterator[dict[str, Any]]:
    """Every DSSE envelope about the artifact, provenance first, as stored (for .intoto.jsonl)."""
    entries = instance.ledger.about(digest)
    registration(entries, digest)
    for entry in entries:
        blob = entry.data.get("blobs", {}).get("envelope")
        if blob:
            yield json.loads(instance.blobs.read_bytes(Digest(blob)))
