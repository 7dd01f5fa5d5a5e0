"""The operations of Clearance as JSON-shaped calls: what the CLI renders and the API serves.

:class:`LocalService` runs them on an instance; :class:`clearance.client.RemoteService` sends the
same calls to a server. Both return the same shapes, so the CLI prints the same output in local
and server mode, and the API's responses are exactly these values.
"""

from __future__ import annotations

import base64
import json
import threading
from concurrent.futures import Future
from pathlib import Path
from typing import Any, Protocol

from clearance.attest.keys import public_key_pem, public_key_raw
from clearance.core.approvals import Meaning
from clearance.core.digests import Digest
from clearance.core.evidence import ReportFormat
from clearance.core.ledger import note_verifier_key
from clearance.core.roles import Role
from clearance.errors import NotFoundError
from clearance.files import NamedText
from clearance.store.ledger import Entry
from clearance.usecases import artifacts, evidence, identity, ledger, releases
from clearance.usecases.instance import Instance

#: Gate decisions a server process keeps (per digest and environment).
GATE_CACHE_SIZE = 1024


def artifact_json(entry: Entry) -> dict[str, Any]:
    return {
        "digest": entry.subject,
        "entry": entry.seq,
        "recorded_at": entry.at,
        "recorded_by": entry.actor,
        **{k: v for k, v in entry.data.items() if k != "blobs"},
        "provenance": entry.data.get("blobs", {}).get("envelope"),
    }


def evidence_json(entry: Entry) -> dict[str, Any]:
    data = entry.data
    return {
        "entry": entry.seq,
        "type": data["type"],
        "format": data["format"],
        "result": data["result"],
        "passed": data["passed"],
        "tool": data.get("tool"),
        "summary": data["summary"],
        "filename": data.get("filename"),
        "report": data["blobs"]["report"],
        "envelope": data["blobs"]["envelope"],
        "recorded_at": entry.at,
        "recorded_by": entry.actor,
    }


class Service(Protocol):
    """Every operation; ``actor`` is who acts (a server takes it from the caller's token)."""

    def register(
        self,
        *,
        build: artifacts.BuildInfo,
        source: artifacts.Source,
        actor: str,
        path: Path | None,
        digest: Digest | None,
        name: str | None,
    ) -> dict[str, Any]: ...

    def artifact(self, digest: Digest) -> dict[str, Any]: ...

    def attest(
        self,
        digest: Digest,
        evidence_type: str,
        report: Path,
        *,
        actor: str,
        fmt: ReportFormat | None = None,
        filename: str | None = None,
    ) -> dict[str, Any]: ...

    def evidence(self, digest: Digest) -> list[dict[str, Any]]: ...

    def attestations(self, digest: Digest) -> list[dict[str, Any]]: ...

    def gate(self, digest: Digest, env: str) -> dict[str, Any]: ...

    def approve(
        self, digest: Digest, *, env: str, meaning: Meaning, reason: str | None, actor: str
    ) -> dict[str, Any]: ...

    def promote(
        self,
        digest: Digest,
        *,
        env: str,
        actor: str,
        config: NamedText | None,
        break_glass: str | None = None,
    ) -> dict[str, Any]: ...

    def status(self, env: str | None) -> list[dict[str, Any]]: ...

    def release(self, digest: Digest) -> dict[str, Any]: ...

    def verify(self, against: NamedText | None) -> dict[str, Any]: ...

    def checkpoint(self) -> dict[str, Any]: ...

    def inclusion(self, entry: int, size: int | None) -> dict[str, Any]: ...

    def consistency(self, old: int, new: int | None) -> dict[str, Any]: ...

    def key(self) -> dict[str, Any]: ...

    def search(self, **filters: str | None) -> list[dict[str, Any]]: ...

    def create_token(
        self, *, name: str, role: Role, expires: str | None, actor: str
    ) -> dict[str, Any]: ...

    def revoke_token(self, *, name: str, actor: str) -> dict[str, Any]: ...

    def tokens(self) -> list[dict[str, Any]]: ...

    def close(self) -> None: ...


