"""Canary judge benchmark: false positives and power on simulated traffic, side by side.

Run it as ``.venv/bin/python bench/judge.py [--comparisons N] [--seed S]``. For every case it
simulates N A/A comparisons (baseline and canary drawn from the same traffic) and N A/B
comparisons (the canary regressed), with a seeded RNG, and judges each one twice on the same
samples:

- **ours**: ``clearance.core.judge.judge`` exactly as ``clearance judge`` runs it, on what a
  sample file holds: per-minute error and request counts, or per-minute p50/p95/p99 latencies
  (three metrics, direction increase, default thresholds, alpha 0.01 for the whole verdict).
  A comparison is flagged when the verdict is not ``pass`` (marginal pauses, fail aborts: both
  stop the rollout).
- **Kayenta**: a Mann-Whitney-only judge (the Kayenta method: one rank test per metric, 98%
  two-sided confidence, i.e. one-sided alpha 0.01 on the harmful side) on the raw samples a
  metric store gives it: the per-minute error rate series (errors / requests per minute), and
  every single request's latency (the most a rank test could ever be given).

Traffic: Poisson request counts per minute at the stated rate per group; errors are Bernoulli.
In the 5%/95% rows the same total traffic (twice the rate) is split 5% to the canary and 95% to
the baseline. Latencies are log-normal (median 200 ms, sigma 0.5), a fixed number of requests
per minute. The cases:

(a) error rate 1% -> 2%, at 5, 20, 50 req/s for 5, 10, 30 minutes, equal split and 5%/95%;
(b) p95 latency +30% with the median unchanged: quantiles up to p90 untouched, p95 and above
    x1.3, a linear ramp between (a tail-only regression);
(c) all latencies +10%.

For (a) the "exact" column is our count test's false-positive rate given each A/A comparison's
totals (requests per group, errors overall), averaged: the rate itself, free of the noise of which
requests happened to fail; the FPR goal is judged on it where it exists, else on the observed
share.

Goals: false-positive rate <= 1% in every case; power >= 0.80 for (a) at 5 req/s for 10
minutes; power >= 0.95 for (b) at 20 req/s for 10 minutes. For (a) the "limit" column is the
power of the randomized exact conditional test on the same samples: the most powerful test whose
false-positive rate is exactly 1%, and a non-randomized one (any verdict a person can replay)
does a little worse. Figures in brackets are 95% Wilson intervals of the Monte Carlo estimate:
with 1,000 comparisons a true false-positive rate of 1% is observed anywhere in about 0.4-1.6%.
It always exits 0: it reports, it does not judge a build.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
from scipy import special, stats

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

# After the path is set:
from bench.common import print_table, progress_bar, verdict  # noqa: E402
from clearance.core.judge import (  # noqa: E402
    Kind,
    MetricSpec,
    Outcome,
    Series,
    Thresholds,
    judge,
)

ALPHA = 0.01
FPR_GOAL = 0.01
MINUTE = 60
MEDIAN_MS, SIGMA = 200.0, 0.5
THRESHOLDS = Thresholds(alpha=ALPHA)
RATE_SPECS = (MetricSpec("errors", Kind.RATE),)
QUANTILES = (50, 95, 99)
LATENCY_SPECS = tuple(MetricSpec(f"latency_p{q}", Kind.CONTINUOUS) for q in QUANTILES)

Ints = npt.NDArray[np.int64]
Floats = npt.NDArray[np.float64]
Bools = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class Case:
    label: str
    kind: str  # "rate" or "latency"
    rate: float  # requests per second per group (equal split)
    minutes: int
    canary_share: float | None = None  # None: equal split; else share of 2 x rate
    power_goal: float | None = None

    @property
    def split(self) -> str:
        return "equal" if self.canary_share is None else "5%/95%"

    def rates(self) -> tuple[float, float]:
        """Requests per second of the baseline and the canary."""
        if self.canary_share is None:
            return self.rate, self.rate
        total = 2 * self.rate
        return total * (1 - self.canary_share), total * self.canary_share


@dataclass(frozen=True)
class Outcomes:
    ours: Bools
    kayenta: Bools
    limit: Floats | None = None  # randomized exact test: rejection probability per comparison
    exact: Floats | None = None  # our count test: rejection probability given the totals


def cases() -> list[Case]:
    found = []
    for share in (None, 0.05):
        for rate in (5, 20, 50):
            for minutes in (5, 10, 30):
                goal = 0.80 if (share is None and rate == 5 and minutes == 10) else None
                found.append(Case("(a) errors 1%->2%", "rate", rate, minutes, share, goal))
    for label, goal_at_20 in (("(b) p95 +30%, p50 same", 0.95), ("(c) latency +10%", None)):
        found.append(Case(label, label[1], 5, 10))
        found.append(Case(label, label[1], 20, 10, power_goal=goal_at_20))
    return found


# --- simulation -------------------------------------------------------------------------------


def simulate_rate(
    rng: np.random.Generator, case: Case, n: int, canary_p: float
) -> tuple[Ints, Ints, Ints, Ints]:
    """Per-minute (errors, requests) for baseline and canary: arrays of shape (n, minutes)."""
    rb, rc = case.rates()
    shape = (n, case.minutes)
    nb = rng.poisson(rb * MINUTE, shape)
    nc = rng.poisson(rc * MINUTE, shape)
    return rng.binomial(nb, 0.01), nb, rng.binomial(nc, canary_p), nc


def latencies(rng: np.random.Generator, shape: tuple[int, ...], change: str | None) -> Floats:
    z = rng.standard_normal(shape)
    x: Floats = MEDIAN_MS * np.exp(SIGMA * z)
    if change == "b":  # tail only: p90 and below unchanged, p95 and above x1.3
        u = special.ndtr(z)
        x = x * (1 + 0.3 * np.clip((u - 0.90) / 0.05, 0.0, 1.0))
    elif change == "c":
        x = x * 1.1
    return x


# --- the judges -------------------------------------------------------------------------------


def ours_rate(xb: Ints, nb: Ints, xc: Ints, nc: Ints) -> Bools:
    flagged = np.zeros(xb.shape[0], dtype=bool)
    for i in range(xb.shape[0]):
        base = {"errors": Series(numerators=tuple(xb[i]), denominators=tuple(nb[i]))}
        can = {"errors": Series(numerators=tuple(xc[i]), denominators=tuple(nc[i]))}
        flagged[i] = judge(RATE_SPECS, THRESHOLDS, base, can).verdict is not Outcome.PASS
    return flagged


def kayenta_rate(xb: Ints, nb: Ints, xc: Ints, nc: Ints) -> Bools:
    """Mann-Whitney on the per-minute error rate series (a minute without requests has none)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        rb, rc = xb / nb, xc / nc
    if np.isnan(rb).any() or np.isnan(rc).any():
        p = np.array(
            [
                stats.mannwhitneyu(c[~np.isnan(c)], b[~np.isnan(b)], alternative="greater").pvalue
                for b, c in zip(rb, rc, strict=True)
            ]
        )
    else:
        p = stats.mannwhitneyu(rc, rb, axis=1, alternative="greater").pvalue
    flagged: Bools = p <= ALPHA
    return flagged


