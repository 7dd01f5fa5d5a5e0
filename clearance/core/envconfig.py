"""Environment configuration: injected at promotion, never baked into the artifact.

A config file is a YAML or JSON mapping. Any key that looks like a secret (password, token,
api key, private key, credential, connection string, ...) must hold a reference (``env:NAME``,
``vault:path``, ``secret:name``), never the secret itself. Its digest is recorded with the
promotion, so an auditor can tell exactly which configuration ran.
"""

from __future__ import annotations

import re
from typing import Any

from clearance.core.yamlmap import Path, YamlProblem, line_of, load
from clearance.errors import InputError

SECRET_KEY = re.compile(
    r"(pass(word|wd)?|secret|token|api[_-]?key|private[_-]?key|credential|auth[_-]?key|"
    r"connection[_-]?string|dsn|access[_-]?key)",
    re.IGNORECASE,
)
REFERENCE = re.compile(r"^(env|vault|secret|kms|aws-sm|gcp-sm|azure-kv):\S+$")


def check_config(text: str, name: str) -> dict[str, Any]:
    """The parsed mapping; raises InputError naming file, line and key for any clear secret."""
    try:
        data, lines = load(text)
    except YamlProblem as exc:
        where = f"{name}:{exc.line}" if exc.line else name
        raise InputError(exc.message, where=where) from exc
    if not isinstance(data, dict):
        raise InputError(
            "environment configuration must be a mapping of keys to values", where=name
        )
    problems = list(_secrets(data, (), lines, name))
    if problems:
        first = problems[0]
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise InputError(
            first + more,
            hint="put the secret in your secret store and reference it, e.g. env:DB_PASSWORD "
            "or vault:secret/orders/db",
        )
    return data


def _clear_secret(key: str, value: Any) -> bool:
    if not SECRET_KEY.search(key) or isinstance(value, dict | list) or value in (None, ""):
        return False
    return not (isinstance(value, str) and REFERENCE.match(value))


def _secrets(value: Any, path: Path, lines: dict[Path, int], name: str) -> list[str]:
    found: list[str] = []
    if isinstance(value, dict):
        for key, item in value.items():
            here = (*path, key)
            if _clear_secret(str(key), item):
                dotted = ".".join(str(p) for p in here)
                found.append(
                    f"{name}:{line_of(lines, here)}: {dotted}: looks like a secret "
                    "in clear text; use a reference such as env:NAME or vault:path"
                )
            found.extend(_secrets(item, here, lines, name))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            found.extend(_secrets(item, (*path, i), lines, name))
    return found
