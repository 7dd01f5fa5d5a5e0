"""The web UI's routes: sign-in, the release list and page, signing, search and the ledger.

Every route renders HTML and every failure becomes a readable error page with the right status
(:class:`HtmlRoute`): 400 bad input, 401 signed out, 403 refused or a bad CSRF token, 404 unknown,
409 the evidence changed under the signer, 429 too many wrong passwords; never a stack trace.
Signed-out GETs redirect to ``/login``. Every POST checks the session's CSRF token before it
reads anything else, so a forged or stale form changes nothing.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse
from fastapi.routing import APIRoute
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException

from clearance.core.approvals import Meaning
from clearance.core.digests import Digest, parse_digest
from clearance.core.roles import Action, allowed
from clearance.errors import ConflictError, Error, RefusedError
from clearance.server.errors import STATUS
from clearance.usecases.accounts import Account, Authenticator, LocalAuthenticator
from clearance.usecases.releases import record_refusal
from clearance.usecases.service import LocalService
from clearance.web import views
from clearance.web.render import error_page, page
from clearance.web.session import COOKIE, LIFETIME_SECONDS, Session, Sessions, load_secret
from clearance.web.throttle import Throttle

log = logging.getLogger("clearance.web")
SIGN = "sign approval (web)"
_MAX_FIELD = 2000


class PageError(Exception):
    """A refusal or bad input the user should read as a page with this status."""

    def __init__(self, status: int, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.hint = hint


class SignInRequired(Exception):
    pass


class HtmlRoute(APIRoute):
    """Renders every failure of a web route as an HTML error page (never JSON, never a trace)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def run(request: Request) -> Response:
            try:
                return await handler(request)
            except SignInRequired:
                if request.method == "GET":
                    target = request.url.path + (
                        f"?{request.url.query}" if request.url.query else ""
                    )
                    return RedirectResponse(f"/login?next={quote(target, safe='')}", 303)
                return error_page(
                    request,
                    401,
                    "You are not signed in (or your session ended).",
                    hint="sign in again, then repeat what you were doing",
                )
            except PageError as exc:
                return error_page(request, exc.status, exc.message, hint=exc.hint)
            except Error as exc:
                status = next(s for cls, s, _ in STATUS if isinstance(exc, cls))
                text = f"{exc.where}: {exc.message}" if exc.where else exc.message
                return error_page(request, status, text, hint=exc.hint)
            except HTTPException as exc:
                return error_page(request, exc.status_code, str(exc.detail))
            except RequestValidationError as exc:
                problems = "; ".join(
                    f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg', 'invalid')}"
                    for e in exc.errors()
                )
                return error_page(request, 400, problems or "invalid request")
            except Exception:
                log.exception("web request failed: %s %s", request.method, request.url.path)
                return error_page(
                    request,
                    500,
                    "Something went wrong on the server.",
                    hint="the error is in the server's log; if you were signing, open the release "
                    "to see whether your signature was recorded before trying again",
                )

        return run


router = APIRouter(route_class=HtmlRoute, include_in_schema=False)


# -- the request's session and account -------------------------------------------------------------


@dataclass
class Web:
    """Who is asking (if anyone), their session, and a cookie to set on the response."""

    service: LocalService
    authenticator: Authenticator
    sessions: Sessions
    throttle: Throttle
    session: Session
    account: Account | None
    secure: bool
    pending: Session | None = field(default=None)

    @property
    def csrf(self) -> str:
        return self.session.csrf

    def start(self, session: Session) -> None:
        """Replace the session (sign-in, sign-out); the cookie goes out with the response."""
        self.session = session
        self.pending = session

    def set_cookie(self, response: Response) -> None:
        if self.pending is None:
            return
        response.set_cookie(
            COOKIE,
            self.sessions.encode(self.pending),
            max_age=LIFETIME_SECONDS,
            path="/",
            httponly=True,
            samesite="strict",
            secure=self.secure,
        )

    def now(self) -> datetime:
        return self.service.instance.clock.now()


def _state(request: Request) -> tuple[LocalService, Sessions, Authenticator, Throttle]:
    state = request.app.state
    svc: LocalService = state.service
    sessions: Sessions | None = getattr(state, "web_sessions", None)
    if sessions is None:
        sessions = Sessions(load_secret(svc.instance.settings.home))
        state.web_sessions = sessions
    authenticator: Authenticator | None = getattr(state, "web_authenticator", None)
    if authenticator is None:
        authenticator = LocalAuthenticator(svc.instance)
        state.web_authenticator = authenticator
    throttle: Throttle | None = getattr(state, "web_throttle", None)
    if throttle is None:
        throttle = Throttle()
        state.web_throttle = throttle
    return svc, sessions, authenticator, throttle


