"""The server's identities: API tokens with a role, shown once, kept only as a hash.

Creating and revoking a token are ledger records (who did it, for whom, which role; never the
token). ``authenticate`` maps a presented token to a :class:`Principal`, refusing revoked and
expired ones. A server process keeps what it learnt in a :class:`TokenCache` for at most
:data:`TOKEN_CACHE_SECONDS`: a token revoked through that process stops working at once, one
revoked through another process (or the CLI) within that time.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select

from clearance.clock import rfc3339
from clearance.core.roles import Role
from clearance.errors import ConflictError, InputError, NotFoundError
from clearance.store.tables import api_tokens
from clearance.usecases.instance import Instance

ISSUED = "token.created"
REVOKED = "token.revoked"
PREFIX = "clr_"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9@._+-]{0,127}$")
_DURATION = re.compile(r"^(\d+)([dhm])$")


@dataclass(frozen=True)
class Principal:
    """Who is calling: the token's name is the actor recorded in the ledger."""

    name: str
    role: Role
    token_id: str


@dataclass(frozen=True)
class IssuedToken:
    token: str
    id: str
    name: str
    role: Role
    expires_at: str | None


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def parse_duration(text: str) -> timedelta:
    match = _DURATION.match(text.strip())
    if not match:
        raise InputError(f"--expires {text!r} is not a duration like 90d, 12h or 30m")
    n, unit = int(match.group(1)), match.group(2)
    if n == 0:
        raise InputError(f"--expires {text!r} must be longer than zero")
    return {"d": timedelta(days=n), "h": timedelta(hours=n), "m": timedelta(minutes=n)}[unit]


def create_token(
    instance: Instance, *, name: str, role: Role, actor: str, expires: timedelta | None = None
) -> IssuedToken:
    if not _NAME.match(name):
        raise InputError(f"token name {name!r} must be a word or an email address")
    token = PREFIX + secrets.token_urlsafe(32)
    token_id = secrets.token_hex(8)
    now = instance.clock.now()
    expires_at = rfc3339(now + expires) if expires is not None else None
    with instance.ledger.appending() as appender:
        cursor = appender.raw.cursor()
        try:
            cursor.execute(
                instance.db.sql("SELECT id FROM api_tokens WHERE name = ? AND revoked_at IS NULL"),
                (name,),
            )
            if cursor.fetchone() is not None:
                raise ConflictError(
                    f"an active token named {name!r} exists", hint="revoke it first"
                )
            cursor.execute(
                instance.db.sql(
                    "INSERT INTO api_tokens (id, name, role, token_hash, created_at, created_by, "
                    "expires_at, revoked_at) VALUES (?, ?, ?, ?, ?, ?, ?, NULL)"
                ),
                (token_id, name, role.value, token_hash(token), rfc3339(now), actor, expires_at),
            )
        finally:
            cursor.close()
        appender.add(
            ISSUED,
            None,
            actor,
            {"id": token_id, "name": name, "role": role.value, "expires_at": expires_at},
        )
    return IssuedToken(token, token_id, name, role, expires_at)


def revoke_token(instance: Instance, *, name: str, actor: str) -> str:
    with instance.ledger.appending() as appender:
        cursor = appender.raw.cursor()
        try:
            cursor.execute(
                instance.db.sql("SELECT id FROM api_tokens WHERE name = ? AND revoked_at IS NULL"),
                (name,),
            )
            row = cursor.fetchone()
            if row is None:
                raise NotFoundError(f"no active token named {name!r}")
            token_id = str(row[0])
            cursor.execute(
                instance.db.sql("UPDATE api_tokens SET revoked_at = ? WHERE id = ?"),
                (appender.at, token_id),
            )
        finally:
            cursor.close()
        appender.add(REVOKED, None, actor, {"id": token_id, "name": name})
    return token_id


