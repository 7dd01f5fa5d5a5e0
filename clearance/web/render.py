"""Turning templates into responses: the Jinja2 environment, its filters, and the error page.

Autoescaping is on for every template. Every page goes out with headers that keep it in its own
origin: a Content-Security-Policy allowing only our own scripts, styles and form targets, no
framing, no referrer, no caching (pages show who signed what and may be confidential).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup, escape

from clearance import __version__
from clearance.web import views

TEMPLATES = Path(__file__).parent / "templates"
STATIC = Path(__file__).parent / "static"

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}

_BACKTICKED = re.compile(r"`([^`]+)`")


def code_spans(text: str | None) -> Markup:
    """Escape ``text``, then show its `backticked` parts (commands, options) as code."""
    return Markup(_BACKTICKED.sub(r"<code>\1</code>", str(escape(text or ""))))  # noqa: S704


env = Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)
env.filters["code_spans"] = code_spans
env.filters["short_time"] = views.short_time
env.filters["short_digest"] = views.short_digest
env.globals["version"] = __version__


def page(
    request: Request,
    template: str,
    *,
    status: int = 200,
    headers: dict[str, str] | None = None,
    **context: Any,
) -> HTMLResponse:
    """Render ``template`` with the signed-in account, the CSRF token and ``context``."""
    web = getattr(request.state, "web", None)
    html = env.get_template(template).render(
        account=getattr(web, "account", None),
        csrf=getattr(web, "csrf", ""),
        path=request.url.path,
        **context,
    )
    response = HTMLResponse(
        html, status_code=status, headers={**SECURITY_HEADERS, **(headers or {})}
    )
    cookie = getattr(web, "set_cookie", None)
    if cookie is not None:
        cookie(response)
    return response


TITLES = {
    400: "Bad request",
    401: "Please sign in",
    403: "Refused",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    413: "Too large",
    422: "Bad request",
    429: "Too many attempts",
    500: "Something went wrong",
    503: "Service unavailable",
}


def error_page(
    request: Request,
    status: int,
    message: str,
    *,
    hint: str | None = None,
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    """A readable page naming what went wrong and what to do; never a stack trace."""
    return page(
        request,
        "error.html",
        status=status,
        headers=headers,
        title=TITLES.get(status, "Error"),
        status_code=status,
        message=message,
        hint=hint,
    )
