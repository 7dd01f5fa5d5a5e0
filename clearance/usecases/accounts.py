"""People who sign in to the web UI: local accounts with argon2id password hashes.

An account is an email (the actor the ledger records), a display name (the printed name shown
with every electronic signature), a role from :mod:`clearance.core.roles` and a password hash.
Creating and disabling an account are ledger records (who, for whom, which role and name; never
the password). Accounts are never deleted, so a signature's printed name stays resolvable.

:class:`Authenticator` is the seam for other identity providers: the web UI only ever asks
``verify(email, password)`` at sign-in and again at signing (re-authentication), and ``find(email)``
for a session. An OIDC provider would implement the same protocol (re-authentication then being a
``prompt=login``/``max_age=0`` round trip) without the web UI changing.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Any, Protocol

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import select, update

from clearance.core.roles import Role
from clearance.errors import ConflictError, InputError, NotFoundError
from clearance.store.tables import accounts
from clearance.usecases.instance import Instance

CREATED = "account.created"
DISABLED = "account.disabled"
MIN_PASSWORD = 12
MAX_PASSWORD = 1024
_EMAIL = re.compile(r"^[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$")

#: argon2id with OWASP's recommended minimum (19 MiB, 2 passes, 1 lane): about 80 ms on a small
#: server, so sign-in stays quick and a burst of guesses cannot exhaust memory. Hashes made with
#: other parameters still verify and are upgraded at the next successful sign-in.
_HASHER = PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1)


@functools.cache
def _dummy_hash() -> str:
    """Verified against when the email is unknown, so an unknown email costs as long as a known
    one (made on first use: importing this module stays free for every other command)."""
    return _HASHER.hash("clearance: no such account")


@dataclass(frozen=True)
class Account:
    email: str
    display_name: str
    role: Role
    created_at: str
    disabled_at: str | None = None

    @property
    def active(self) -> bool:
        return self.disabled_at is None

    def to_json(self) -> dict[str, Any]:
        return {
            "email": self.email,
            "name": self.display_name,
            "role": self.role.value,
            "created_at": self.created_at,
            "disabled_at": self.disabled_at,
        }


class Authenticator(Protocol):
    """Who is this person, and did they just prove it (sign-in, and again at signing)?"""

    def verify(self, email: str, password: str) -> Account | None:
        """The active account if the credential is right, else None (never says which part)."""
        ...

    def find(self, email: str) -> Account | None:
        """The active account with this email, for an existing session."""
        ...


def normalise_email(email: str) -> str:
    return email.strip().lower()


def check_email(email: str) -> str:
    value = normalise_email(email)
    if len(value) > 320 or not _EMAIL.match(value):
        raise InputError(f"{email!r} is not an email address", where="--email")
    return value


def check_name(name: str) -> str:
    value = " ".join(name.split())
    if not value or len(value) > 200 or any(not c.isprintable() for c in value):
        raise InputError("the printed name must be 1 to 200 printable characters", where="--name")
    return value


def check_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise InputError(
            f"the password is shorter than {MIN_PASSWORD} characters",
            hint="use a passphrase of several words",
        )
    if len(password) > MAX_PASSWORD:
        raise InputError(f"the password is longer than {MAX_PASSWORD} characters")
    return password


def create_account(
    instance: Instance, *, email: str, name: str, role: Role, password: str, actor: str
) -> Account:
    """Store the account (argon2id hash only) and record its creation in the ledger."""
    email = check_email(email)
    name = check_name(name)
    password_hash = _HASHER.hash(check_password(password))
    with instance.ledger.appending() as appender:
        cursor = appender.raw.cursor()
        try:
            cursor.execute(instance.db.sql("SELECT email FROM accounts WHERE email = ?"), (email,))
            if cursor.fetchone() is not None:
                raise ConflictError(
                    f"an account for {email} exists",
                    hint="accounts are never reused; disable it and choose another email",
                )
            cursor.execute(
                instance.db.sql(
                    "INSERT INTO accounts (email, display_name, role, password_hash, created_at, "
                    "created_by, disabled_at) VALUES (?, ?, ?, ?, ?, ?, NULL)"
                ),
                (email, name, role.value, password_hash, appender.at, actor),
            )
        finally:
            cursor.close()
        appender.add(CREATED, None, actor, {"email": email, "name": name, "role": role.value})
    return Account(email, name, role, appender.at)


def disable_account(instance: Instance, *, email: str, actor: str) -> Account:
    """Stop the account signing in (its sessions end at their next request); recorded."""
    email = normalise_email(email)
    with instance.ledger.appending() as appender:
        cursor = appender.raw.cursor()
        try:
            cursor.execute(
                instance.db.sql(
                    "SELECT display_name, role, created_at FROM accounts "
                    "WHERE email = ? AND disabled_at IS NULL"
                ),
                (email,),
            )
            row = cursor.fetchone()
            if row is None:
                raise NotFoundError(f"no active account for {email}")
            cursor.execute(
                instance.db.sql("UPDATE accounts SET disabled_at = ? WHERE email = ?"),
                (appender.at, email),
            )
        finally:
            cursor.close()
        appender.add(DISABLED, None, actor, {"email": email})
    return Account(email, str(row[0]), Role(row[1]), str(row[2]), appender.at)


def _account(row: Any) -> Account:
    return Account(row.email, row.display_name, Role(row.role), row.created_at, row.disabled_at)


def list_accounts(instance: Instance) -> list[Account]:
    with instance.db.read() as conn:
        rows = conn.execute(
            select(
                accounts.c.email,
                accounts.c.display_name,
                accounts.c.role,
                accounts.c.created_at,
                accounts.c.disabled_at,
            ).order_by(accounts.c.created_at, accounts.c.email)
        ).all()
    return [_account(r) for r in rows]


def display_names(instance: Instance, emails: set[str]) -> dict[str, str]:
    """The printed name of each email that has an account (disabled ones included)."""
    if not emails:
        return {}
    with instance.db.read() as conn:
        rows = conn.execute(
            select(accounts.c.email, accounts.c.display_name).where(
                accounts.c.email.in_(sorted(emails))
            )
        ).all()
    return {r.email: r.display_name for r in rows}


class LocalAuthenticator:
    """Accounts in the instance's database, passwords checked with argon2id."""

    def __init__(self, instance: Instance) -> None:
        self.instance = instance

    def _row(self, email: str) -> Any:
        with self.instance.db.read() as conn:
            return conn.execute(
                select(
                    accounts.c.email,
                    accounts.c.display_name,
                    accounts.c.role,
                    accounts.c.created_at,
                    accounts.c.disabled_at,
                    accounts.c.password_hash,
                ).where(accounts.c.email == email)
            ).first()

    def find(self, email: str) -> Account | None:
        row = self._row(normalise_email(email))
        if row is None or row.disabled_at is not None:
            return None
        return _account(row)

    def verify(self, email: str, password: str) -> Account | None:
        if len(password) > MAX_PASSWORD or len(email) > 320:
            return None
        row = self._row(normalise_email(email))
        stored = row.password_hash if row is not None else _dummy_hash()
        try:
            _HASHER.verify(stored, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return None
        if row is None or row.disabled_at is not None:
            return None
        if _HASHER.check_needs_rehash(stored):
            self._rehash(row.email, password)
        return _account(row)

    def _rehash(self, email: str, password: str) -> None:
        with self.instance.db.write() as conn:
            conn.execute(
                update(accounts)
                .where(accounts.c.email == email)
                .values(password_hash=_HASHER.hash(password))
            )
