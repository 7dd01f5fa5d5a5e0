"""Builds of the sample clinical service: ``clinic.py`` with its build constants rewritten.

A build is one file, ``clinic-<version>.py``, made from :mod:`clearance.demo.clinic`'s source
with ``VERSION`` set and, for a faulty build, the bug switch ``ORDER_DOSE_ROUNDING`` turned to
``"whole-mg"`` (decimal doses then fail with 500). The same version and fault always give the
same bytes, so the same build always has the same digest.
"""

from __future__ import annotations

import re
from importlib.resources import files
from pathlib import Path

from clearance.errors import InputError

__all__ = ["FAULTY_ROUNDING", "build_clinic", "rewrite"]

FAULTY_ROUNDING = "whole-mg"
_VERSION_TEXT = re.compile(r"[0-9A-Za-z][0-9A-Za-z.+\-]{0,63}")
_VERSION_LINE = re.compile(r'^VERSION = "[^"\n]*"$', re.MULTILINE)
_ROUNDING_LINE = re.compile(r'^ORDER_DOSE_ROUNDING = "exact"$', re.MULTILINE)


def rewrite(source: str, version: str, *, faulty: bool) -> str:
    """``source`` (clinic.py's text) as the build of ``version``, with the bug if ``faulty``.

    Each rewritten constant must occur exactly once; anything else means the source is not a
    clinic template and nothing is built.
    """
    if not _VERSION_TEXT.fullmatch(version):
        raise InputError(
            f"{version!r} is not a version",
            hint="use letters, digits, '.', '+' and '-' only, such as 1.5.0",
        )
    source, count = _VERSION_LINE.subn(f'VERSION = "{version}"', source)
    _expect_once(count, "VERSION")
    _expect_once(len(_ROUNDING_LINE.findall(source)), 'ORDER_DOSE_ROUNDING = "exact"')
    if faulty:
        source = _ROUNDING_LINE.sub(f'ORDER_DOSE_ROUNDING = "{FAULTY_ROUNDING}"', source)
    return source


def build_clinic(version: str, *, faulty: bool, dest_dir: Path) -> Path:
    """Write ``dest_dir/clinic-<version>.py`` (the deployable artifact) and return its path."""
    source = files("clearance.demo").joinpath("clinic.py").read_text(encoding="utf-8")
    text = rewrite(source, version, faulty=faulty)
    dest_dir.mkdir(parents=True, exist_ok=True)
    path = dest_dir / f"clinic-{version}.py"
    path.write_text(text, encoding="utf-8", newline="\n")
    return path


def _expect_once(count: int, what: str) -> None:
    if count != 1:
        raise InputError(
            f"the clinic source defines {what} {count} times, expected exactly once",
            where="clearance/demo/clinic.py",
            hint="keep the build constants at the top of clinic.py, one line each",
        )