def conditional(xb: Ints, nb: Ints, xc: Ints, nc: Ints) -> tuple[Floats, Floats]:
    """Per comparison, given its totals (requests per group, errors overall), the probability
    that our count test rejects, and that the randomized exact test rejects, with no change.

    Under no change the canary's share of the errors is hypergeometric given these totals, so
    the mean of the first over the A/A comparisons is our false-positive rate on this traffic
    without the noise of which requests happened to fail. Under the A/B change, the second is
    the power of the best test whose false-positive rate is exactly alpha (the limit).
    """
    sb, sc = nb.sum(axis=1), nc.sum(axis=1)
    eb, ec = xb.sum(axis=1), xc.sum(axis=1)
    total, events = sb + sc, eb + ec
    first_rejected = stats.hypergeom.isf(ALPHA, total, events, sc) + 1
    size = stats.hypergeom.sf(first_rejected - 1, total, events, sc)
    above = stats.hypergeom.sf(ec, total, events, sc)  # P(X > x)
    at = stats.hypergeom.pmf(ec, total, events, sc)
    with np.errstate(invalid="ignore", divide="ignore"):
        gamma = np.where(at > 0, (ALPHA - above) / at, 0.0)
    limit: Floats = np.where(above + at <= ALPHA, 1.0, np.clip(gamma, 0.0, 1.0))
    return size, limit


def ours_latency(q_base: Floats, q_can: Floats) -> Bools:
    """``q_*``: per-minute quantiles, shape (n, minutes, len(QUANTILES))."""
    flagged = np.zeros(q_base.shape[0], dtype=bool)
    for i in range(q_base.shape[0]):
        base = {s.name: Series(values=tuple(q_base[i, :, j])) for j, s in enumerate(LATENCY_SPECS)}
        can = {s.name: Series(values=tuple(q_can[i, :, j])) for j, s in enumerate(LATENCY_SPECS)}
        flagged[i] = judge(LATENCY_SPECS, THRESHOLDS, base, can).verdict is not Outcome.PASS
    return flagged


def kayenta_latency(raw_base: Floats, raw_can: Floats) -> Bools:
    """Mann-Whitney on every request's latency, one row per comparison."""
    p = stats.mannwhitneyu(raw_can, raw_base, axis=1, alternative="greater").pvalue
    flagged: Bools = p <= ALPHA
    return flagged


