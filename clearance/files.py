"""Opening files a person named: every way it can fail becomes one error that names the file."""

from __future__ import annotations

import stat
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from clearance.errors import InputError, NotFoundError


@contextmanager
def reading(path: Path, *, name: str | None = None) -> Iterator[BinaryIO]:
    """``path`` open for binary reading; errors call it ``name`` (by default the path).

    Refuses directories and anything that is not a regular file (a FIFO would hang a reader).
    A read failure while the caller streams the file is an :class:`InputError` too.
    """
    where = name or str(path)
    try:
        info = path.stat()
        if stat.S_ISDIR(info.st_mode):
            raise InputError("is a directory, not a file", where=where)
        if not stat.S_ISREG(info.st_mode):
            raise InputError("is not a regular file", where=where)
        stream = path.open("rb")
    except (FileNotFoundError, NotADirectoryError) as exc:
        raise NotFoundError("no such file", where=where) from exc
    except PermissionError as exc:
        raise InputError("cannot read: permission denied", where=where) from exc
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror or exc}", where=where) from exc
    except ValueError as exc:  # a NUL byte in the path
        raise InputError(f"not a usable file name: {exc}", where=where) from exc
    with stream:
        try:
            yield stream
        except OSError as exc:
            raise InputError(f"cannot read: {exc.strerror or exc}", where=where) from exc


@dataclass(frozen=True)
class NamedText:
    """A small text file's content and the name errors should give it (a path, an upload)."""

    name: str
    text: str


def read_text(path: Path, *, limit: int = 4 << 20, what: str = "file") -> NamedText:
    """A UTF-8 text file of at most ``limit`` bytes, or an InputError that names it."""
    with reading(path) as f:
        raw = f.read(limit + 1)
    if len(raw) > limit:
        raise InputError(f"the {what} is larger than {limit} bytes", where=str(path))
    try:
        return NamedText(str(path), raw.decode())
    except UnicodeDecodeError as exc:
        raise InputError(f"the {what} is not UTF-8 text", where=str(path)) from exc


def write_text(path: Path, text: str) -> None:
    """Write through a temporary file and rename: a reader never sees half a file."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        tmp.write_text(text)
        tmp.replace(path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise InputError(f"cannot write: {exc.strerror}", where=str(path)) from exc
