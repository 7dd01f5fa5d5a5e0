"""The CLI's server mode: the same operations as :class:`LocalService`, sent to ``clearance serve``.

Selected when ``CLEARANCE_URL`` and ``CLEARANCE_TOKEN`` are set. The server answers with the same
JSON shapes the local service returns; its errors (one JSON shape) come back as the same
:class:`clearance.Error` subclasses, so output and exit codes match local mode.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

import httpx

from clearance.core.approvals import Meaning
from clearance.core.digests import Digest
from clearance.core.evidence import ReportFormat
from clearance.core.gates import Decision
from clearance.errors import (
    ConflictError,
    Error,
    EvidenceFormatError,
    InfrastructureError,
    InputError,
    NotFoundError,
    RefusedError,
)
from clearance.files import NamedText, reading
from clearance.usecases.artifacts import BuildInfo, Source
from clearance.usecases.releases import GateBlocked

ERRORS: dict[str, type[Error]] = {
    "input": InputError,
    "not_found": NotFoundError,
    "conflict": ConflictError,
    "evidence_format": EvidenceFormatError,
    "refused": RefusedError,
    "unauthorized": RefusedError,
    "forbidden": RefusedError,
    "infrastructure": InfrastructureError,
    "validation": InputError,
    "too_large": InputError,
}


class RemoteService:
    def __init__(
        self,
        url: str,
        token: str,
        *,
        timeout: float = 60.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self.http = httpx.Client(
            base_url=self.url + "/api/v1",
            headers={"Authorization": f"Bearer {token}", "User-Agent": "clearance-cli"},
            timeout=timeout,
            transport=transport,
        )

    def close(self) -> None:
        self.http.close()

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise InfrastructureError(f"cannot reach the server: {exc}", where=self.url) from exc
        if response.status_code < 400:
            return response.json()
        try:
            body = response.json()
            error = body["error"]
        except (ValueError, KeyError, TypeError):
            raise InfrastructureError(
                f"server answered {response.status_code} without an error body", where=self.url
            ) from None
        if response.status_code == 409 and "decision" in error:
            raise GateBlocked(Decision.from_json(error["decision"]))
        kind = ERRORS.get(error.get("type", ""), InfrastructureError)
        raise kind(error.get("message", "error"), where=error.get("where"), hint=error.get("hint"))

    def register(
        self,
        *,
        build: BuildInfo,
        source: Source,
        actor: str,
        path: Path | None,
        digest: Digest | None,
        name: str | None,
    ) -> dict[str, Any]:
        size = None
        if path is not None:  # build once: the bytes stay in the CI's artifact store
            from clearance.store.blobs import hash_file

            digest, size = hash_file(path)
            name = name or path.name
        change = None
        if source.change is not None:
            change = {**asdict(source.change), "files": [asdict(f) for f in source.change.files]}
        body = {
            "digest": digest,
            "name": name,
            "size": size,
            "commit": source.commit,
            "branch": build.branch,
            "build_number": build.build_number,
            "builder": build.builder,
            "change_request": build.change_request,
            "repository": source.repository,
            "author": source.author,
            "dependencies": list(source.dependencies),
            "change": change,
            "policy": source.policy_text,
            "policy_name": source.policy_name,
        }
        return dict(self._call("POST", "/artifacts", json=body))

    def artifact(self, digest: Digest) -> dict[str, Any]:
        return dict(self._call("GET", f"/artifacts/{digest}"))

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
        data = {"type": evidence_type}
        if fmt is not None:
            data["format"] = fmt.value
        with reading(report) as f:
            files = {"report": (filename or report.name, f, "application/octet-stream")}
            return dict(self._call("POST", f"/artifacts/{digest}/evidence", data=data, files=files))

    def evidence(self, digest: Digest) -> list[dict[str, Any]]:
        return list(self._call("GET", f"/artifacts/{digest}/evidence"))

    def attestations(self, digest: Digest) -> list[dict[str, Any]]:
        return list(self._call("GET", f"/artifacts/{digest}/attestations"))

    def gate(self, digest: Digest, env: str) -> dict[str, Any]:
        return dict(self._call("GET", f"/artifacts/{digest}/gate", params={"env": env}))

    def approve(
        self, digest: Digest, *, env: str, meaning: Meaning, reason: str | None, actor: str
    ) -> dict[str, Any]:
        body = {"env": env, "meaning": meaning.value, "reason": reason}
        return dict(self._call("POST", f"/artifacts/{digest}/approvals", json=body))

    def promote(
        self,
        digest: Digest,
        *,
        env: str,
        actor: str,
        config: NamedText | None,
        break_glass: str | None = None,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"env": env}
        if break_glass is not None:
            body["break_glass"] = True
            body["reason"] = break_glass
        if config is not None:
            body["config"] = config.text
            body["config_name"] = Path(config.name).name
        return dict(self._call("POST", f"/artifacts/{digest}/promotions", json=body))

    def status(self, env: str | None) -> list[dict[str, Any]]:
        return list(self._call("GET", "/status", params={"env": env} if env else None))

    def release(self, digest: Digest) -> dict[str, Any]:
        return dict(self._call("GET", f"/artifacts/{digest}/release"))

    def verify(self, against: NamedText | None) -> dict[str, Any]:
        if against is None:
            return dict(self._call("POST", "/ledger/verify", json={}))
        body = {"checkpoint": against.text, "name": Path(against.name).name}
        return dict(self._call("POST", "/ledger/verify", json=body))

    def checkpoint(self) -> dict[str, Any]:
        return dict(self._call("GET", "/ledger/checkpoint"))

    def inclusion(self, entry: int, size: int | None) -> dict[str, Any]:
        params = {"size": size} if size is not None else None
        return dict(self._call("GET", f"/ledger/proofs/inclusion/{entry}", params=params))

    def consistency(self, old: int, new: int | None) -> dict[str, Any]:
        params: dict[str, int] = {"old": old}
        if new is not None:
            params["new"] = new
        return dict(self._call("GET", "/ledger/proofs/consistency", params=params))

    def key(self) -> dict[str, Any]:
        return dict(self._call("GET", "/key"))

    def search(self, **filters: str | None) -> list[dict[str, Any]]:
        params = {k: v for k, v in filters.items() if v}
        return list(self._call("GET", "/search", params=params))

    def create_token(
        self, *, name: str, role: Any, expires: str | None, actor: str
    ) -> dict[str, Any]:
        body = {"name": name, "role": str(role), "expires": expires}
        return dict(self._call("POST", "/tokens", json=body))

    def revoke_token(self, *, name: str, actor: str) -> dict[str, Any]:
        return dict(self._call("DELETE", f"/tokens/{name}"))

    def tokens(self) -> list[dict[str, Any]]:
        return list(self._call("GET", "/tokens"))
