"""Canonical JSON (RFC 8785, the JSON Canonicalization Scheme) for everything we hash or sign.

For values without floats and with ASCII keys, RFC 8785 output equals ``json.dumps`` with sorted
keys, no whitespace and no ASCII escaping (same string escapes, same integer form, same key order),
which is ~10x faster than the pure-Python ``rfc8785`` package; everything else goes through it.
A property test holds the two paths equal.
"""

from __future__ import annotations

import json
from typing import Any

import rfc8785

from clearance.errors import InputError

_MAX_SAFE_INT = 2**53 - 1


def _simple(value: Any) -> bool:
    """True when ``json.dumps`` would produce the RFC 8785 form of ``value``.

    Exact types only (a ``str`` subclass takes the slow path); iterative, as this runs for every
    ledger record.
    """
    stack = [value]
    while stack:
        item = stack.pop()
        kind = type(item)
        if kind is str or kind is bool or item is None:
            continue
        if kind is int:
            if not -_MAX_SAFE_INT <= item <= _MAX_SAFE_INT:
                return False
        elif kind is dict:
            for key in item:
                if type(key) is not str or not key.isascii():
                    return False
            stack.extend(item.values())
        elif kind is list or kind is tuple:
            stack.extend(item)
        else:
            return False
    return True


def canonical_json(value: Any) -> bytes:
    """The RFC 8785 bytes of ``value``; the same value always gives the same bytes."""
    try:
        if _simple(value):
            return json.dumps(
                value, sort_keys=True, separators=(",", ":"), ensure_ascii=False
            ).encode()
        return bytes(rfc8785.dumps(value))
    except (rfc8785.CanonicalizationError, TypeError, ValueError) as exc:
        raise InputError(f"value cannot be written as canonical JSON: {exc}") from exc
