"""A git repository read through the ``git`` command (the repository a user really has)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from clearance.core.classify import ChangeSet, FileChange
from clearance.errors import InfrastructureError, InputError


class GitRepo:
    def __init__(self, path: Path) -> None:
        if shutil.which("git") is None:
            raise InfrastructureError("git is not installed", hint="install git")
        self.path = path
        if not path.is_dir():
            raise InputError("not a directory", where=str(path))
        top = self._run("rev-parse", "--show-toplevel", check=False)
        if top is None:
            raise InputError("not a git repository", where=str(path))
        self.root = Path(top)

    def _git(self, *args: str) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(
            ["git", "-C", str(self.path), *args], capture_output=True, timeout=120, check=False
        )

    def _run(self, *args: str, check: bool = True) -> str | None:
        """stdout as text; on failure None, or with ``check`` an error quoting git."""
        proc = self._git(*args)
        if proc.returncode == 0:
            return proc.stdout.decode().strip()
        if check:
            said = proc.stderr.decode(errors="replace").strip().splitlines()
            raise InputError(
                f"git {args[0]} failed: {said[0] if said else proc.returncode}",
                where=str(self.path),
            )
        return None

    def resolve_commit(self, rev: str) -> str:
        """The full SHA of ``rev``; a revision that does not exist is an input error."""
        if rev.startswith("-"):
            raise InputError(f"{rev!r} is not a revision", where=str(self.path))
        sha = self._run("rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}", check=False)
        if not sha:
            raise InputError(
                f"revision {rev!r} does not exist in this repository", where=str(self.path)
            )
        return sha

    def remote_url(self) -> str | None:
        return self._run("remote", "get-url", "origin", check=False) or None

    def config(self, key: str) -> str | None:
        return self._run("config", "--get", key, check=False) or None

    def files_at(self, commit: str) -> list[str]:
        out = self._run("ls-tree", "-r", "--name-only", "-z", commit)
        return [p for p in (out or "").split("\0") if p]

    def read_file(self, commit: str, path: str) -> bytes:
        proc = self._git("cat-file", "blob", f"{commit}:{path}")
        if proc.returncode != 0:
            raise InputError(f"{path} does not exist at {commit[:12]}", where=str(self.path))
        return proc.stdout

    def author_email(self, commit: str) -> str | None:
        return self._run("log", "-1", "--format=%ae", commit, check=False) or None

    def diff(self, base: str, head: str) -> list[FileChange]:
        """Files changed from ``base`` to ``head``, with lines added/removed (None if binary).

        Renames are reported as a deletion and an addition, so both paths are classified.
        """
        proc = self._git("diff", "--numstat", "-z", "--no-renames", base, head, "--")
        if proc.returncode != 0:
            said = proc.stderr.decode(errors="replace").strip().splitlines()
            raise InputError(
                f"git diff failed: {said[0] if said else proc.returncode}", where=str(self.path)
            )
        changes = []
        for record in proc.stdout.decode(errors="surrogateescape").split("\0"):
            if not record:
                continue
            added, removed, path = record.split("\t", 2)
            changes.append(
                FileChange(
                    path,
                    None if added == "-" else int(added),
                    None if removed == "-" else int(removed),
                )
            )
        return changes

    def change_set(self, base: str, head: str = "HEAD") -> ChangeSet:
        """The change from ``base`` to ``head`` as the classifier sees it."""
        base_sha = self.resolve_commit(base)
        head_sha = self.resolve_commit(head)
        author, _, message = (
            self._run("log", "-1", "--format=%ae%x00%B", head_sha) or ""
        ).partition("\0")
        return ChangeSet(
            base=base_sha,
            head=head_sha,
            author=author,
            message=message.strip(),
            files=tuple(self.diff(base_sha, head_sha)),
        )
