"""Two-sample rank tests: the Mann-Whitney U test and the Hodges-Lehmann shift with its interval.

The statistics behind the canary judge's test of continuous series (``judge.py`` decides what a
result means). For ``x`` (``n`` values) against ``y`` (``m`` values):

- ``U`` counts the pairs with ``x_i > y_j``, a tie counting one half; with no shift between the
  groups every split of the pooled values is equally likely, which gives U's distribution.
- :func:`u_cumulative` is that distribution for untied values, exact (:func:`u_tails` uses it
  up to ``EXACT_PAIRS`` pairs); past it, or with ties, U is taken as normal with the tie-corrected
  spread of :func:`tie_sigma` and a continuity correction.
- :func:`u_critical` is the rank of the distribution-free confidence bounds of the shift: the
  interval from the ``c``-th smallest to the ``c``-th largest pairwise difference ``x_i - y_j``
  (0-based), whose median is the Hodges-Lehmann shift.
- :func:`mann_whitney` runs the whole test; :func:`best_p_value` says whether a test on ``n``
  and ``m`` values can reach a significance level at all.

Pure: arrays in, numbers out; no I/O, no randomness.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass
from functools import lru_cache
from statistics import NormalDist

import numpy as np
import numpy.typing as npt

__all__ = [
    "EXACT_PAIRS",
    "MannWhitney",
    "best_p_value",
    "mann_whitney",
    "tie_sigma",
    "u_critical",
    "u_cumulative",
    "u_tails",
]

EXACT_PAIRS = 2_500  # n*m up to which the Mann-Whitney distribution is computed exactly
_NORMAL = NormalDist()
Array = npt.NDArray[np.float64]


@dataclass(frozen=True)
class MannWhitney:
    """One test of ``x`` against ``y``: U, both tails, and the shift of ``x`` from ``y``."""

    u: float  # pairs with x > y, ties counting one half
    greater: float  # P(U >= u) with no shift: small when x lies above y
    less: float  # P(U <= u) with no shift: small when x lies below y
    exact: bool  # exact distribution (untied, at most EXACT_PAIRS pairs), else normal
    shift: float  # Hodges-Lehmann: the median of the pairwise differences x_i - y_j
    shift_ci: tuple[float | None, float | None]  # (None, None): too few values to bound it


def mann_whitney(x: Array, y: Array, tail: float) -> MannWhitney:
    """The test of ``x`` against ``y``, with a shift interval of confidence ``1 - 2 * tail``.

    Holds all ``x.size * y.size`` pairwise differences in memory: the caller bounds the sizes.
    """
    n, m = x.size, y.size
    diffs = np.subtract.outer(x, y).ravel()
    u = float(np.count_nonzero(diffs > 0) + 0.5 * np.count_nonzero(diffs == 0))
    pooled = np.concatenate([y, x])
    tied = np.unique(pooled).size < pooled.size
    exact = not tied and n * m <= EXACT_PAIRS
    greater, less = u_tails(u, n, m, pooled, exact)
    low_i = u_critical(n, m, tail, pooled, exact)
    diffs.sort()
    shift = float(np.median(diffs))
    shift_ci = (
        (float(diffs[low_i]), float(diffs[diffs.size - 1 - low_i])) if low_i >= 0 else (None, None)
    )
    return MannWhitney(u, greater, less, exact, shift, shift_ci)


def best_p_value(n: int, m: int, *, two_sided: bool) -> float:
    """The smallest p-value any split of ``n`` and ``m`` untied values can give."""
    return (2 if two_sided else 1) / math.comb(n + m, n)


@lru_cache(maxsize=256)
def u_cumulative(n: int, m: int) -> tuple[tuple[int, ...], int]:
    """``cum[u]`` = arrangements with U <= u (no ties), and their total C(n+m, n).

    The counts are the coefficients of the Gaussian binomial [n+m choose n]_q, built as the
    product of (1 - q^(m+i)) / (1 - q^i) for i = 1..n, in exact integers.
    """
    poly = [1]
    for i in range(1, n + 1):
        a = m + i
        grown = [*poly, *([0] * a)]
        for j, coef in enumerate(poly):
            grown[j + a] -= coef
        for j in range(i, len(grown)):
            grown[j] += grown[j - i]
        poly = grown[: i * m + 1]
    cum, running = [], 0
    for coef in poly:
        running += coef
        cum.append(running)
    return tuple(cum), running


def tie_sigma(n: int, m: int, pooled: Array) -> float:
    """The standard deviation of U under no shift, corrected for the ties in ``pooled``."""
    total = n + m
    _, counts = np.unique(pooled, return_counts=True)
    ties = float(np.sum(counts.astype(np.float64) ** 3 - counts))
    var = n * m / 12 * ((total + 1) - ties / (total * (total - 1)))
    return math.sqrt(max(var, 0.0))


def u_tails(u: float, n: int, m: int, pooled: Array, exact: bool) -> tuple[float, float]:
    """P(U >= u) and P(U <= u) under no shift; exact, else normal with ties and continuity."""
    if exact:
        cum, total = u_cumulative(n, m)
        k = round(u)
        greater = (total - (cum[k - 1] if k > 0 else 0)) / total
        return greater, cum[k] / total
    sigma = tie_sigma(n, m, pooled)
    if sigma == 0:
        return 1.0, 1.0
    mu = n * m / 2
    return _NORMAL.cdf(-(u - mu - 0.5) / sigma), _NORMAL.cdf((u - mu + 0.5) / sigma)


def u_critical(n: int, m: int, a: float, pooled: Array, exact: bool) -> int:
    """The largest c with P(U <= c) <= a (-1 if none): the CI is D[c] .. D[nm-1-c] (0-based)."""
    if exact:
        cum, total = u_cumulative(n, m)
        return bisect.bisect_right(cum, a * total) - 1
    sigma = tie_sigma(n, m, pooled)
    return math.floor(n * m / 2 - 0.5 + _NORMAL.inv_cdf(a) * sigma) if sigma > 0 else -1
