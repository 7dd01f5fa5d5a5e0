"""Opening files a person named: every way it can fail becomes one error that names the file."""

from __future__ import annotations

import stat
from collections.abc import Iterator
from contextlib import contextmanager
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
