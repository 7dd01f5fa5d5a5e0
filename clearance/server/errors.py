"""One JSON shape for every error the API returns, and the HTTP status of each kind.

``{"error": {"type": ..., "message": ..., "where": ..., "hint": ...}}``; a blocked promotion adds
``"decision"`` (the gate's answer). A test locks this shape.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from clearance.errors import (
    ConflictError,
    Error,
    EvidenceFormatError,
    InputError,
    NotFoundError,
    RefusedError,
)
from clearance.usecases.releases import GateBlocked, record_refusal

#: Most specific first.
STATUS: list[tuple[type[Error], int, str]] = [
    (NotFoundError, 404, "not_found"),
    (ConflictError, 409, "conflict"),
    (EvidenceFormatError, 422, "evidence_format"),
    (InputError, 400, "input"),
    (RefusedError, 403, "refused"),
    (Error, 503, "infrastructure"),
]
HTTP_TYPES = {
    400: "input",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "too_large",
    415: "input",
    422: "validation",
}


class ErrorDetail(BaseModel):
    type: str
    message: str
    where: str | None = None
    hint: str | None = None
    decision: dict[str, Any] | None = None


class ErrorBody(BaseModel):
    """Every error response: ``{"error": {...}}``."""

    error: ErrorDetail


#: Documented on every route, so clients (and schemathesis) know the error shape.
RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody, "description": text}
    for code, text in [
        (400, "bad input"),
        (401, "no valid API token"),
        (403, "refused: role or separation of duties"),
        (404, "unknown digest or entry"),
        (409, "conflict, or a promotion the gate blocked (with the decision)"),
        (413, "body too large"),
        (422, "malformed request or report"),
        (503, "infrastructure failure"),
    ]
}


def error_body(
    kind: str, message: str, where: str | None = None, hint: str | None = None, **extra: Any
) -> dict[str, Any]:
    return {"error": {"type": kind, "message": message, "where": where, "hint": hint, **extra}}


def install(app: FastAPI) -> None:
    @app.exception_handler(GateBlocked)
    async def gate_blocked(request: Request, exc: GateBlocked) -> JSONResponse:
        body = error_body("refused", exc.message, decision=exc.decision.to_json())
        return JSONResponse(body, status_code=409)

    @app.exception_handler(Error)
    async def clearance_error(request: Request, exc: Error) -> JSONResponse:
        status, kind = next((s, k) for cls, s, k in STATUS if isinstance(exc, cls))
        principal = getattr(request.state, "principal", None)
        if isinstance(exc, RefusedError) and principal is not None:
            service = request.app.state.service
            await run_in_threadpool(  # an append waits for the ledger lock: not on the loop
                record_refusal,
                service.instance,
                actor=principal.name,
                action=f"{request.method} {request.url.path}",
                subject=request.path_params.get("digest"),
                reason=exc.message,
            )
        return JSONResponse(error_body(kind, exc.message, exc.where, exc.hint), status_code=status)

    @app.exception_handler(RequestValidationError)
    async def validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = []
        for err in exc.errors():
            field = ".".join(str(p) for p in err.get("loc", ()) if p != "body")
            problems.append(f"{field}: {err.get('msg', 'invalid')}")
        return JSONResponse(
            error_body("validation", "; ".join(problems) or "invalid request"), status_code=422
        )

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        kind = HTTP_TYPES.get(exc.status_code, "error")
        return JSONResponse(
            error_body(kind, str(exc.detail)),
            status_code=exc.status_code,
            headers=getattr(exc, "headers", None),
        )