class GateCache:
    """Gate decisions, encoded, per digest and environment, with the newest entry they saw.

    The gate is a function of the entries about the digest (and the policy blob they name), so
    a decision stays right until an entry about the digest is added: every call asks the ledger
    for newer entries (one indexed query, through :meth:`LedgerStore.about`) and computes the
    decision again when there are any. Concurrent calls that saw the same newest entry share one
    computation.
    """

    def __init__(self, instance: Instance, size: int = GATE_CACHE_SIZE) -> None:
        self.instance = instance
        self.size = size
        self._done: dict[tuple[Digest, str], tuple[int, bytes]] = {}
        self._running: dict[tuple[Digest, str], tuple[int, Future[bytes]]] = {}
        self._lock = threading.Lock()

    def decision(self, digest: Digest, env: str) -> bytes:
        entries = self.instance.ledger.about(digest)
        newest = entries[-1].seq if entries else -1
        key = (digest, env)
        done = self._done.get(key)
        if done is not None and done[0] == newest:
            return done[1]
        with self._lock:
            found = self._running.get(key)
            if found is None or found[0] < newest:  # nobody is computing from what we saw
                running, lead = (newest, Future[bytes]()), True
                self._running[key] = running
            else:
                running, lead = found, False
        if not lead:
            if running[1].exception() is None:  # it read the ledger after we did
                return running[1].result()
            return self._compute(digest, env)  # it failed: fail here with our own error
        try:
            body = self._compute(digest, env)
            self._keep(key, newest, body)
            running[1].set_result(body)
            return body
        except BaseException as exc:
            running[1].set_exception(exc)
            raise
        finally:
            with self._lock:
                if self._running.get(key) is running:
                    del self._running[key]

    def _keep(self, key: tuple[Digest, str], newest: int, body: bytes) -> None:
        # Kept under ``newest`` although it may have seen newer entries: a later call that sees
        # those recomputes, so a race costs a computation, never a stale answer.
        with self._lock:
            done = self._done.get(key)
            if done is not None and done[0] > newest:
                return  # a computation from a newer read finished first
            if done is None and len(self._done) >= self.size:
                self._done.pop(next(iter(self._done)), None)
            self._done[key] = (newest, body)

    def _compute(self, digest: Digest, env: str) -> bytes:
        return compact(releases.gate(self.instance, digest, env).to_json())


