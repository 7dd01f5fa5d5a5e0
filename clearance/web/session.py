"""Browser sessions: an HMAC-signed cookie carrying who signed in and the session's CSRF token.

The cookie is ``base64url(JSON) "." base64url(HMAC-SHA256(secret, JSON))``: HttpOnly,
SameSite=Strict, ``Secure`` when the request came over HTTPS, eight hours at most. The secret is
256 random bits in ``$CLEARANCE_HOME/keys/web-session.key``, created ``0600`` at first use (several
servers behind one name share it the way they share the signing key).

Every session, signed in or not, has a CSRF token; every form carries it and every POST is
refused (403, nothing done) unless the form's token equals the cookie's. Signing in issues a
fresh session (and token). The cookie names an email only: the account is read on every request,
so a disabled account's sessions end at once.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import os
import secrets
import threading
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from clearance.errors import InfrastructureError

COOKIE = "clearance_session"
LIFETIME_SECONDS = 8 * 3600
SECRET_FILE = "web-session.key"  # noqa: S105 (a file name, not a secret)
_MAX_COOKIE = 4096


@dataclass(frozen=True)
class Session:
    email: str | None
    csrf: str
    expires: int

    @classmethod
    def anonymous(cls, now: datetime) -> Session:
        return cls(None, secrets.token_urlsafe(32), int(now.timestamp()) + LIFETIME_SECONDS)

    @classmethod
    def signed_in(cls, email: str, now: datetime) -> Session:
        return cls(email, secrets.token_urlsafe(32), int(now.timestamp()) + LIFETIME_SECONDS)

    def csrf_matches(self, presented: str | None) -> bool:
        return presented is not None and hmac.compare_digest(presented.encode(), self.csrf.encode())


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Sessions:
    """Encode and check session cookies with the instance's web secret."""

    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    def _mac(self, payload: bytes) -> bytes:
        return hmac.new(self._secret, b"clearance-session-v1\0" + payload, hashlib.sha256).digest()

    def encode(self, session: Session) -> str:
        payload = json.dumps(
            {"e": session.email, "c": session.csrf, "x": session.expires},
            separators=(",", ":"),
            sort_keys=True,
        ).encode()
        return f"{_b64(payload)}.{_b64(self._mac(payload))}"

    def decode(self, cookie: str | None, now: datetime) -> Session | None:
        """The session if the cookie is well formed, untampered and unexpired, else None."""
        if not cookie or len(cookie) > _MAX_COOKIE or cookie.count(".") != 1:
            return None
        body, mac = cookie.split(".")
        try:
            payload, presented = _unb64(body), _unb64(mac)
        except ValueError:
            return None
        if not hmac.compare_digest(presented, self._mac(payload)):
            return None
        try:
            data = json.loads(payload)
            email, csrf, expires = data["e"], data["c"], data["x"]
        except (ValueError, KeyError, TypeError):
            return None
        if not (
            isinstance(csrf, str)
            and isinstance(expires, int)
            and (email is None or isinstance(email, str))
        ):
            return None
        if expires <= int(now.timestamp()):
            return None
        return Session(email, csrf, expires)


_LOCK = threading.Lock()


def load_secret(home: Path) -> bytes:
    """The web session secret under ``home/keys``, created (0600, exclusively) at first use."""
    path = home / "keys" / SECRET_FILE
    with _LOCK:
        try:
            return _read(path)
        except FileNotFoundError:
            pass
        # Written to a private temporary file, then linked into place: the link either creates
        # the complete file or fails because another server process won the race.
        tmp = path.with_name(f"{SECRET_FILE}.{secrets.token_hex(8)}.tmp")
        try:
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_hex(32) + "\n")
            with contextlib.suppress(FileExistsError):  # another process linked it first
                os.link(tmp, path)
        except OSError as exc:
            raise InfrastructureError(
                f"cannot create the web session secret: {exc.strerror}", where=str(path)
            ) from exc
        finally:
            tmp.unlink(missing_ok=True)
        return _read(path)


def _read(path: Path) -> bytes:
    try:
        text = path.read_text().strip()
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise InfrastructureError(
            f"cannot read the web session secret: {exc.strerror}", where=str(path)
        ) from exc
    try:
        secret = bytes.fromhex(text)
    except ValueError:
        secret = b""
    if len(secret) < 32:
        raise InfrastructureError(
            "the web session secret is malformed (expected 64 hex digits)",
            where=str(path),
            hint="delete the file: a new one is created and everyone signs in again",
        )
    return secret
