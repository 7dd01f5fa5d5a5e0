"""The JSON API, ``/api/v1``: one route per operation of :class:`LocalService`.

Request bodies are Pydantic models that refuse unknown fields; the actor is always the caller's
token, never a field a client can set.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, HTTPException, Query, Response, UploadFile
from fastapi import Path as PathParam
from pydantic import BaseModel, ConfigDict, Field

from clearance.core.approvals import Meaning
from clearance.core.classify import ChangeSet, FileChange
from clearance.core.digests import Digest, parse_digest
from clearance.core.evidence import ReportFormat
from clearance.core.roles import Action, Role, allowed
from clearance.files import NamedText
from clearance.server.auth import current_service, requires
from clearance.server.errors import RESPONSES
from clearance.usecases.artifacts import BuildInfo, Source
from clearance.usecases.identity import Principal
from clearance.usecases.releases import record_refusal
from clearance.usecases.service import LocalService

router = APIRouter(prefix="/api/v1", responses=RESPONSES)
Svc = Annotated[LocalService, Depends(current_service)]
DIGEST = r"^sha256:[0-9a-f]{64}$"
DigestPath = Annotated[str, PathParam(pattern=DIGEST, description="sha256:<64 hex digits>")]
_SAFE_NAME = re.compile(r"^[A-Za-z0-9._ @+-]{1,200}$")


Reader = Annotated[Principal, Depends(requires(Action.READ))]
Registrar = Annotated[Principal, Depends(requires(Action.REGISTER))]
Attester = Annotated[Principal, Depends(requires(Action.ATTEST))]
Approver = Annotated[Principal, Depends(requires(Action.APPROVE))]
Promoter = Annotated[Principal, Depends(requires(Action.PROMOTE))]
Admin = Annotated[Principal, Depends(requires(Action.MANAGE_TOKENS))]


def digest_of(value: str) -> Digest:
    return parse_digest(value, where="digest")


def safe_name(name: str | None, default: str) -> str:
    """A file name for display only; anything that looks like a path is refused."""
    name = name or default
    if not _SAFE_NAME.match(name) or name in (".", "..") or ".." in name:
        raise HTTPException(400, f"file name {name!r} is not a plain file name")
    return name


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class FileModel(Strict):
    path: str = Field(max_length=4096)
    added: int | None = None
    removed: int | None = None


class ChangeModel(Strict):
    base: str = Field(max_length=64)
    head: str = Field(max_length=64)
    author: str = Field(max_length=320)
    message: str = Field(max_length=100_000)
    files: list[FileModel] = Field(max_length=200_000)


class RegisterRequest(Strict):
    digest: str = Field(pattern=DIGEST)
    name: str | None = Field(None, max_length=300)
    size: int | None = Field(None, ge=0)
    commit: str = Field(pattern=r"^[0-9a-f]{7,64}$")
    branch: str | None = Field(None, max_length=300)
    build_number: str | None = Field(None, max_length=100)
    builder: str = Field("unknown", max_length=300)
    change_request: str | None = Field(None, max_length=100)
    repository: str | None = Field(None, max_length=2000)
    author: str | None = Field(None, max_length=320)
    dependencies: list[dict[str, Any]] = Field(default_factory=list, max_length=10_000)
    change: ChangeModel | None = None
    policy: str | None = Field(None, max_length=1 << 20)
    policy_name: str = Field("clearance.yaml", min_length=1, max_length=200)


class ApproveRequest(Strict):
    env: str = Field(max_length=64)
    meaning: Annotated[Meaning, Field(strict=False)] = Meaning.APPROVAL
    reason: str | None = Field(None, max_length=2000)


class PromoteRequest(Strict):
    env: str = Field(max_length=64)
    break_glass: bool = False
    reason: str | None = Field(None, max_length=2000)
    config: str | None = Field(None, max_length=4 << 20)
    config_name: str | None = Field(None, max_length=200)


class VerifyRequest(Strict):
    checkpoint: str | None = Field(None, max_length=64 * 1024)
    name: str | None = Field(None, max_length=200)


class TokenRequest(Strict):
    name: str = Field(max_length=128)
    role: Annotated[Role, Field(strict=False)]
    expires: str | None = Field(None, max_length=16)


@router.get("/key", summary="The instance's public key (PEM, DSSE key id, signed-note key)")
def key(svc: Svc) -> dict[str, Any]:
    return svc.key()


@router.post("/artifacts", status_code=200, summary="Register an artifact by digest")
def register(caller: Registrar, body: RegisterRequest, svc: Svc) -> dict[str, Any]:
    change = None
    if body.change is not None:
        c = body.change
        change = ChangeSet(
            c.base,
            c.head,
            c.author,
            c.message,
            tuple(FileChange(f.path, f.added, f.removed) for f in c.files),
        )
    source = Source(
        body.commit,
        body.repository,
        body.author,
        tuple(body.dependencies),
        change,
        body.policy,
        safe_name(body.policy_name, "clearance.yaml"),
    )
    build = BuildInfo(
        body.commit, body.branch, body.build_number, body.builder, body.change_request
    )
    return svc.register(
        build=build,
        source=source,
        actor=caller.name,
        path=None,
        digest=digest_of(body.digest),
        name=body.name,
        size=body.size,
    )


@router.get("/artifacts/{digest}", summary="An artifact's recorded provenance")
def artifact(
    caller: Reader,
    digest: DigestPath,
    svc: Svc,
) -> dict[str, Any]:
    return svc.artifact(digest_of(digest))


@router.post("/artifacts/{digest}/evidence", summary="Attest a report (multipart upload)")
def attest(
    caller: Attester,
    digest: DigestPath,
    svc: Svc,
    report: Annotated[UploadFile, File(description="JUnit, SARIF, CycloneDX, pip-audit or JSON")],
    type: Annotated[str, Form(max_length=64)],
    format: Annotated[ReportFormat | None, Form()] = None,
) -> dict[str, Any]:
    name = safe_name(report.filename, "report")
    with tempfile.NamedTemporaryFile(prefix="clearance-upload-") as spool:
        shutil.copyfileobj(report.file, spool, 1 << 20)
        spool.flush()
        return svc.attest(
            digest_of(digest), type, Path(spool.name), actor=caller.name, fmt=format, filename=name
        )


@router.get("/artifacts/{digest}/evidence", summary="Evidence recorded for an artifact")
def evidence(
    caller: Reader,
    digest: DigestPath,
    svc: Svc,
) -> list[dict[str, Any]]:
    return svc.evidence(digest_of(digest))


@router.get("/artifacts/{digest}/attestations", summary="The artifact's DSSE envelopes")
def attestations(caller: Reader, digest: DigestPath, svc: Svc) -> list[dict[str, Any]]:
    return svc.attestations(digest_of(digest))


@router.get(
    "/artifacts/{digest}/gate",
    summary="May the artifact go to env? Every control",
    response_model=dict[str, Any],
)
def gate(
    caller: Reader, digest: DigestPath, svc: Svc, env: Annotated[str, Query(max_length=64)]
) -> Response:
    # The hottest route: the service keeps the decision encoded until the digest has news.
    return Response(svc.gate_json(digest_of(digest), env), media_type="application/json")


@router.post("/artifacts/{digest}/approvals", summary="Sign an approval over the evidence")
def approve(caller: Approver, digest: DigestPath, body: ApproveRequest, svc: Svc) -> dict[str, Any]:
    return svc.approve(
        digest_of(digest), env=body.env, meaning=body.meaning, reason=body.reason, actor=caller.name
    )


@router.post("/artifacts/{digest}/promotions", summary="Promote (409 with the gate if blocked)")
def promote(caller: Promoter, digest: DigestPath, body: PromoteRequest, svc: Svc) -> dict[str, Any]:
    config = None
    if body.config is not None:
        config = NamedText(safe_name(body.config_name, "config"), body.config)
    reason = None
    if body.break_glass:
        if not allowed(caller.role, Action.BREAK_GLASS):
            message = f"role {caller.role.value} may not {Action.BREAK_GLASS.value}"
            record_refusal(
                svc.instance,
                actor=caller.name,
                action="POST promotions (break-glass)",
                subject=digest,
                reason=message,
            )
            raise HTTPException(403, message)
        reason = body.reason or ""
    return svc.promote(
        digest_of(digest), env=body.env, actor=caller.name, config=config, break_glass=reason
    )


@router.get("/artifacts/{digest}/release", summary="The definition of done")
def release(
    caller: Reader,
    digest: DigestPath,
    svc: Svc,
) -> dict[str, Any]:
    return svc.release(digest_of(digest))


@router.get("/status", summary="Which digest runs where")
def status(
    caller: Reader, svc: Svc, env: Annotated[str | None, Query(max_length=64)] = None
) -> list[dict[str, Any]]:
    return svc.status(env)


@router.get("/search", summary="Find releases by change request, version, tenant or date")
def search(
    caller: Reader,
    svc: Svc,
    change_request: Annotated[str | None, Query(max_length=100)] = None,
    version: Annotated[str | None, Query(max_length=100)] = None,
    name: Annotated[str | None, Query(max_length=300)] = None,
    tenant: Annotated[str | None, Query(max_length=100)] = None,
    since: Annotated[str | None, Query(max_length=40)] = None,
    until: Annotated[str | None, Query(max_length=40)] = None,
) -> list[dict[str, Any]]:
    return svc.search(
        change_request=change_request,
        version=version,
        name=name,
        tenant=tenant,
        since=since,
        until=until,
    )


@router.get("/ledger/checkpoint", summary="The latest signed checkpoint")
def checkpoint(
    caller: Reader,
    svc: Svc,
) -> dict[str, Any]:
    return svc.checkpoint()


@router.post("/ledger/verify", summary="Verify the whole ledger (optionally against a witness)")
def verify(
    caller: Reader,
    body: VerifyRequest,
    svc: Svc,
) -> dict[str, Any]:
    against = None
    if body.checkpoint is not None:
        against = NamedText(safe_name(body.name, "checkpoint"), body.checkpoint)
    return svc.verify(against)


@router.get("/ledger/proofs/inclusion/{entry}", summary="RFC 9162 inclusion proof")
def inclusion(
    caller: Reader, entry: int, svc: Svc, size: Annotated[int | None, Query(ge=1)] = None
) -> dict[str, Any]:
    return svc.inclusion(entry, size)


@router.get("/ledger/proofs/consistency", summary="RFC 9162 consistency proof")
def consistency(
    caller: Reader,
    svc: Svc,
    old: Annotated[int, Query(ge=0)],
    new: Annotated[int | None, Query(ge=0)] = None,
) -> dict[str, Any]:
    return svc.consistency(old, new)


@router.post("/tokens", summary="Create an API token (shown once)")
def create_token(caller: Admin, body: TokenRequest, svc: Svc) -> dict[str, Any]:
    return svc.create_token(name=body.name, role=body.role, expires=body.expires, actor=caller.name)


@router.get("/tokens", summary="List API tokens (never the tokens themselves)")
def tokens(
    caller: Admin,
    svc: Svc,
) -> list[dict[str, Any]]:
    return svc.tokens()


@router.delete("/tokens/{name}", summary="Revoke an API token")
def revoke_token(caller: Admin, name: str, svc: Svc) -> dict[str, Any]:
    return svc.revoke_token(name=name, actor=caller.name)
