"""The judge's metrics file (YAML) -> :class:`JudgeConfig`, or one defaulted from the samples.

The form itself is parsed in the pure core (``clearance/core/judgeconfig.py``), shared with the
policy's ``analysis`` sections; this module reads files and infers a default from samples.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from clearance.core.judge import Kind, MetricSpec
from clearance.core.judgeconfig import JudgeConfig, config_from_data
from clearance.core.yamlmap import YamlProblem, load
from clearance.errors import InputError
from clearance.files import read_text
from clearance.judge.samples import SampleFile

__all__ = ["JudgeConfig", "infer_config", "load_config", "parse_config"]


def load_config(path: Path) -> JudgeConfig:
    return parse_config(read_text(path, limit=1 << 20, what="metrics file").text, str(path))


def parse_config(text: str, name: str) -> JudgeConfig:
    try:
        data, lines = load(text)
    except YamlProblem as exc:
        raise InputError(exc.message, where=f"{name}:{exc.line or 1}") from exc
    return config_from_data(data, name, lines)


def infer_config(files: Iterable[SampleFile]) -> JudgeConfig:
    """Every metric in the files, its kind from its rows, everything else at its default."""
    kinds: dict[str, tuple[Kind, str, int]] = {}
    for f in files:
        for metric, (kind, line) in f.kinds().items():
            first = kinds.setdefault(metric, (kind, f.name, line))
            if first[0] is not kind:
                raise InputError(
                    f"metric {metric!r} is a {kind.value} here but a {first[0].value} in "
                    f"{first[1]}:{first[2]}",
                    where=f"{f.name}:{line}",
                )
    if not kinds:
        raise InputError(
            "no samples in either file and no --metrics: nothing to judge",
            hint="pass --metrics FILE to judge declared metrics (with no data, they are nodata)",
        )
    specs = tuple(MetricSpec(name, kind) for name, (kind, _, _) in kinds.items())
    return JudgeConfig(specs, inferred=True)
