"""The study statistics (xai_core.study.stats, .analysis) against scipy, and on simulated studies with a known
effect: the tests agree with scipy to rounding (same definitions: asymptotic Mann–Whitney U and Wilcoxon signed-rank
with tie and continuity corrections; exact permutation tests), sampled p-values and bootstrap intervals agree within
their Monte Carlo error, a real effect is found with the right size, no effect gives ~5 % false positives, and the
95 % intervals cover the truth ~95 % of the time."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import scipy.stats as ss

from xai_core.study import analysis, stats

REL = 1e-9  # same formula in float64: agreement to rounding


def _accuracies(rng: np.random.Generator, n: int, p: float, items: int = 10) -> np.ndarray:
    return rng.binomial(items, p, n) / items  # per-participant accuracies: discrete, many ties


@pytest.mark.parametrize("seed", range(12))
def test_mann_whitney_and_wilcoxon_equal_scipy(seed):
    rng = np.random.default_rng(seed)
    x, y = _accuracies(rng, 5 + seed, 0.6), _accuracies(rng, 4 + 2 * seed, 0.7)
    ours, ref = stats.mann_whitney(x, y), ss.mannwhitneyu(x, y, method="asymptotic", use_continuity=True)
    assert ours.statistic == pytest.approx(ref.statistic, rel=REL)
    assert ours.p == pytest.approx(ref.pvalue, rel=REL)
    assert ours.effect == pytest.approx(2 * (len(x) * len(y) - ref.statistic) / (len(x) * len(y)) - 1, rel=REL)
    d = _accuracies(rng, 8 + seed, 0.7) - _accuracies(rng, 8 + seed, 0.6)  # zeros and ties
    ours, ref = stats.wilcoxon(d), ss.wilcoxon(d, zero_method="wilcox", correction=True, method="approx")
    assert ours.statistic == pytest.approx(ref.statistic, rel=REL)
    assert ours.p == pytest.approx(ref.pvalue, rel=REL)


def _mean_diff(a, b, axis):  # noqa: ANN001, ANN202
    return np.mean(b, axis=axis) - np.mean(a, axis=axis)


@pytest.mark.parametrize("seed", range(6))
def test_permutation_tests_equal_scipy_exactly_when_enumerated(seed):
    rng = np.random.default_rng(100 + seed)
    x, y = rng.normal(0, 1, 6 + seed % 3), rng.normal(0.8, 1, 5 + seed % 2)
    ours = stats.permutation_independent(x, y)
    ref = ss.permutation_test((x, y), _mean_diff, permutation_type="independent", n_resamples=np.inf, vectorized=True)
    assert ours.p == pytest.approx(ref.pvalue, rel=REL) and ours.statistic == pytest.approx(ref.statistic, rel=REL)
    d = rng.normal(0.4, 1, 9 + seed)
    ours = stats.permutation_paired(d)
    ref = ss.permutation_test((d,), lambda v, axis: np.mean(v, axis=axis), permutation_type="samples",
                              n_resamples=np.inf, vectorized=True)
    assert ours.p == pytest.approx(ref.pvalue, rel=REL)


def test_sampled_permutation_p_and_bootstrap_ci_agree_with_scipy_within_monte_carlo_error():
    rng = np.random.default_rng(7)
    x, y = rng.normal(0, 1, 30), rng.normal(0.4, 1, 30)  # C(60, 30) splits: sampled
    ours = stats.permutation_independent(x, y, resamples=20_000, seed=1)
    ref = ss.permutation_test((x, y), _mean_diff, permutation_type="independent", n_resamples=20_000, vectorized=True,
                              rng=np.random.default_rng(2))
    se = math.sqrt(ref.pvalue * (1 - ref.pvalue) / 20_000) * 2  # each two-sided p is twice a sampled proportion
    assert abs(ours.p - ref.pvalue) < 5 * math.sqrt(2) * se + 1e-4
    v = rng.exponential(1.0, 40)
    lo, hi = stats.bootstrap_ci(v, resamples=20_000, seed=3)
    ref = ss.bootstrap((v,), np.mean, method="percentile", n_resamples=20_000, rng=np.random.default_rng(4))
    sem = v.std(ddof=1) / math.sqrt(len(v))
    # the Monte Carlo error of a 2.5 % quantile of 20,000 resamples is ~0.02 SEM; two independent runs: 0.15 SEM ≈ 5 σ
    assert abs(lo - ref.confidence_interval.low) < 0.15 * sem
    assert abs(hi - ref.confidence_interval.high) < 0.15 * sem


def _study(rng: np.random.Generator, n: int, p: dict[str, float], layout: str, items: int = 20) -> pd.DataFrame:
    """Simulated responses: each participant answers ``items`` items per condition they see; participant skill varies
    (±0.05) around the condition's probability of a correct answer."""
    rows = []
    for k in range(n * (len(p) if layout == "between" else 1)):
        conds = [list(p)[k % len(p)]] if layout == "between" else list(p)
        skill = rng.uniform(-0.05, 0.05)
        for c in conds:
            for i in range(items):
                rows.append({"participant": f"P{k:03d}", "condition": c, "item": f"i{i}", "attention": False,
                             "correct": bool(rng.random() < p[c] + skill), "rt_ms": int(rng.lognormal(8, 0.3))})
    return pd.DataFrame(rows)