def web_context(request: Request) -> Web:
    svc, sessions, authenticator, throttle = _state(request)
    now = svc.instance.clock.now()
    session = sessions.decode(request.cookies.get(COOKIE), now)
    account = authenticator.find(session.email) if session and session.email else None
    web = Web(
        svc,
        authenticator,
        sessions,
        throttle,
        session or Session.anonymous(now),
        account,
        request.url.scheme == "https",
    )
    if session is None or (session.email and account is None):
        web.start(Session.anonymous(now))  # no, bad, expired or disabled: a fresh anonymous one
    request.state.web = web
    return web


Ctx = Annotated[Web, Depends(web_context)]


def reader(web: Ctx) -> Web:
    if web.account is None:
        raise SignInRequired
    return web


Reader = Annotated[Web, Depends(reader)]


async def checked_form(request: Request, web: Ctx) -> FormData:
    """The posted form, only if it carries this session's CSRF token (else 403, nothing done)."""
    form = await request.form(max_files=0, max_fields=16, max_part_size=64 * 1024)
    token = form.get("csrf")
    if not web.session.csrf_matches(token if isinstance(token, str) else None):
        raise PageError(
            403,
            "This form is missing its security token or it does not match your session, "
            "so nothing was done.",
            hint="reload the page and submit the form again",
        )
    return form


Form = Annotated[FormData, Depends(checked_form)]


def field_of(form: FormData, name: str, *, required: bool = True, limit: int = _MAX_FIELD) -> str:
    value = form.get(name)
    text = value.strip() if isinstance(value, str) else ""
    if required and not text:
        raise PageError(400, f"the form field {name!r} is required")
    if len(text) > limit:
        raise PageError(400, f"the form field {name!r} is longer than {limit} characters")
    return text


def digest_param(value: str) -> Digest:
    return parse_digest(value, where="release")


