"""Content-addressed blob store: raw reports and envelopes, kept byte for byte by digest.

The embedded store is a directory (``file://``): ``sha256/ab/cdef...`` written through a temporary
file, fsynced and renamed, then made read-only. An S3-compatible store implements the same port.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import BinaryIO, Protocol
from urllib.parse import urlparse

from clearance.core.digests import Digest, hex_of
from clearance.errors import InputError, NotFoundError, StoreError
from clearance.files import reading

CHUNK = 1 << 20


class StagedBlob(Protocol):
    """A copy of a file taken once, hashed while copied; parse it, then commit or discard."""

    digest: Digest
    size: int
    path: Path

    def commit(self) -> None: ...

    def discard(self) -> None: ...


class BlobStore(Protocol):
    def stage(self, path: Path) -> StagedBlob: ...

    def put_file(self, path: Path) -> tuple[Digest, int]: ...

    def put_bytes(self, data: bytes) -> Digest: ...

    def read_bytes(self, digest: Digest) -> bytes: ...

    def open(self, digest: Digest) -> BinaryIO: ...

    def check(self, digest: Digest) -> str | None:
        """None when the blob is present and intact, else what is wrong with it."""
        ...


def hash_file(path: Path) -> tuple[Digest, int]:
    """Digest and size of a file, read in chunks."""
    digest = hashlib.sha256()
    size = 0
    with reading(path) as source:
        while chunk := source.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return Digest("sha256:" + digest.hexdigest()), size


class FileBlobStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, digest: Digest) -> Path:
        h = hex_of(digest)
        return self.root / "sha256" / h[:2] / h[2:]

    def _commit(self, tmp: Path, digest: Digest) -> None:
        target = self._path(digest)
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.exists():
            tmp.unlink()
            return
        os.replace(tmp, target)
        target.chmod(0o444)

    def _tempfile(self) -> tuple[int, Path]:
        tmpdir = self.root / "tmp"
        tmpdir.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=tmpdir)
        return fd, Path(name)

    def stage(self, path: Path) -> _FileStaged:
        """Copy ``path`` aside while hashing it, so what is parsed is exactly what is kept."""
        digest = hashlib.sha256()
        size = 0
        fd, tmp = self._tempfile()
        try:
            with os.fdopen(fd, "wb") as out, reading(path) as source:
                while chunk := source.read(CHUNK):
                    digest.update(chunk)
                    size += len(chunk)
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return _FileStaged(self, Digest("sha256:" + digest.hexdigest()), size, tmp)

    def put_file(self, path: Path) -> tuple[Digest, int]:
        staged = self.stage(path)
        staged.commit()
        return staged.digest, staged.size

    def put_bytes(self, data: bytes) -> Digest:
        result = Digest("sha256:" + hashlib.sha256(data).hexdigest())
        if self._path(result).exists():
            return result
        fd, tmp = self._tempfile()
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            self._commit(tmp, result)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise StoreError(f"cannot write blob: {exc.strerror}", where=str(self.root)) from exc
        return result

    def open(self, digest: Digest) -> BinaryIO:
        try:
            return self._path(digest).open("rb")
        except FileNotFoundError as exc:
            raise NotFoundError(f"blob {digest} is missing from the blob store") from exc

    def read_bytes(self, digest: Digest) -> bytes:
        with self.open(digest) as f:
            return f.read()

    def check(self, digest: Digest) -> str | None:
        path = self._path(digest)
        if not path.exists():
            return f"blob {digest} is missing"
        actual, _ = hash_file(path)
        if actual != digest:
            return f"blob {digest} was changed (its bytes now hash to {actual})"
        return None


class _FileStaged:
    def __init__(self, store: FileBlobStore, digest: Digest, size: int, path: Path) -> None:
        self.store = store
        self.digest = digest
        self.size = size
        self.path = path

    def commit(self) -> None:
        self.store._commit(self.path, self.digest)

    def discard(self) -> None:
        self.path.unlink(missing_ok=True)


def open_blob_store(url: str) -> BlobStore:
    parsed = urlparse(url)
    if parsed.scheme == "file":
        return FileBlobStore(Path(parsed.path))
    raise InputError(f"unsupported blob store URL {url!r}", hint="use file:///path")
