"""``clearance judge`` as a library call: two sample files (and a metrics file) -> a judgement.

``judge_files(baseline, canary, metrics)`` reads and checks the files, reconciles them with the
declared metrics, and runs the pure judge. Decisions about the input, stated once here:

- A metric in a sample file that the metrics file does not declare is a warning (exports often
  carry more metrics than a policy judges), never silently judged and never an error.
- A declared metric whose rows have the other kind (values for a rate, counts for a continuous
  metric) is an error naming the first such line.
- A declared metric absent from a file is no data: the judge applies its ``no_data`` policy.
- Without a metrics file, every metric in the samples is judged with the defaults (direction
  increase, no_data marginal, default thresholds), and a warning says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from clearance.core.judge import Verdict, judge, series_from_samples
from clearance.errors import InputError
from clearance.judge.config import JudgeConfig, infer_config, load_config
from clearance.judge.samples import SampleFile, load_samples


@dataclass(frozen=True)
class Judgement:
    verdict: Verdict
    config: JudgeConfig
    warnings: tuple[str, ...]
    files: dict[str, str | None]

    def to_json(self) -> dict[str, Any]:
        return {
            **self.verdict.to_json(),
            "warnings": list(self.warnings),
            "inferred_metrics": self.config.inferred,
            "files": self.files,
        }


def judge_files(baseline: Path, canary: Path, metrics: Path | None = None) -> Judgement:
    config = load_config(metrics) if metrics is not None else None
    base, can = load_samples(baseline), load_samples(canary)
    warnings: list[str] = []
    if config is None:
        config = infer_config([base, can])
        kinds = {
            k: [s.name for s in config.specs if s.kind.value == k] for k in ("rate", "continuous")
        }
        described = "; ".join(f"{k}: {', '.join(v)}" for k, v in kinds.items() if v)
        warnings.append(
            f"no --metrics file: judging {len(config.specs)} metrics found in the samples "
            f"({described}) with direction increase and no_data marginal, thresholds pass "
            f"{config.thresholds.pass_score:g} / marginal {config.thresholds.marginal_score:g}, "
            f"alpha {config.thresholds.alpha:g}"
        )
    else:
        for f in (base, can):
            warnings.extend(_reconcile(f, config, str(metrics)))
    verdict = judge(
        config.specs,
        config.thresholds,
        series_from_samples(base.samples),
        series_from_samples(can.samples),
        group_weights=config.group_weights,
    )
    files = {
        "baseline": str(baseline),
        "canary": str(canary),
        "metrics": None if metrics is None else str(metrics),
    }
    return Judgement(verdict, config, tuple(warnings), files)


def _reconcile(f: SampleFile, config: JudgeConfig, metrics_name: str) -> list[str]:
    warnings = []
    for metric, (kind, line) in f.kinds().items():
        spec = config.spec(metric)
        if spec is None:
            warnings.append(
                f"{f.name}:{line}: metric {metric!r} is not declared in {metrics_name}: not judged"
            )
        elif spec.kind is not kind:
            raise InputError(
                f"metric {metric!r} is declared {spec.kind.value} in {metrics_name} but this "
                f"row is a {kind.value}",
                where=f"{f.name}:{line}",
                hint="a rate has numerator and denominator, a continuous metric has a value",
            )
    return warnings