def safe_next(target: str | None) -> str:
    """Only a path on this site (no scheme, no host, no ``//``): no open redirect."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return "/"
    return target if re.fullmatch(r"[A-Za-z0-9/._~%:?&=#+-]{1,2000}", target) else "/"


# -- sign-in ---------------------------------------------------------------------------------------


@router.get("/login")
def login_page(request: Request, web: Ctx, next: str | None = None) -> Response:
    if web.account is not None:
        return RedirectResponse(safe_next(next), 303)
    return page(request, "login.html", next=safe_next(next), email="", error=None)


@router.post("/login")
def login(request: Request, web: Ctx, form: Form) -> Response:
    email = field_of(form, "email", limit=320).lower()
    password = form.get("password")
    password = password if isinstance(password, str) else ""
    target = safe_next(field_of(form, "next", required=False))
    now = time.monotonic()
    wait = web.throttle.wait(email, now)
    if wait:
        raise PageError(
            429,
            "Too many wrong passwords for this account.",
            hint=f"try again in {wait // 60 + 1} minutes, or ask an administrator",
        )
    account = web.authenticator.verify(email, password)
    if account is None:
        web.throttle.failed(email, now)
        return page(
            request,
            "login.html",
            status=401,
            next=target,
            email=email,
            error="The email or password is not correct.",
        )
    web.throttle.succeeded(email)
    web.account = account
    web.start(Session.signed_in(account.email, web.now()))
    response = RedirectResponse(target, 303)
    web.set_cookie(response)
    return response


@router.get("/logout")
def logout_page(request: Request, web: Reader) -> Response:
    return page(request, "logout.html")


@router.post("/logout")
def logout(request: Request, web: Ctx, form: Form) -> Response:
    web.account = None
    web.start(Session.anonymous(web.now()))
    response = RedirectResponse("/login", 303)
    web.set_cookie(response)
    return response


# -- releases --------------------------------------------------------------------------------------


@router.get("/")
def release_list(request: Request, web: Reader) -> Response:
    rows, total = views.release_rows(web.service)
    return page(request, "releases.html", rows=rows, total=total, limit=views.LIST_LIMIT)


def _release(
    request: Request,
    web: Web,
    digest: Digest,
    env: str | None,
    *,
    status: int = 200,
    error: str | None = None,
    signed: int | None = None,
    values: dict[str, str] | None = None,
) -> Response:
    view = views.release_page(web.service, digest, env)
    account = web.account
    can_sign = account is not None and allowed(account.role, Action.APPROVE)
    done = next((a for a in view.approvals if a.entry == signed), None) if signed else None
    return page(
        request,
        "release.html",
        status=status,
        view=view,
        can_sign=can_sign,
        meanings=views.MEANINGS,
        error=error,
        signed=done,
        values=values or {},
    )


@router.get("/releases/{digest:path}")
def release(
    request: Request, web: Reader, digest: str, env: str | None = None, signed: int | None = None
) -> Response:
    if env is not None and len(env) > 64:
        raise PageError(400, "the environment name is longer than 64 characters")
    return _release(request, web, digest_param(digest), env, signed=signed)


@router.post("/releases/{digest}/approvals")
def sign(request: Request, web: Ctx, form: Form, digest: str) -> Response:
    """Sign an approval: re-authenticate, check the evidence shown is current, then approve."""
    account = reader(web).account
    assert account is not None
    subject = digest_param(digest)
    svc = web.service
    if not allowed(account.role, Action.APPROVE):
        reason = f"role {account.role.value} may not {Action.APPROVE.value}"
        record_refusal(
            svc.instance, actor=account.email, action=SIGN, subject=subject, reason=reason
        )
        raise PageError(403, f"Refused: {reason}. Nothing was signed.")
    env = field_of(form, "env", limit=64)
    try:
        meaning = Meaning(field_of(form, "meaning", limit=32))
    except ValueError:
        raise PageError(400, "the meaning must be review, approval or responsibility") from None
    reason_text = field_of(form, "reason", required=False) or None
    shown = field_of(form, "evidence_set", limit=100)
    password = form.get("password")
    password = password if isinstance(password, str) else ""
    values = {"env": env, "meaning": meaning.value, "reason": reason_text or ""}

    def refuse(status: int, message: str, *, record: str | None = None) -> Response:
        if record is not None:
            record_refusal(
                svc.instance, actor=account.email, action=SIGN, subject=subject, reason=record
            )
        return _release(request, web, subject, env, status=status, error=message, values=values)

    now = time.monotonic()
    wait = web.throttle.wait(account.email, now)
    if wait:
        raise PageError(
            429,
            "Too many wrong passwords for this account; nothing was signed.",
            hint=f"try again in {wait // 60 + 1} minutes",
        )
    if web.authenticator.verify(account.email, password) is None:
        web.throttle.failed(account.email, now)
        return refuse(
            403,
            "Refused: the password you re-entered is not correct. Nothing was signed.",
            record="re-authentication at signing failed",
        )
    web.throttle.succeeded(account.email)
    current = svc.gate(subject, env)["evidence_set"]
    if current != shown:
        return refuse(
            409,
            f"The evidence for {env} changed since the page was shown (it is now {current}, "
            f"you were shown {shown or 'nothing'}). Nothing was signed: review it again.",
        )
    try:
        signed = svc.approve(
            subject,
            env=env,
            meaning=meaning,
            reason=reason_text,
            actor=account.email,
            expected_evidence_set=shown,
        )
    except ConflictError as exc:
        return refuse(409, f"{exc.message[:1].upper()}{exc.message[1:]}: review it again.")
    except RefusedError as exc:
        return refuse(403, f"Refused: {exc.message}. Nothing was signed.", record=exc.message)
    return RedirectResponse(
        f"/releases/{subject}?env={quote(env)}&signed={signed['entry']}#approvals", 303
    )


# -- search and the ledger -------------------------------------------------------------------------


@router.get("/search")
def search(request: Request, web: Reader) -> Response:
    filters = {}
    for name in views.SEARCH_FIELDS:
        value = request.query_params.get(name, "").strip()
        if len(value) > 100:
            raise PageError(400, f"the search field {name!r} is longer than 100 characters")
        filters[name] = value
    searched = any(filters.values())
    results = views.search(web.service, filters) if searched else []
    return page(request, "search.html", filters=filters, searched=searched, results=results)


def _ledger(request: Request, web: Web, verification: dict[str, Any] | None) -> Response:
    svc = web.service
    checkpoint, problem = views.latest_checkpoint(svc)
    return page(
        request,
        "ledger.html",
        checkpoint=checkpoint,
        note=svc.checkpoint()["note"] if checkpoint is not None else None,
        problem=problem,
        key=svc.key(),
        verification=verification,
    )


@router.get("/ledger")
def ledger(request: Request, web: Reader) -> Response:
    return _ledger(request, web, None)


@router.post("/ledger/verify")
def verify(request: Request, web: Ctx, form: Form) -> Response:
    reader(web)
    return _ledger(request, web, web.service.verify(None))
