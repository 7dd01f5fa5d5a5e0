"""The audit ledger's record format, its signed checkpoints and the pure verification steps.

A ledger record is one leaf of an RFC 6962 Merkle log. Its bytes are the RFC 8785 canonical JSON
of ``{"v": 1, "seq": n, "kind": ..., "subject": ..., "at": ..., "actor": ..., "data": {...}}``;
``seq`` is the leaf's position, so a record moved, inserted or removed no longer sits where it
says it does. After each append the log signs a checkpoint in the transparency-log "signed note"
form (c2sp.org/tlog-checkpoint and c2sp.org/signed-note)::

    <origin>
    <tree size>
    <base64 root hash>

    — <origin> <base64(4-byte key id || Ed25519 signature)>

Verification, in order (:class:`LogVerifier`):

1. each stored record parses, says its own position, and matches its indexed columns;
2. each stored leaf hash, and each stored subtree hash the leaf completes, equals the one
   recomputed from the stored bytes;
3. after each checkpointed entry, the recomputed root equals the checkpoint's root, and the
   checkpoint's signature verifies with the instance key;
4. the last entry carries a checkpoint (records after the last signed head are not trusted).

Blob and envelope checks belong to the adapters that can read them; they report through
:meth:`LogVerifier.problem`.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from clearance.core import merkle
from clearance.core.canonical import canonical_json
from clearance.errors import VerificationError

RECORD_VERSION = 1
ED25519_NOTE_TYPE = b"\x01"


def record_bytes(
    *,
    seq: int,
    kind: str,
    subject: str | None,
    at: str,
    actor: str,
    data: Mapping[str, Any],
) -> bytes:
    """The canonical leaf bytes of a ledger record."""
    return canonical_json(
        {
            "v": RECORD_VERSION,
            "seq": seq,
            "kind": kind,
            "subject": subject,
            "at": at,
            "actor": actor,
            "data": dict(data),
        }
    )


def note_key_id(origin: str, public_key: bytes) -> bytes:
    """The signed-note key id: SHA-256(name || 0x0A || 0x01 || 32-byte key)[:4]."""
    return hashlib.sha256(origin.encode() + b"\n" + ED25519_NOTE_TYPE + public_key).digest()[:4]


def note_verifier_key(origin: str, public_key: bytes) -> str:
    """The verifier key string tlog tooling takes: ``name+hex(key id)+base64(0x01 || key)``."""
    key_id = note_key_id(origin, public_key).hex()
    return f"{origin}+{key_id}+{base64.b64encode(ED25519_NOTE_TYPE + public_key).decode()}"


@dataclass(frozen=True)
class Checkpoint:
    origin: str
    size: int
    root: bytes
    signature: bytes = b""
    key_id: bytes = b""

    def body(self) -> bytes:
        return f"{self.origin}\n{self.size}\n{base64.b64encode(self.root).decode()}\n".encode()

    def note(self) -> str:
        sig = base64.b64encode(self.key_id + self.signature).decode()
        return f"{self.body().decode()}\n\u2014 {self.origin} {sig}\n"

    @property
    def root_hex(self) -> str:
        return self.root.hex()


def sign_checkpoint(
    origin: str, size: int, root: bytes, public_key: bytes, sign: Callable[[bytes], bytes]
) -> Checkpoint:
    unsigned = Checkpoint(origin, size, root)
    return Checkpoint(origin, size, root, sign(unsigned.body()), note_key_id(origin, public_key))


def parse_checkpoint(note: str, *, where: str = "checkpoint") -> Checkpoint:
    """Read a signed note; raises VerificationError naming what is malformed."""
    text, sep, sigs = note.partition("\n\n")
    lines = text.split("\n")
    if not sep or len(lines) < 3:
        raise VerificationError("not a signed checkpoint note", where=where)
    origin, size_text, root_text = lines[0], lines[1], lines[2]
    try:
        size = int(size_text)
        root = base64.b64decode(root_text, validate=True)
    except ValueError as exc:
        raise VerificationError(f"malformed tree size or root hash: {exc}", where=where) from exc
    if size < 0 or len(root) != 32:
        raise VerificationError("malformed tree size or root hash", where=where)
    for line in sigs.splitlines():
        dash, _, rest = line.partition(" ")
        name, _, sig_text = rest.partition(" ")
        if dash != "\u2014" or name != origin:
            continue
        try:
            raw = base64.b64decode(sig_text, validate=True)
        except ValueError as exc:
            raise VerificationError(f"malformed signature line: {exc}", where=where) from exc
        if len(raw) != 4 + 64:
            raise VerificationError("malformed Ed25519 signature line", where=where)
        return Checkpoint(origin, size, root, raw[4:], raw[:4])
    raise VerificationError(f"no signature by {origin!r} in the note", where=where)


@dataclass(frozen=True)
class StoredEntry:
    """One row as the store holds it, before anything about it is trusted."""

    seq: int
    kind: str
    subject: str | None
    body: bytes
    leaf_hash: bytes
    nodes: bytes
    checkpoint: str | None


@dataclass(frozen=True)
class Problem:
    seq: int | None
    message: str

    def __str__(self) -> str:
        return f"entry {self.seq}: {self.message}" if self.seq is not None else self.message


@dataclass
class LogVerifier:
    """Feed entries in ``seq`` order; collects every problem, first one first."""

    origin: str
    public_key: bytes
    verify_signature: Callable[[bytes, bytes], bool]
    frontier: merkle.Frontier = field(default_factory=merkle.Frontier)
    problems: list[Problem] = field(default_factory=list)
    last_checkpoint: Checkpoint | None = None
    _last_has_checkpoint: bool = True

    def problem(self, seq: int | None, message: str) -> None:
        self.problems.append(Problem(seq, message))

    def feed(self, entry: StoredEntry) -> dict[str, Any] | None:
        """Check one entry; return its parsed record for the adapters' own checks."""
        position = self.frontier.size
        record: dict[str, Any] | None = None
        if entry.seq != position:
            self.problem(position, f"expected entry {position}, found entry {entry.seq} there")
        try:
            parsed = json.loads(entry.body)
            record = parsed if isinstance(parsed, dict) else None
        except ValueError:
            record = None
        if record is None:
            self.problem(position, "record is not a JSON object")
        else:
            if record.get("seq") != position:
                self.problem(position, f"record says it is entry {record.get('seq')}")
            if record.get("kind") != entry.kind or record.get("subject") != entry.subject:
                self.problem(position, "indexed kind/subject columns differ from the record")
        computed = merkle.leaf_hash(entry.body)
        if computed != entry.leaf_hash:
            self.problem(position, "record bytes do not match their stored leaf hash")
        completed = self.frontier.append(computed)
        if entry.nodes != b"".join(n.hash for n in completed[1:]):
            self.problem(position, "stored Merkle subtree hashes differ from the recomputed ones")
        self._last_has_checkpoint = entry.checkpoint is not None
        if entry.checkpoint is not None:
            self._check_checkpoint(position, entry.checkpoint)
        return record

    def _check_checkpoint(self, position: int, note: str) -> None:
        try:
            cp = parse_checkpoint(note, where=f"checkpoint at entry {position}")
        except VerificationError as exc:
            self.problem(position, exc.message)
            return
        if cp.origin != self.origin or cp.key_id != note_key_id(self.origin, self.public_key):
            self.problem(position, "checkpoint is not signed by this ledger's key")
        elif not self.verify_signature(cp.body(), cp.signature):
            self.problem(position, "checkpoint signature does not verify")
        if cp.size != self.frontier.size:
            self.problem(position, f"checkpoint covers {cp.size} entries, expected {position + 1}")
        elif cp.root != self.frontier.root():
            self.problem(position, "recomputed root differs from the signed checkpoint")
        self.last_checkpoint = cp

    def finish(self) -> None:
        if self.frontier.size and not self._last_has_checkpoint:
            self.problem(self.frontier.size - 1, "no signed checkpoint covers the newest entries")

    @property
    def ok(self) -> bool:
        return not self.problems
