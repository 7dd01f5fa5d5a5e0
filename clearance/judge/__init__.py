"""The judge offline: sample files and metrics files around the pure canary judge.

``samples`` reads and writes the CSV sample files, ``config`` the YAML metrics file, and
``offline.judge_files`` runs ``clearance.core.judge.judge`` on them (``clearance judge``).
"""

from clearance.judge.config import JudgeConfig, infer_config, load_config, parse_config
from clearance.judge.offline import Judgement, judge_files
from clearance.judge.samples import SampleFile, format_samples, load_samples, parse_samples

__all__ = [
    "JudgeConfig",
    "Judgement",
    "SampleFile",
    "format_samples",
    "infer_config",
    "judge_files",
    "load_config",
    "load_samples",
    "parse_config",
    "parse_samples",
]
