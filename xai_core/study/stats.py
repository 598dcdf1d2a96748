"""The statistics of a study, in numpy (checked against scipy in tests/test_study_stats.py).

The unit of analysis is the participant (responses of one person are not independent): per condition, each
participant's accuracy (and median response time); the confidence intervals resample participants.

* :func:`bootstrap_ci`: percentile bootstrap (Efron & Tibshirani, "An Introduction to the Bootstrap", 1993, ch. 13).
* Between-subject: :func:`mann_whitney` (two-sided, normal approximation with tie and continuity correction; Mann &
  Whitney 1947) and :func:`permutation_independent` (difference in means; exact when the arrangements are few);
  effect sizes :func:`hedges_g` (Hedges 1981) and the rank-biserial correlation (Kerby 2014).
* Within-subject: :func:`wilcoxon` (signed-rank on the paired differences, zeros dropped, normal approximation
  with tie and continuity correction; Wilcoxon 1945) and :func:`permutation_paired` (sign flips of the differences);
  effect sizes Cohen's d_z (mean / SD of the differences) and the matched-pairs rank-biserial correlation.

Two-sided permutation p-values follow scipy's convention: twice the smaller one-sided p, at most 1.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

MAX_EXACT = 20_000  # arrangements: enumerated exactly up to this many, else sampled


@dataclass(frozen=True)
class Test:
    """A test's name (as the results page states it), statistic, two-sided p-value and effect size."""

    name: str
    statistic: float
    p: float
    effect: float
    effect_name: str


def _finite(values: object) -> np.ndarray:
    v = np.asarray(values, np.float64).ravel()
    return v[np.isfinite(v)]


def bootstrap_ci(values: object, statistic: Callable[..., np.ndarray] = np.mean, *, resamples: int = 4000,
                 level: float = 0.95, seed: int = 0) -> tuple[float, float]:
    """Percentile-bootstrap confidence interval of ``statistic`` (a numpy reduction taking ``axis``) over the
    finite values; (nan, nan) with fewer than two values."""
    v = _finite(values)
    if len(v) < 2:
        return math.nan, math.nan
    idx = np.random.default_rng(seed).integers(0, len(v), (resamples, len(v)))
    stats = statistic(v[idx], axis=1)
    lo, hi = np.quantile(stats, [(1 - level) / 2, 1 - (1 - level) / 2])
    return float(lo), float(hi)


def bootstrap_diff_ci(x: object, y: object, *, resamples: int = 4000, level: float = 0.95,
                      seed: int = 0) -> tuple[float, float]:
    """Percentile-bootstrap interval of mean(y) − mean(x), the two groups resampled independently."""
    a, b = _finite(x), _finite(y)
    if len(a) < 2 or len(b) < 2:
        return math.nan, math.nan
    rng = np.random.default_rng(seed)
    diff = b[rng.integers(0, len(b), (resamples, len(b)))].mean(1) - a[rng.integers(0, len(a), (resamples, len(a)))].mean(1)
    lo, hi = np.quantile(diff, [(1 - level) / 2, 1 - (1 - level) / 2])
    return float(lo), float(hi)


