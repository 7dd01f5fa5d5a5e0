"""Content digests: the only way Clearance names an artifact or a blob (``sha256:<64 hex>``)."""

from __future__ import annotations

import hashlib
import re
from typing import NewType

from clearance.errors import InputError

Digest = NewType("Digest", str)

_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")


def digest_bytes(data: bytes) -> Digest:
    """The ``sha256:<hex>`` digest of ``data``."""
    return Digest("sha256:" + hashlib.sha256(data).hexdigest())


def parse_digest(text: str, *, where: str | None = None) -> Digest:
    """Validate a digest given by a person; tags and versions are refused on purpose."""
    value = text.strip()
    if _DIGEST.match(value):
        return Digest(value)
    if re.match(r"^sha256:[0-9A-F]{64}$", value, re.IGNORECASE):
        return Digest(value.lower())
    raise InputError(
        f"{text!r} is not a digest",
        where=where,
        hint="artifacts are named only by sha256:<64 hex digits>, never by tag or version",
    )


def hex_of(digest: Digest) -> str:
    """The hex part of a digest, as in-toto ``{"sha256": hex}`` maps want it."""
    return digest.split(":", 1)[1]