def test_a_known_between_subject_effect_is_found_with_its_size():
    rng = np.random.default_rng(11)
    r = analysis.analyse(_study(rng, 60, {"none": 0.60, "gradcam": 0.75}, "between"), "between", ["none", "gradcam"])
    none, cam = r.conditions
    for row, truth in ((none, 0.60), (cam, 0.75)):
        assert row["participants"] == 60 and row["accuracy CI low"] < truth < row["accuracy CI high"]
    c = r.comparisons[0]
    assert c["CI low"] < 0.15 < c["CI high"] and c["p"] < 1e-4 and c["permutation p"] < 1e-3
    sd = math.sqrt((0.6 * 0.4 + 0.75 * 0.25) / 2 / 20 + 0.1**2 / 12)  # binomial spread + skill spread
    assert abs(c["effect size"] - 0.15 / sd) < 3 * math.sqrt(2 / 60 + (0.15 / sd) ** 2 / 240)  # 3 SE of g


def test_a_known_within_subject_effect_is_found_and_paired():
    rng = np.random.default_rng(12)
    r = analysis.analyse(_study(rng, 40, {"none": 0.6, "gradcam": 0.7}, "within"), "within", ["none", "gradcam"])
    c = r.comparisons[0]
    assert c["test"] == "Wilcoxon signed-rank" and c["n"] == "40 pairs"
    assert c["CI low"] < 0.10 < c["CI high"] and c["p"] < 1e-3
    sd_d = math.sqrt((0.6 * 0.4 + 0.7 * 0.3) / 20)  # the skill cancels in the paired difference
    assert abs(c["effect size"] - 0.1 / sd_d) < 3 * math.sqrt(1 / 40 + (0.1 / sd_d) ** 2 / 80)


def test_no_effect_gives_about_five_percent_false_positives_and_intervals_cover():
    rng = np.random.default_rng(13)
    sims = 200
    hits_u = hits_w = covered = 0
    for _ in range(sims):
        x, y = _accuracies(rng, 15, 0.7), _accuracies(rng, 15, 0.7)
        hits_u += stats.mann_whitney(x, y).p < 0.05
        hits_w += stats.wilcoxon(_accuracies(rng, 20, 0.7) - _accuracies(rng, 20, 0.7)).p < 0.05
        v = rng.normal(1.0, 1.0, 30)
        lo, hi = stats.bootstrap_ci(v, resamples=1000, seed=int(rng.integers(1 << 30)))
        covered += lo < 1.0 < hi
    # binomial(200, 0.05): sd 0.015; the rank tests with tied data are somewhat conservative
    assert 0.0 < hits_u / sims < 0.10 and 0.0 < hits_w / sims < 0.10
    assert 0.87 < covered / sims <= 1.0  # nominal 0.95; the percentile bootstrap under-covers a little at n = 30


def test_exclusions_attention_checks_and_holm():
    df = pd.DataFrame([
        {"participant": "P001", "condition": "check", "item": "c1", "attention": True, "correct": False, "rt_ms": 900},
        {"participant": "P001", "condition": "none", "item": "i1", "attention": False, "correct": True, "rt_ms": 1000},
        {"participant": "P002", "condition": "check", "item": "c1", "attention": True, "correct": True, "rt_ms": 800},
        {"participant": "P002", "condition": "none", "item": "i1", "attention": False, "correct": False, "rt_ms": 3000},
        {"participant": "P003", "condition": "a", "item": "i1", "attention": False, "correct": True, "rt_ms": 2000},
        {"participant": "P004", "condition": "b", "item": "i1", "attention": False, "correct": True, "rt_ms": 2000},
    ])
    r = analysis.analyse(df, "between", ["none", "a", "b"], max_failed=0)
    assert r.excluded == ["P001"] and r.analysed == 3
    none = r.conditions[0]
    assert none["participants"] == 1 and none["accuracy"] == 0.0 and none["median RT (s)"] == 3.0  # checks unscored
    assert analysis.analyse(df, "between", ["none", "a"], max_failed=1).excluded == []
    assert analysis._holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
