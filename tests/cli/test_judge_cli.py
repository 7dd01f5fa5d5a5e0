"""``clearance judge``: sample files, metrics files, output and exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import ClassVar

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clearance.cli.app import main
from clearance.core.judge import Direction, Kind, NoData, Sample
from clearance.errors import InputError
from clearance.judge import format_samples, parse_config, parse_samples

HEADER = "timestamp,metric,value,numerator,denominator\n"
P95 = (410, 402, 398, 415, 405, 399, 420, 401, 396, 408)
METRICS = """\
thresholds: {pass: 95, marginal: 75}
groups: {errors: 2, latency: 1}
metrics:
  order_errors: {kind: rate, direction: increase, critical: true, group: errors}
  chart_save_p95: {kind: continuous, direction: increase, allowed_effect: 0.1, group: latency}
"""


def sample_file(errors: int, requests: int, p95_scale: float = 1.0) -> str:
    rows = [HEADER.rstrip("\n")]
    for i in range(10):
        ts = f"2026-11-02T09:{i:02d}:00Z"
        rows.append(f"{ts},order_errors,,{errors // 10},{requests // 10}")
        rows.append(f"{ts},chart_save_p95,{P95[i] * p95_scale},,")
    return "\n".join(rows) + "\n"


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """The command in this process, through ``main()`` and its one error handler."""
    argv = sys.argv
    sys.argv = ["clearance", "judge", *args]
    try:
        main()
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    finally:
        sys.argv = argv
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    paths = {
        "base": tmp_path / "base.csv",
        "same": tmp_path / "same.csv",
        "worse": tmp_path / "worse.csv",
        "slow": tmp_path / "slow.csv",
        "metrics": tmp_path / "metrics.yaml",
    }
    paths["base"].write_text(sample_file(30, 3000))
    paths["same"].write_text(sample_file(30, 3000))
    paths["worse"].write_text(sample_file(100, 3000))
    paths["slow"].write_text(sample_file(30, 3000, p95_scale=1.3))
    paths["metrics"].write_text(METRICS)
    return paths


class TestSampleFiles:
    @settings(max_examples=50, deadline=None)
    @given(
        st.lists(
            st.tuples(
                st.integers(0, 10**9),
                st.sampled_from(["errors", "acks.failed", "p95", "p99"]),
                st.floats(allow_nan=False, allow_infinity=False),
                st.integers(0, 10**6),
                st.integers(0, 10**6),
            ),
            max_size=30,
            unique_by=lambda t: (t[0], t[1]),
        )
    )
    def test_round_trip(self, rows: list[tuple[int, str, float, int, int]]) -> None:
        samples = [
            Sample(str(ts), m, value=v)
            if m.startswith("p")
            else Sample(str(ts), m, numerator=min(a, b), denominator=max(a, b))
            for ts, m, v, a, b in rows
        ]
        parsed = parse_samples(format_samples(samples), "x.csv")
        assert list(parsed.samples) == samples
        assert list(parsed.lines) == list(range(2, len(samples) + 2))

    BAD_ROWS: ClassVar[list[tuple[str, str]]] = [
        ("t,errors,,1", "expected 5 columns"),
        ("2026-11-02T09:00:00Z,errors,,x,10", "column 'numerator'"),
        ("2026-11-02T09:00:00Z,errors,,11,10", "larger than the denominator"),
        ("2026-11-02T09:00:00Z,errors,,-1,10", "column 'numerator'"),
        ("2026-11-02T09:00:00Z,errors,,1.5,10", "whole number"),
        ("2026-11-02T09:00:00Z,p95,abc,,", "column 'value'"),
        ("2026-11-02T09:00:00Z,p95,nan,,", "finite"),
        ("2026-11-02T09:00:00Z,p95,3,1,2", "value or counts, not both"),
        ("2026-11-02T09:00:00Z,p95,,,", "neither a value nor counts"),
        ("2026-11-02T09:00:00Z,errors,,1,", "column 'denominator' is empty"),
        ("yesterday,p95,3,,", "column 'timestamp'"),
        ("2026-11-02T09:00:00Z,bad metric,3,,", "column 'metric'"),
    ]

    @settings(max_examples=40, deadline=None)
    @given(st.sampled_from(BAD_ROWS), st.integers(0, 8))
    def test_malformed_rows_name_the_line(self, bad: tuple[str, str], at: int) -> None:
        good = [f"{1000 + i},chart_save_p95,{400 + i},," for i in range(8)]
        rows = [*good[:at], bad[0], *good[at:]]
        with pytest.raises(InputError, match=bad[1]) as caught:
            parse_samples(HEADER + "\n".join(rows) + "\n", "canary.csv")
        assert caught.value.where == f"canary.csv:{at + 2}"

    def test_header_kind_changes_and_duplicates(self) -> None:
        with pytest.raises(InputError, match="expected the header") as caught:
            parse_samples("time,metric,value\n", "b.csv")
        assert caught.value.where == "b.csv:1"
        with pytest.raises(InputError, match="empty file"):
            parse_samples("", "b.csv")
        with pytest.raises(InputError, match="a rate here but a continuous on line 2") as caught:
            parse_samples(HEADER + "1,m,3,,\n2,m,,1,2\n", "b.csv")
        assert caught.value.where == "b.csv:3"
        with pytest.raises(InputError, match="twice") as caught:
            parse_samples(HEADER + "1,m,3,,\n1,m,4,,\n", "b.csv")
        assert caught.value.where == "b.csv:3"
        parsed = parse_samples("\ufeff" + HEADER + "\n2026-11-02T09:00:00+00:00,m,1e3,,\n", "b")
        assert parsed.samples[0].value == 1000.0


class TestMetricsFile:
    def test_reads_every_field(self) -> None:
        config = parse_config(
            METRICS
            + "  logins: {kind: rate, direction: decrease, must_have_data: true, group: errors,\n"
            "           weight: 2, critical_effect: 0.5, outliers: keep}\n",
            "m.yaml",
        )
        assert [s.name for s in config.specs] == ["order_errors", "chart_save_p95", "logins"]
        logins = config.specs[2]
        assert logins.kind is Kind.RATE and logins.direction is Direction.DECREASE
        assert logins.no_data is NoData.FAIL and logins.weight == 2.0
        assert config.specs[1].allowed_effect == 0.1 and config.specs[0].critical
        assert dict(config.group_weights) == {"errors": 2.0, "latency": 1.0}
        assert config.thresholds.pass_score == 95 and config.thresholds.alpha == 0.01

    @pytest.mark.parametrize(
        ("text", "line", "message"),
        [
            ("metrics:\n  a: {kind: rates}\n", 2, "metrics.a.kind: must be one of rate"),
            (
                "metrics:\n  a:\n    kind: rate\n    critcal: true\n",
                4,
                "metrics.a.critcal: unknown",
            ),
            ("metrics:\n  a: {direction: increase}\n", 2, "metrics.a: needs 'kind"),
            (
                "metrics:\n  a: {kind: rate, must_have_data: true, no_data: ignore}\n",
                2,
                "contradicts must_have_data",
            ),
            (
                "thresholds:\n  pass: 70\n  marginal: 80\nmetrics: {a: {kind: rate}}\n",
                3,
                "marginal",
            ),
            ("thresholds: {alpha: 0.9}\nmetrics: {a: {kind: rate}}\n", 1, "alpha"),
            ("groups: {x: 1}\nmetrics:\n  a: {kind: rate}\n", 3, "group 'default' has no weight"),
            ("metrics:\n  a: {kind: rate, weight: 0}\n", 2, "weight: must be larger than 0"),
            ("metrics:\n  a: {kind: rate, critical: yes please}\n", 2, "true or false"),
            ("metrics: [a, b]\n", 1, "metrics: must be a mapping"),
            ("metrics:\n  a: {kind: rate\n", 3, "YAML syntax error"),
            ("metric:\n  a: {kind: rate}\n", 1, "metric: unknown key"),
            ("thresholds: {pass: 90}\n", 1, "no 'metrics' mapping"),
        ],
    )
    def test_errors_name_file_line_and_field(self, text: str, line: int, message: str) -> None:
        with pytest.raises(InputError, match=message) as caught:
            parse_config(text, "metrics.yaml")
        assert caught.value.where == f"metrics.yaml:{line}"


class TestCommand:
    def test_pass_exits_0_with_a_table_and_a_verdict(
        self, capsys: pytest.CaptureFixture[str], files: dict[str, Path]
    ) -> None:
        code, out, _ = run(
            capsys, "--baseline", str(files["base"]), "--canary", str(files["same"]),
            "--metrics", str(files["metrics"]),
        )  # fmt: skip
        assert code == 0
        assert "order_errors" in out and "chart_save_p95" in out
        assert "verdict: PASS score 100.0" in out

    def test_fail_exits_1_and_json_carries_the_evidence(
        self, capsys: pytest.CaptureFixture[str], files: dict[str, Path]
    ) -> None:
        code, out, _ = run(
            capsys, "--baseline", str(files["base"]), "--canary", str(files["worse"]),
            "--metrics", str(files["metrics"]), "--json",
        )  # fmt: skip
        assert code == 1
        doc = json.loads(out)
        assert doc["verdict"] == "fail" and doc["inferred_metrics"] is False
        errors = next(m for m in doc["metrics"] if m["name"] == "order_errors")
        assert errors["classification"] == "high" and errors["test"] == "fisher-exact"
        assert errors["p_value"] < 0.005 and errors["canary"]["numerator"] == 100
        assert any("critical metric is high" in r for r in doc["reasons"])
        assert doc["files"]["metrics"] == str(files["metrics"])

    def test_marginal_exits_1_and_says_so(
        self, capsys: pytest.CaptureFixture[str], files: dict[str, Path]
    ) -> None:
        """Latency has a third of the weight: failing it alone gives 66.7, below 75... so
        with marginal at 60 the verdict is marginal: a person decides, the pipeline stops."""
        files["metrics"].write_text(METRICS.replace("marginal: 75", "marginal: 60"))
        code, out, _ = run(
            capsys, "--baseline", str(files["base"]), "--canary", str(files["slow"]),
            "--metrics", str(files["metrics"]),
        )  # fmt: skip
        assert code == 1
        assert "verdict: MARGINAL (pause: a person decides) score 66.7" in out

    def test_without_metrics_file_infers_and_warns(
        self, capsys: pytest.CaptureFixture[str], files: dict[str, Path]
    ) -> None:
        code, _, err = run(capsys, "--baseline", str(files["base"]), "--canary", str(files["same"]))
        assert code == 0
        assert "warning: no --metrics file: judging 2 metrics" in err
        assert "rate: order_errors; continuous: chart_save_p95" in err

    def test_undeclared_metric_warns_and_kind_mismatch_is_bad_input(
        self, capsys: pytest.CaptureFixture[str], files: dict[str, Path], tmp_path: Path
    ) -> None:
        extra = tmp_path / "extra.csv"
        extra.write_text(sample_file(30, 3000) + "2026-11-02T09:00:00Z,queue_backlog,12,,\n")
        code, out, _ = run(
            capsys, "--baseline", str(files["base"]), "--canary", str(extra),
            "--metrics", str(files["metrics"]), "--json",
        )  # fmt: skip
        assert code == 0
        assert json.loads(out)["warnings"] == [
            f"{extra}:22: metric 'queue_backlog' is not declared in {files['metrics']}: not judged"
        ]
        files["metrics"].write_text(
            METRICS.replace("chart_save_p95: {kind: continuous", "chart_save_p95: {kind: rate")
        )
        code, _, err = run(
            capsys, "--baseline", str(files["base"]), "--canary", str(extra),
            "--metrics", str(files["metrics"]),
        )  # fmt: skip
        assert code == 2
        assert f"error: {files['base']}:3: metric 'chart_save_p95' is declared rate" in err

    def test_no_traffic_is_not_a_pass(
        self, capsys: pytest.CaptureFixture[str], files: dict[str, Path], tmp_path: Path
    ) -> None:
        empty = tmp_path / "empty.csv"
        empty.write_text(HEADER)
        code, out, _ = run(
            capsys, "--baseline", str(files["base"]), "--canary", str(empty),
            "--metrics", str(files["metrics"]), "--json",
        )  # fmt: skip
        doc = json.loads(out)
        assert code == 1 and doc["verdict"] == "marginal" and doc["score"] is None
        assert {m["classification"] for m in doc["metrics"]} == {"nodata"}

    def test_bad_input_exits_2_with_file_and_line(
        self, capsys: pytest.CaptureFixture[str], files: dict[str, Path], tmp_path: Path
    ) -> None:
        broken = tmp_path / "broken.csv"
        broken.write_text(HEADER + "2026-11-02T09:00:00Z,order_errors,,12,10\n")
        code, out, err = run(capsys, "--baseline", str(files["base"]), "--canary", str(broken))
        assert code == 2 and out == ""
        assert err.startswith(f"error: {broken}:2: column 'numerator': 12 is larger")
        code, _, err = run(
            capsys, "--baseline", str(tmp_path / "missing.csv"), "--canary", str(broken)
        )
        assert code == 2 and "missing.csv: no such file" in err

    def test_as_a_real_process(self, files: dict[str, Path]) -> None:
        proc = subprocess.run(
            [
                sys.executable, "-m", "clearance", "judge", "--baseline", str(files["base"]),
                "--canary", str(files["worse"]), "--metrics", str(files["metrics"]), "--json",
            ],
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert proc.returncode == 1, proc.stderr
        assert json.loads(proc.stdout)["verdict"] == "fail"