# --- running ----------------------------------------------------------------------------------


def run_rate(rng: np.random.Generator, case: Case, n: int, regressed: bool) -> Outcomes:
    xb, nb, xc, nc = simulate_rate(rng, case, n, 0.02 if regressed else 0.01)
    ours = ours_rate(xb, nb, xc, nc)
    size, limit = conditional(xb, nb, xc, nc)
    mismatch = int(np.sum(ours != (limit >= 1.0)))  # the judge rejects exactly where it must
    if mismatch:
        print(f"warning: {case.label}: the judge disagrees with the exact test {mismatch} times")
    return Outcomes(ours, kayenta_rate(xb, nb, xc, nc), limit, size)


def run_latency(
    rng: np.random.Generator, case: Case, n: int, regressed: bool, chunk: int = 100
) -> Outcomes:
    per_minute = int(case.rate * MINUTE)
    ours, kayenta = [], []
    for start in range(0, n, chunk):  # bounded memory: chunk x requests x 8 bytes per group
        size = min(chunk, n - start)
        shape = (size, case.minutes, per_minute)
        base = latencies(rng, shape, None)
        can = latencies(rng, shape, case.kind if regressed else None)
        q_base = np.moveaxis(np.percentile(base, QUANTILES, axis=2), 0, -1)
        q_can = np.moveaxis(np.percentile(can, QUANTILES, axis=2), 0, -1)
        ours.append(ours_latency(q_base, q_can))
        kayenta.append(kayenta_latency(base.reshape(size, -1), can.reshape(size, -1)))
    return Outcomes(np.concatenate(ours), np.concatenate(kayenta))


def wilson(hits: float, n: int) -> tuple[float, float]:
    if n == 0:
        return 0.0, 1.0
    z, p = 1.96, hits / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def share(flags: Bools | Floats, ci: bool = False, percent: bool = False, digits: int = 1) -> str:
    hits, n = float(np.sum(flags)), int(flags.size)

    def fmt(v: float) -> str:
        return f"{100 * v:.{digits}f}%" if percent else f"{v:.3f}"

    if not ci:
        return fmt(hits / n)
    low, high = wilson(hits, n)
    return f"{fmt(hits / n)} [{fmt(low)}-{fmt(high)}]"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--comparisons", type=int, default=1000, help="A/A and A/B each per case")
    parser.add_argument("--seed", type=int, default=20261102)
    args = parser.parse_args()
    n = args.comparisons
    rng = np.random.default_rng(args.seed)
    header = (
        "case", "req/s", "min", "split", "FPR ours", "exact", "FPR Kayenta", "power ours",
        "power Kayenta", "limit", "goal", "verdict",
    )  # fmt: skip
    rows = []
    started = time.perf_counter()
    all_cases = cases()
    shared_aa: dict[tuple[float, int], Outcomes] = {}  # (b) and (c) share their A/A runs
    with progress_bar() as progress:
        task = progress.add_task("judging simulated canaries", total=len(all_cases))
        for case in all_cases:
            if case.kind == "rate":
                aa = run_rate(rng, case, n, regressed=False)
                ab = run_rate(rng, case, n, regressed=True)
            else:
                key = (case.rate, case.minutes)
                if key not in shared_aa:
                    shared_aa[key] = run_latency(rng, case, 2 * n, regressed=False)
                aa = shared_aa[key]
                ab = run_latency(rng, case, n, regressed=True)
            fpr = float(np.mean(aa.exact if aa.exact is not None else aa.ours))
            power = float(np.mean(ab.ours))
            ok = fpr <= FPR_GOAL and (case.power_goal is None or power >= case.power_goal)
            goal = f"FPR<=1%{f', power>={case.power_goal:.2f}' if case.power_goal else ''}"
            rows.append(
                (
                    case.label,
                    f"{case.rate:g}",
                    str(case.minutes),
                    case.split,
                    share(aa.ours, ci=True, percent=True),
                    "-" if aa.exact is None else share(aa.exact, percent=True, digits=2),
                    share(aa.kayenta, percent=True),
                    share(ab.ours, ci=case.power_goal is not None),
                    share(ab.kayenta),
                    "-" if ab.limit is None else share(ab.limit),
                    goal,
                    verdict(ok),
                )
            )
            progress.advance(task)
    print(
        f"{n} A/A and {n} A/B comparisons per case ((b) and (c) share {2 * n} A/A per traffic), "
        f"seed {args.seed}, alpha {ALPHA} per verdict, {time.perf_counter() - started:.0f} s"
    )
    print_table(rows, header)
    print(
        "FPR goal judged on 'exact' where there is one (rates: our test's false-positive rate "
        "given each comparison's totals), else on the observed share."
    )


if __name__ == "__main__":
    main()
