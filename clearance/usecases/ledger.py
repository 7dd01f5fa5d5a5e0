"""Checking the ledger: full verification, witness checkpoints, inclusion and consistency proofs.

``verify_ledger`` recomputes everything from the stored records and blobs
(:class:`clearance.core.ledger.LogVerifier` steps 1-4), then for every record that references
blobs: 5. each blob is present and still hashes to its digest; 6. each DSSE envelope verifies
with the instance key and its statement is about the record's subject. With a witness checkpoint
(``against``): 7. the checkpoint's signature verifies and a consistency proof shows the current
log extends it.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from clearance.attest.dsse import open_envelope
from clearance.attest.keys import public_key_raw, verify
from clearance.core import merkle
from clearance.core.digests import Digest, hex_of
from clearance.core.ledger import Checkpoint, LogVerifier, Problem, note_key_id, parse_checkpoint
from clearance.errors import InputError, NotFoundError, VerificationError
from clearance.files import NamedText, write_text
from clearance.usecases.instance import Instance

Progress = Callable[[int], None]


@dataclass
class Verification:
    size: int
    root: bytes
    problems: list[Problem] = field(default_factory=list)
    against: Checkpoint | None = None

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "size": self.size,
            "root": self.root.hex(),
            "problems": [{"entry": p.seq, "problem": p.message} for p in self.problems],
            "first_bad_entry": self.problems[0].seq if self.problems else None,
            "against": None
            if self.against is None
            else {"size": self.against.size, "root": self.against.root_hex},
        }


def verify_ledger(
    instance: Instance, *, against: NamedText | None = None, progress: Progress | None = None
) -> Verification:
    witness = read_witness(instance, against) if against is not None else None
    public = public_key_raw(instance.signer.public_key)
    verifier = LogVerifier(
        instance.origin,
        public,
        lambda body, sig: verify(instance.signer.public_key, body, sig),
    )
    for stored in instance.ledger.stored_entries():
        record = verifier.feed(stored)
        if record is not None:
            _check_blobs(instance, verifier, stored.seq, record)
        if progress is not None:
            progress(stored.seq + 1)
    verifier.finish()
    result = Verification(verifier.frontier.size, verifier.frontier.root(), verifier.problems)
    if witness is not None:
        result.against = witness
        _check_extends(instance, result, witness)
    return result


def _check_blobs(
    instance: Instance, verifier: LogVerifier, seq: int, record: dict[str, Any]
) -> None:
    data = record.get("data")
    blobs = data.get("blobs", {}) if isinstance(data, dict) else {}
    if not isinstance(blobs, dict):
        verifier.problem(seq, "record's blob references are malformed")
        return
    for role, digest in sorted(blobs.items()):
        problem = instance.blobs.check(Digest(str(digest)))
        if problem:
            verifier.problem(seq, f"{role} {problem}")
        elif role == "envelope":
            _check_envelope(instance, verifier, seq, record, Digest(str(digest)))


def _check_envelope(
    instance: Instance, verifier: LogVerifier, seq: int, record: dict[str, Any], digest: Digest
) -> None:
    try:
        envelope = json.loads(instance.blobs.read_bytes(digest))
        statement = open_envelope(
            envelope, instance.signer.public_key, instance.signer.keyid, where=f"envelope {digest}"
        )
    except (ValueError, VerificationError) as exc:
        verifier.problem(seq, str(exc))
        return
    subject = record.get("subject")
    names = (
        [
            s.get("digest", {}).get("sha256")
            for s in statement.get("subject", [])
            if isinstance(s, dict)
        ]
        if isinstance(statement, dict)
        else []
    )
    if subject and hex_of(Digest(subject)) not in names:
        verifier.problem(seq, f"the signed statement in {digest} is not about {subject}")


def read_witness(instance: Instance, note: NamedText) -> Checkpoint:
    """A checkpoint exported earlier; it must be this ledger's and its signature must verify."""
    path = note.name
    cp = parse_checkpoint(note.text, where=path)
    public = public_key_raw(instance.signer.public_key)
    if cp.origin != instance.origin or cp.key_id != note_key_id(instance.origin, public):
        raise VerificationError(f"checkpoint is from another ledger ({cp.origin})", where=str(path))
    if not verify(instance.signer.public_key, cp.body(), cp.signature):
        raise VerificationError("checkpoint signature does not verify", where=str(path))
    return cp


def _check_extends(instance: Instance, result: Verification, witness: Checkpoint) -> None:
    if witness.size > result.size:
        result.problems.append(
            Problem(
                None,
                f"the log has {result.size} entries but the witness checkpoint covers "
                f"{witness.size}: entries were removed",
            )
        )
        return
    try:
        proof = instance.ledger.consistency_proof(witness.size, result.size)
    except NotFoundError as exc:
        result.problems.append(Problem(None, f"cannot build a consistency proof: {exc.message}"))
        return
    if not merkle.verify_consistency(witness.size, result.size, witness.root, result.root, proof):
        result.problems.append(
            Problem(
                None,
                f"the current log does not extend the witness checkpoint of size {witness.size}: "
                "history before it was rewritten",
            )
        )


def export_checkpoint(instance: Instance, path: Path) -> Checkpoint:
    cp = instance.ledger.latest_checkpoint()
    if cp is None:
        raise NotFoundError("the ledger is empty: nothing to export", hint="run `clearance init`")
    write_text(path, cp.note())
    return cp


def _b64(items: list[bytes]) -> list[str]:
    return [base64.b64encode(h).decode() for h in items]


def inclusion(instance: Instance, seq: int, size: int | None = None) -> dict[str, Any]:
    """An RFC 9162 inclusion proof of entry ``seq`` in the tree of ``size`` (default: latest)."""
    current = instance.ledger.size()
    size = current if size is None else size
    if not 0 <= seq < size <= current:
        raise InputError(f"entry {seq} is not in a tree of size {size} (the log has {current})")
    proof = instance.ledger.inclusion_proof(seq, size)
    return {
        "entry": seq,
        "tree_size": size,
        "leaf_hash": base64.b64encode(instance.ledger.leaf_hash(seq)).decode(),
        "root_hash": base64.b64encode(instance.ledger.root_at(size)).decode(),
        "proof": _b64(proof),
    }


def consistency(instance: Instance, old_size: int, new_size: int | None = None) -> dict[str, Any]:
    current = instance.ledger.size()
    new_size = current if new_size is None else new_size
    if not 0 <= old_size <= new_size <= current:
        raise InputError(
            f"no consistency proof from size {old_size} to {new_size} (the log has {current})"
        )
    return {
        "old_size": old_size,
        "new_size": new_size,
        "old_root": base64.b64encode(instance.ledger.root_at(old_size)).decode(),
        "new_root": base64.b64encode(instance.ledger.root_at(new_size)).decode(),
        "proof": _b64(instance.ledger.consistency_proof(old_size, new_size)),
    }