def list_tokens(instance: Instance) -> list[dict[str, str | None]]:
    with instance.db.read() as conn:
        rows = conn.execute(
            select(
                api_tokens.c.id,
                api_tokens.c.name,
                api_tokens.c.role,
                api_tokens.c.created_at,
                api_tokens.c.created_by,
                api_tokens.c.expires_at,
                api_tokens.c.revoked_at,
            ).order_by(api_tokens.c.created_at)
        ).all()
    return [dict(r._mapping) for r in rows]


def authenticate(instance: Instance, token: str, now: datetime) -> Principal | None:
    """The principal for ``token``, or None when unknown, revoked or expired."""
    return _valid(_lookup(instance, token), now)


@dataclass(frozen=True)
class _Stored:
    """A row of ``api_tokens`` (without the hash)."""

    id: str
    name: str
    role: str
    expires_at: str | None
    revoked_at: str | None


def _lookup(instance: Instance, token: str) -> _Stored | None:
    if not token.startswith(PREFIX) or len(token) > 200:
        return None
    with instance.db.read() as conn:
        row = conn.execute(
            select(
                api_tokens.c.id,
                api_tokens.c.name,
                api_tokens.c.role,
                api_tokens.c.expires_at,
                api_tokens.c.revoked_at,
            ).where(api_tokens.c.token_hash == token_hash(token))
        ).first()
    return None if row is None else _Stored(*row)


def _valid(row: _Stored | None, now: datetime) -> Principal | None:
    if row is None or row.revoked_at is not None:
        return None
    if row.expires_at is not None and row.expires_at <= rfc3339(now):
        return None
    return Principal(row.name, Role(row.role), row.id)


#: How long a server process trusts a token it has looked up (seconds): the longest a token
#: revoked through another process (or the CLI) may still be accepted here.
TOKEN_CACHE_SECONDS = 1.0


@dataclass(frozen=True)
class _Known:
    principal: Principal
    expires_at: str | None
    checked: float  # monotonic seconds


class TokenCache:
    """Tokens this process authenticated recently, by hash: one database read per token per TTL.

    Only valid tokens are kept (an unknown or revoked one is looked up every time, so a new token
    works at once and guessing fills nothing); expiry is checked on every use. :meth:`forget`
    drops a revoked token at once; other processes drop it when its ``ttl`` runs out.
    """

    def __init__(
        self,
        instance: Instance,
        *,
        ttl: float = TOKEN_CACHE_SECONDS,
        size: int = 1024,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.instance = instance
        self.ttl = ttl
        self.size = size
        self.monotonic = monotonic
        self._known: dict[str, _Known] = {}
        self._forgotten = 0  # bumped by forget: a lookup that raced a revocation is not kept
        self._lock = threading.Lock()  # for changes; reads need none

    def __len__(self) -> int:
        return len(self._known)

    def cached(self, token: str, now: datetime) -> Principal | None:
        """The principal if this process checked ``token`` less than ``ttl`` ago (no I/O)."""
        known = self._known.get(token_hash(token))
        if known is None or self.monotonic() - known.checked >= self.ttl:
            return None
        if known.expires_at is not None and known.expires_at <= rfc3339(now):
            return None
        return known.principal

    def authenticate(self, token: str, now: datetime) -> Principal | None:
        """:func:`authenticate`, from the cache while it is fresh, else from the database."""
        found = self.cached(token, now)
        if found is not None:
            return found
        checked, forgotten = self.monotonic(), self._forgotten
        row = _lookup(self.instance, token)
        principal = _valid(row, now)
        key = token_hash(token)
        with self._lock:
            if principal is None or row is None:
                self._known.pop(key, None)
                return None
            if forgotten == self._forgotten:
                if key not in self._known and len(self._known) >= self.size:
                    self._known.pop(next(iter(self._known)))
                self._known[key] = _Known(principal, row.expires_at, checked)
        return principal

    def forget(self, token_id: str) -> None:
        """Stop trusting a token this process revoked (other processes wait out the TTL)."""
        with self._lock:
            self._forgotten += 1
            for key, known in list(self._known.items()):
                if known.principal.token_id == token_id:
                    del self._known[key]
