"""The server's identities: API tokens with a role, shown once, kept only as a hash.

Creating and revoking a token are ledger records (who did it, for whom, which role; never the
token). ``authenticate`` maps a presented token to a :class:`Principal`, refusing revoked and
expired ones.
"""

from __future__ import annotations

import hashlib
import re
import secrets
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
    if row is None or row.revoked_at is not None:
        return None
    if row.expires_at is not None and row.expires_at <= rfc3339(now):
        return None
    return Principal(row.name, Role(row.role), row.id)
