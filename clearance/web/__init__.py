"""The web UI: server-rendered pages (Jinja2, plain CSS, a few lines of script) over the service.

::

    session.py   signed session cookies, CSRF tokens, the web secret under CLEARANCE_HOME
    throttle.py  slowing password guessing per account
    views.py     what each page shows, assembled from LocalService calls
    render.py    Jinja2 environment, security headers, the HTML error page
    routes.py    /login /logout / /releases/{digest} /search /ledger, signing approvals
    templates/   one template per page, all extending base.html
    static/      clearance.css, clearance.js

Pages call the same :class:`~clearance.usecases.service.LocalService` operations as the CLI and
the API; people sign in with accounts from :mod:`clearance.usecases.accounts`.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from clearance.web.render import STATIC
from clearance.web.routes import router


def install(app: FastAPI) -> None:
    """Add the pages and ``/static`` to ``app`` (whose ``state.service`` is a LocalService)."""
    app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
