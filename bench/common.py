"""What the benchmark scripts share: a progress bar on stderr, verdicts and the result table.

The machine the benchmarks run on is shared and noisy, so a script reports each figure next to
a baseline it timed in the same run, and the ratio of the two. These helpers only present
figures; each script owns what it measures.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)

RESULT_HEADER = ("figure", "value", "baseline", "ratio", "goal", "verdict")


def progress_bar() -> Progress:
    """A Rich progress bar on stderr, so that stdout carries only the results."""
    return Progress(
        TextColumn("{task.description:<32}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        refresh_per_second=4,  # a lighter background thread while timing
    )


def verdict(ok: bool | None) -> str:
    """PASS or FAIL against a goal; ``None`` for a figure without a goal."""
    if ok is None:
        return "-"
    return "PASS" if ok else "FAIL"


def print_table(rows: Sequence[Sequence[str]], header: Sequence[str] = RESULT_HEADER) -> None:
    """Rows of strings as an aligned plain-text table on stdout (easy to paste and to diff)."""
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    line = "  ".join(f"{{:<{w}}}" for w in widths)
    print(line.format(*header).rstrip())
    print(line.format(*("-" * w for w in widths)).rstrip())
    for row in rows:
        print(line.format(*row).rstrip())


#: A fixed author and no user or system git configuration (hooks, signing, templates).
GIT_ENV = {
    **os.environ,
    "GIT_AUTHOR_NAME": "Dana Developer",
    "GIT_AUTHOR_EMAIL": "dana@example.org",
    "GIT_COMMITTER_NAME": "Dana Developer",
    "GIT_COMMITTER_EMAIL": "dana@example.org",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_CONFIG_NOSYSTEM": "1",
}


def git(repo: Path, *args: str, env: Mapping[str, str] = GIT_ENV) -> str:
    """Run git in ``repo`` for a benchmark's repository; its stdout, stripped."""
    proc = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, env=env, check=True)
    return proc.stdout.decode().strip()