class LocalService:
    """The operations on one instance, with the read caches a long-lived server process keeps.

    ``tokens_cache`` remembers authenticated API tokens briefly (see
    :class:`identity.TokenCache`); gate decisions are kept in a :class:`GateCache` until the
    digest has a newer ledger entry (every call asks the database, so another process's appends
    are seen at once).
    """

    def __init__(self, instance: Instance) -> None:
        self.instance = instance
        self.tokens_cache = identity.TokenCache(instance)
        self._gates = GateCache(instance)

    def close(self) -> None:
        self.instance.close()

    def register(
        self,
        *,
        build: artifacts.BuildInfo,
        source: artifacts.Source,
        actor: str,
        path: Path | None,
        digest: Digest | None,
        name: str | None,
        size: int | None = None,
    ) -> dict[str, Any]:
        result = artifacts.register_artifact(
            self.instance,
            build=build,
            actor=actor,
            path=path,
            digest=digest,
            name=name,
            source=source,
            size=size,
        )
        return {**artifact_json(result.entry), "created": result.created}

    def artifact(self, digest: Digest) -> dict[str, Any]:
        return artifact_json(artifacts.find_artifact(self.instance, digest))

    def attest(
        self,
        digest: Digest,
        evidence_type: str,
        report: Path,
        *,
        actor: str,
        fmt: ReportFormat | None = None,
        filename: str | None = None,
    ) -> dict[str, Any]:
        entry = evidence.attest(
            self.instance,
            digest,
            evidence_type,
            report,
            actor=actor,
            expected=fmt,
            filename=filename,
        )
        return evidence_json(entry)

    def evidence(self, digest: Digest) -> list[dict[str, Any]]:
        return [evidence_json(e) for e in evidence.list_evidence(self.instance, digest)]

    def attestations(self, digest: Digest) -> list[dict[str, Any]]:
        return list(evidence.envelopes(self.instance, digest))

    def gate(self, digest: Digest, env: str) -> dict[str, Any]:
        decision: dict[str, Any] = json.loads(self.gate_json(digest, env))
        return decision

    def gate_json(self, digest: Digest, env: str) -> bytes:
        """The gate's decision as JSON bytes, computed again only when the digest has news."""
        return self._gates.decision(digest, env)

    def approve(
        self,
        digest: Digest,
        *,
        env: str,
        meaning: Meaning,
        reason: str | None,
        actor: str,
        expected_evidence_set: str | None = None,
    ) -> dict[str, Any]:
        entry = releases.approve(
            self.instance,
            digest,
            env=env,
            meaning=meaning,
            actor=actor,
            reason=reason,
            expected_evidence_set=expected_evidence_set,
        )
        return {"entry": entry.seq, "actor": entry.actor, "at": entry.at, **entry.data}

    def promote(
        self,
        digest: Digest,
        *,
        env: str,
        actor: str,
        config: NamedText | None,
        break_glass: str | None = None,
    ) -> dict[str, Any]:
        result = releases.promote(
            self.instance, digest, env=env, actor=actor, config=config, break_glass=break_glass
        )
        return {
            "promoted": True,
            "entry": result.entry.seq,
            "at": result.entry.at,
            "config": result.entry.data["config"],
            "break_glass": break_glass,
            **result.decision.to_json(),
        }

    def status(self, env: str | None) -> list[dict[str, Any]]:
        return releases.status(self.instance, env)

    def release(self, digest: Digest) -> dict[str, Any]:
        return releases.release_show(self.instance, digest).to_json()

    def verify(self, against: NamedText | None) -> dict[str, Any]:
        return ledger.verify_ledger(self.instance, against=against).to_json()

    def checkpoint(self) -> dict[str, Any]:
        cp = self.instance.ledger.latest_checkpoint()
        if cp is None:
            raise NotFoundError("the ledger is empty", hint="run `clearance init`")
        return {
            "origin": cp.origin,
            "size": cp.size,
            "root_hash": base64.b64encode(cp.root).decode(),
            "note": cp.note(),
        }

    def inclusion(self, entry: int, size: int | None) -> dict[str, Any]:
        return ledger.inclusion(self.instance, entry, size)

    def consistency(self, old: int, new: int | None) -> dict[str, Any]:
        return ledger.consistency(self.instance, old, new)

    def key(self) -> dict[str, Any]:
        key = self.instance.signer.public_key
        return {
            "keyid": self.instance.signer.keyid,
            "public_key": public_key_pem(key),
            "note_verifier_key": note_verifier_key(self.instance.origin, public_key_raw(key)),
            "origin": self.instance.origin,
        }

    def search(self, **filters: str | None) -> list[dict[str, Any]]:
        return [artifact_json(e) for e in artifacts.search(self.instance, **filters)]

    # -- identities (server administration) --------------------------------------------------

    def create_token(
        self, *, name: str, role: Role, expires: str | None, actor: str
    ) -> dict[str, Any]:
        issued = identity.create_token(
            self.instance,
            name=name,
            role=role,
            actor=actor,
            expires=identity.parse_duration(expires) if expires else None,
        )
        return {
            "token": issued.token,
            "id": issued.id,
            "name": issued.name,
            "role": issued.role.value,
            "expires_at": issued.expires_at,
        }

    def revoke_token(self, *, name: str, actor: str) -> dict[str, Any]:
        token_id = identity.revoke_token(self.instance, name=name, actor=actor)
        self.tokens_cache.forget(token_id)  # at once here; other processes within the TTL
        return {"revoked": token_id, "name": name}

    def tokens(self) -> list[dict[str, Any]]:
        return identity.list_tokens(self.instance)


def dumps(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, default=str)


def compact(value: Any) -> bytes:
    """JSON as the API sends it: UTF-8, no spaces."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()