def ranks(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Average ranks (1-based; tied values share the mean of their ranks) and the size of each tie group."""
    values, inverse, counts = np.unique(a, return_inverse=True, return_counts=True)
    top = np.cumsum(counts)
    return (top - (counts - 1) / 2.0)[inverse], counts


def _normal_sf(z: float) -> float:
    return 0.5 * math.erfc(z / math.sqrt(2.0))


def mann_whitney(x: object, y: object) -> Test:
    """Mann–Whitney U of ``x`` (U of the first sample, as scipy reports it) with its two-sided p-value (normal
    approximation, tie and continuity corrections) and the rank-biserial correlation r = 2·U_y/(n_x·n_y) − 1 (positive:
    ``y`` tends to be larger)."""
    a, b = _finite(x), _finite(y)
    n1, n2 = len(a), len(b)
    if n1 == 0 or n2 == 0:
        return Test("Mann–Whitney U", math.nan, math.nan, math.nan, "rank-biserial r")
    r, ties = ranks(np.concatenate([a, b]))
    u1 = float(r[:n1].sum() - n1 * (n1 + 1) / 2)
    n = n1 + n2
    var = n1 * n2 / 12 * ((n + 1) - float((ties**3 - ties).sum()) / (n * (n - 1))) if n > 1 else 0.0
    u = max(u1, n1 * n2 - u1)
    p = min(1.0, 2 * _normal_sf((u - n1 * n2 / 2 - 0.5) / math.sqrt(var))) if var > 0 else 1.0
    return Test("Mann–Whitney U", u1, p, 2 * (n1 * n2 - u1) / (n1 * n2) - 1, "rank-biserial r")


def wilcoxon(d: object) -> Test:
    """Wilcoxon signed-rank test of paired differences ``d`` (zeros dropped): the statistic min(R+, R−) as scipy
    reports it, the two-sided p-value (normal approximation, tie and continuity corrections) and the matched-pairs
    rank-biserial correlation (R+ − R−)/(R+ + R−)."""
    v = _finite(d)
    v = v[v != 0]
    n = len(v)
    if n == 0:
        return Test("Wilcoxon signed-rank", math.nan, math.nan, math.nan, "rank-biserial r")
    r, ties = ranks(np.abs(v))
    rp, rm = float(r[v > 0].sum()), float(r[v < 0].sum())
    mean = n * (n + 1) / 4
    se = math.sqrt((n * (n + 1) * (2 * n + 1) - float((ties**3 - ties).sum()) / 2) / 24)
    z = (rp - mean) / se if se > 0 else 0.0
    z -= math.copysign(0.5 / se, z) if se > 0 and z != 0 else 0.0
    p = min(1.0, 2 * _normal_sf(abs(z))) if se > 0 else 1.0
    return Test("Wilcoxon signed-rank", min(rp, rm), p, (rp - rm) / (rp + rm), "rank-biserial r")


def _two_sided(null: np.ndarray, observed: float, exact: bool) -> float:
    tol = 1e-12 * max(abs(observed), 1.0)  # equal up to rounding counts as equal
    less, greater = int((null <= observed + tol).sum()), int((null >= observed - tol).sum())
    if exact:
        return min(1.0, 2 * min(less, greater) / len(null))
    return min(1.0, 2 * min(less + 1, greater + 1) / (len(null) + 1))


def permutation_independent(x: object, y: object, *, resamples: int = 10_000, seed: int = 0) -> Test:
    """Permutation test of mean(y) − mean(x): every split of the pooled values when there are at most
    :data:`MAX_EXACT`, else ``resamples`` random ones (the observed split counted, as scipy does)."""
    a, b = _finite(x), _finite(y)
    if len(a) == 0 or len(b) == 0:
        return Test("permutation (difference in means)", math.nan, math.nan, math.nan, "difference in means")
    pooled, n1 = np.concatenate([a, b]), len(a)
    observed = float(b.mean() - a.mean())
    exact = math.comb(len(pooled), n1) <= MAX_EXACT
    if exact:
        masks = np.zeros((math.comb(len(pooled), n1), len(pooled)), bool)
        for row, idx in enumerate(itertools.combinations(range(len(pooled)), n1)):
            masks[row, list(idx)] = True
    else:
        order = np.argsort(np.random.default_rng(seed).random((resamples, len(pooled))), axis=1)
        masks = np.zeros((resamples, len(pooled)), bool)
        np.put_along_axis(masks, order[:, :n1], True, axis=1)
    sums = masks.astype(np.float64) @ pooled
    null = (pooled.sum() - sums) / len(b) - sums / n1
    return Test("permutation (difference in means)", observed, _two_sided(null, observed, exact), observed,
                "difference in means")


def permutation_paired(d: object, *, resamples: int = 10_000, seed: int = 0) -> Test:
    """Sign-flip permutation test of the mean paired difference (every flip when 2^n ≤ :data:`MAX_EXACT`)."""
    v = _finite(d)
    if len(v) == 0:
        return Test("permutation (paired sign flips)", math.nan, math.nan, math.nan, "mean difference")
    observed = float(v.mean())
    exact = 2 ** len(v) <= MAX_EXACT
    if exact:
        signs = 1 - 2 * ((np.arange(2 ** len(v))[:, None] >> np.arange(len(v))) & 1)
    else:
        signs = np.random.default_rng(seed).choice([-1, 1], (resamples, len(v)))
    null = (signs * v).mean(1)
    return Test("permutation (paired sign flips)", observed, _two_sided(null, observed, exact), observed,
                "mean difference")


def hedges_g(x: object, y: object) -> float:
    """Standardised mean difference (mean(y) − mean(x)) / pooled SD, with Hedges' small-sample correction."""
    a, b = _finite(x), _finite(y)
    n1, n2 = len(a), len(b)
    if n1 < 2 or n2 < 2:
        return math.nan
    pooled = math.sqrt(((n1 - 1) * a.var(ddof=1) + (n2 - 1) * b.var(ddof=1)) / (n1 + n2 - 2))
    if pooled == 0:
        return math.nan
    return (1 - 3 / (4 * (n1 + n2) - 9)) * float(b.mean() - a.mean()) / pooled


def cohen_dz(d: object) -> float:
    """Mean of the paired differences over their SD (Cohen's d_z); nan when undefined."""
    v = _finite(d)
    if len(v) < 2 or float(v.std(ddof=1)) == 0:
        return math.nan
    return float(v.mean() / v.std(ddof=1))
