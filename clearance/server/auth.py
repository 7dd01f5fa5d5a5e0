"""Who is calling, and may they: bearer tokens mapped to principals, checked per action.

Tokens are looked up through the service's :class:`~clearance.usecases.identity.TokenCache`: a
token this process checked less than a second ago costs no database read (and no thread
hand-off); a revoked one is refused at once by the process that revoked it, and within the
cache's TTL by the others. Every refusal (no permission for the role) is recorded in the ledger
before the 403 goes out.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from clearance.core.roles import Action, allowed
from clearance.usecases.identity import Principal
from clearance.usecases.releases import record_refusal
from clearance.usecases.service import LocalService

bearer = HTTPBearer(auto_error=False, description="An API token from `clearance token create`.")


def service(request: Request) -> LocalService:
    svc: LocalService = request.app.state.service
    return svc


async def current_service(request: Request) -> LocalService:
    """The route dependency: async, so it costs no threadpool hand-off (it does no I/O)."""
    return service(request)


async def principal(
    request: Request,
    credentials: HTTPAuthorizationCredentials | None = Depends(bearer),  # noqa: B008
) -> Principal:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise HTTPException(
            401,
            "an API token is required (Authorization: Bearer <token>)",
            headers={"WWW-Authenticate": "Bearer"},
        )
    tokens = service(request).tokens_cache
    token, now = credentials.credentials, tokens.instance.clock.now()
    found = tokens.cached(token, now)  # async: a fresh cache hit needs no thread
    if found is None:
        found = await run_in_threadpool(tokens.authenticate, token, now)
    if found is None:
        raise HTTPException(
            401,
            "the API token is unknown, expired or revoked",
            headers={"WWW-Authenticate": "Bearer"},
        )
    request.state.principal = found
    return found


def requires(action: Action) -> Callable[..., Awaitable[Principal]]:
    async def check(
        request: Request,
        who: Principal = Depends(principal),  # noqa: B008
    ) -> Principal:
        # async: the common (allowed) path does no I/O, so it needs no threadpool hand-off.
        if not allowed(who.role, action):
            reason = f"role {who.role.value} may not {action.value}"
            await run_in_threadpool(
                record_refusal,
                service(request).instance,
                actor=who.name,
                action=f"{request.method} {request.url.path}",
                subject=request.path_params.get("digest"),
                reason=reason,
            )
            raise HTTPException(403, reason)
        return who

    return check
