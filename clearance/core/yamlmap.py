"""YAML text -> plain values plus the line of every key and item, for errors that say where.

``load(text)`` returns ``(data, lines)`` where ``lines[path]`` is the 1-based line of the value at
``path`` (a tuple of keys and list indices; ``()`` is the document). Duplicate keys are refused:
a policy must never silently take the last of two conflicting entries.
"""

from __future__ import annotations

from typing import Any

import yaml

Path = tuple[str | int, ...]


class YamlProblem(ValueError):
    def __init__(self, message: str, line: int | None) -> None:
        super().__init__(message)
        self.message = message
        self.line = line


def line_of(lines: dict[Path, int], path: Path) -> int | None:
    """The line of ``path``, or of its nearest ancestor that has one."""
    while path not in lines and path:
        path = path[:-1]
    return lines.get(path)


def load(text: str) -> tuple[Any, dict[Path, int]]:
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        raise YamlProblem(
            f"YAML syntax error: {exc.problem}", mark.line + 1 if mark else None
        ) from exc
    except yaml.YAMLError as exc:
        raise YamlProblem(f"YAML error: {exc}", None) from exc
    lines: dict[Path, int] = {}
    if node is None:
        return None, lines
    return _value(node, (), lines), lines


def _value(node: yaml.Node, path: Path, lines: dict[Path, int]) -> Any:
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = _scalar(key_node)
            if not isinstance(key, str | int | bool) or isinstance(key, bool):
                raise YamlProblem("mapping keys must be plain words", key_node.start_mark.line + 1)
            key = str(key)
            if key in result:
                raise YamlProblem(f"duplicate key {key!r}", key_node.start_mark.line + 1)
            result[key] = _value(value_node, (*path, key), lines)
            lines[(*path, key)] = key_node.start_mark.line + 1  # errors point at the key
        return result
    if isinstance(node, yaml.SequenceNode):
        return [_value(item, (*path, i), lines) for i, item in enumerate(node.value)]
    return _scalar(node)


def _scalar(node: yaml.Node) -> Any:
    if not isinstance(node, yaml.ScalarNode):
        raise YamlProblem("expected a plain value here", node.start_mark.line + 1)
    return _LOADER.construct_object(node)


_LOADER = yaml.SafeLoader("")
