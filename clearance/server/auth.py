"""Who is calling, and may they: bearer tokens mapped to principals, checked per action.

Every refusal (no permission for the role) is recorded in the ledger before the 403 goes out.
"""

from __future__ import annotations

from collections.abc import Callable

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from clearance.core.roles import Action, allowed
from clearance.usecases.identity import Principal, authenticate
from clearance.usecases.releases import record_refusal
from clearance.usecases.service import LocalService

bearer = HTTPBearer(auto_error=False, description="An API token from `clearance token create`.")


def service(request: Request) -> LocalService:
    svc: LocalService = request.app.state.service
    return svc


def principal(
    request: Request,
    credentials: HTTPAuthorizationCredentials | None = Depends(bearer),  # noqa: B008
) -> Principal:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise HTTPException(
            401,
            "an API token is required (Authorization: Bearer <token>)",
            headers={"WWW-Authenticate": "Bearer"},
        )
    svc = service(request)
    found = authenticate(svc.instance, credentials.credentials, svc.instance.clock.now())
    if found is None:
        raise HTTPException(
            401,
            "the API token is unknown, expired or revoked",
            headers={"WWW-Authenticate": "Bearer"},
        )
    request.state.principal = found
    return found


def requires(action: Action) -> Callable[..., Principal]:
    def check(request: Request, who: Principal = Depends(principal)) -> Principal:  # noqa: B008
        if not allowed(who.role, action):
            reason = f"role {who.role.value} may not {action.value}"
            record_refusal(
                service(request).instance,
                actor=who.name,
                action=f"{request.method} {request.url.path}",
                subject=request.path_params.get("digest"),
                reason=reason,
            )
            raise HTTPException(403, reason)
        return who

    return check
