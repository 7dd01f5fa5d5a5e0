"""Sample files for the judge: CSV text <-> :class:`~clearance.core.judge.Sample`, strictly.

The header is ``timestamp,metric,value,numerator,denominator``; one row per metric per interval.
A row holds either ``value`` (a continuous metric, e.g. a p95 latency) or ``numerator`` and
``denominator`` (a rate, e.g. errors and requests), never both. Every problem is one
:class:`InputError` naming file, line and column: a missing or different header, a wrong number
of columns, a timestamp that is neither ISO 8601 nor Unix seconds, a value that is not a finite
number, counts that are not whole numbers, a numerator above its denominator, a metric given as a
value on one line and as counts on another, the same metric twice at the same timestamp.
``format_samples`` writes what ``parse_samples`` reads (a rollout exports its samples with it).
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from clearance.core.judge import Kind, Sample
from clearance.errors import InputError
from clearance.files import read_text

HEADER = ("timestamp", "metric", "value", "numerator", "denominator")
MAX_BYTES = 64 << 20
_METRIC = re.compile(r"[A-Za-z_][A-Za-z0-9_.:-]*\Z")
_COUNT = re.compile(r"[0-9]+\Z")


@dataclass(frozen=True)
class SampleFile:
    """The samples of one file and, for each, the line it came from."""

    name: str
    samples: tuple[Sample, ...]
    lines: tuple[int, ...]

    def kinds(self) -> dict[str, tuple[Kind, int]]:
        """Each metric's kind and its first line, in order of appearance."""
        found: dict[str, tuple[Kind, int]] = {}
        for s, line in zip(self.samples, self.lines, strict=True):
            found.setdefault(s.metric, (Kind.RATE if s.value is None else Kind.CONTINUOUS, line))
        return found


def load_samples(path: Path) -> SampleFile:
    return parse_samples(read_text(path, limit=MAX_BYTES, what="sample file").text, str(path))


def parse_samples(text: str, name: str) -> SampleFile:
    reader = csv.reader(io.StringIO(text.removeprefix("\ufeff"), newline=""), strict=True)
    samples: list[Sample] = []
    lines: list[int] = []
    kinds: dict[str, tuple[Kind, int]] = {}
    seen: dict[tuple[str, str], int] = {}
    header = False
    try:
        for row in reader:
            line = reader.line_num
            if not header:
                got = tuple(f.strip() for f in row)
                if got != HEADER:
                    raise InputError(
                        f"expected the header {','.join(HEADER)}, got {','.join(got) or 'nothing'}",
                        where=f"{name}:{line}",
                    )
                header = True
                continue
            if not row or all(not f.strip() for f in row):
                continue
            sample = _row(row, name, line)
            kind = Kind.RATE if sample.value is None else Kind.CONTINUOUS
            first_kind, first_line = kinds.setdefault(sample.metric, (kind, line))
            if kind is not first_kind:
                raise InputError(
                    f"metric {sample.metric!r} is a {kind.value} here but a {first_kind.value} on "
                    f"line {first_line}",
                    where=f"{name}:{line}",
                    hint="a metric has values on every row or counts on every row",
                )
            key = (sample.metric, sample.timestamp)
            if key in seen:
                raise InputError(
                    f"metric {sample.metric!r} at {sample.timestamp} twice (first on line "
                    f"{seen[key]})",
                    where=f"{name}:{line}",
                )
            seen[key] = line
            samples.append(sample)
            lines.append(line)
    except csv.Error as exc:
        raise InputError(f"not valid CSV: {exc}", where=f"{name}:{reader.line_num}") from exc
    if not header:
        raise InputError(f"empty file: expected the header {','.join(HEADER)}", where=f"{name}:1")
    return SampleFile(name, tuple(samples), tuple(lines))


def _row(row: list[str], name: str, line: int) -> Sample:
    where = f"{name}:{line}"
    if len(row) != len(HEADER):
        raise InputError(f"expected {len(HEADER)} columns, got {len(row)}", where=where)
    timestamp, metric, value, numerator, denominator = (f.strip() for f in row)
    _check_timestamp(timestamp, where)
    if not _METRIC.match(metric):
        raise InputError(f"column 'metric': {metric!r} is not a metric name", where=where)
    if value and (numerator or denominator):
        raise InputError(
            "a row has a value or counts, not both",
            where=where,
            hint="leave 'value' empty for a rate, 'numerator' and 'denominator' for a value",
        )
    if value:
        try:
            number = float(value)
        except ValueError:
            number = math.nan
        if not math.isfinite(number):
            raise InputError(f"column 'value': {value!r} is not a finite number", where=where)
        return Sample(timestamp, metric, value=number)
    if not numerator and not denominator:
        raise InputError("the row has neither a value nor counts", where=where)
    if not numerator or not denominator:
        missing = "denominator" if numerator else "numerator"
        raise InputError(f"column {missing!r} is empty", where=where)
    num, den = _count("numerator", numerator, where), _count("denominator", denominator, where)
    if num > den:
        raise InputError(
            f"column 'numerator': {num} is larger than the denominator {den}", where=where
        )
    return Sample(timestamp, metric, numerator=num, denominator=den)


def _check_timestamp(text: str, where: str) -> None:
    if not text:
        raise InputError("column 'timestamp' is empty", where=where)
    try:
        if math.isfinite(float(text)):
            return
    except ValueError:
        pass
    try:
        datetime.fromisoformat(text)
    except ValueError as exc:
        raise InputError(
            f"column 'timestamp': {text!r} is neither ISO 8601 nor Unix seconds", where=where
        ) from exc


def _count(column: str, text: str, where: str) -> int:
    if not _COUNT.match(text):
        raise InputError(
            f"column {column!r}: {text!r} is not a whole number >= 0",
            where=where,
            hint="counts are events in the interval; round them when exporting",
        )
    return int(text)


def format_samples(samples: Iterable[Sample]) -> str:
    """Samples as a sample file, readable by :func:`parse_samples`."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(HEADER)
    for s in samples:
        writer.writerow(
            [
                s.timestamp,
                s.metric,
                "" if s.value is None else repr(s.value),
                "" if s.numerator is None else s.numerator,
                "" if s.denominator is None else s.denominator,
            ]
        )
    return buffer.getvalue()
