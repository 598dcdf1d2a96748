"""A study's results from its raw responses (the table :func:`storage.responses` gives and the CSV export holds, so
the results page can be recomputed from the exported file).

Rules, as the results page states them:

* exclusions: a participant who failed more than the design's allowed attention checks is left out entirely;
* attention checks are never scored as items;
* per condition: each remaining participant's accuracy and median response time in that condition; the
  condition's accuracy is the mean of its participants' accuracies, its response time the median of their medians,
  each with a percentile-bootstrap 95 % interval over participants (:mod:`.stats`);
* comparisons: every condition against the first one (the baseline, e.g. no map): the difference in accuracy with
  its bootstrap interval, an effect size and a test suited to the design (between-subject: Mann–Whitney U and Hedges'
  g on participants' accuracies; within-subject: Wilcoxon signed-rank and Cohen's d_z on each participant's paired
  difference), a permutation p-value beside it, and Holm's correction over the comparisons (Holm 1979);
* per item (and condition): responses and accuracy — how hard each item was.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from . import stats

COLUMNS = ("participant", "condition", "item", "attention", "correct", "rt_ms")


@dataclass
class Results:
    layout: str
    conditions: list[dict[str, Any]]
    comparisons: list[dict[str, Any]]
    items: list[dict[str, Any]]
    excluded: list[str]
    analysed: int
    notes: list[str] = field(default_factory=list)


def _bool(s: pd.Series) -> pd.Series:
    """A boolean column as read back from a CSV ('True'/'False' strings) or from the database."""
    return s.map(lambda v: v if isinstance(v, (bool, np.bool_)) else str(v).strip().lower() in ("true", "1")).astype(bool)


def clean(df: pd.DataFrame) -> pd.DataFrame:
    """The columns the analysis reads, typed (from the database or a CSV export alike)."""
    missing = [c for c in COLUMNS if c not in df]
    if missing:
        raise ValueError(f"the responses lack the columns {missing}")
    out = df[list(COLUMNS)].copy()
    out["participant"], out["condition"], out["item"] = (out[c].astype(str) for c in ("participant", "condition", "item"))
    out["attention"], out["correct"] = _bool(out["attention"]), _bool(out["correct"])
    out["rt_ms"] = pd.to_numeric(out["rt_ms"], errors="coerce")
    return out


def excluded(df: pd.DataFrame, max_failed: int) -> list[str]:
    """Participants who failed more than ``max_failed`` attention checks."""
    checks = df[df["attention"]]
    failed = (~checks["correct"]).groupby(checks["participant"]).sum()
    return sorted(failed[failed > max_failed].index)


def per_participant(df: pd.DataFrame) -> pd.DataFrame:
    """Per (participant, condition) over scored items: n, accuracy, median response time in seconds."""
    scored = df[~df["attention"]]
    g = scored.groupby(["participant", "condition"])
    return pd.DataFrame({"n": g.size(), "accuracy": g["correct"].mean(),
                         "rt_s": g["rt_ms"].median() / 1000.0}).reset_index()


def _holm(ps: list[float]) -> list[float]:
    order = sorted(range(len(ps)), key=lambda i: (math.isnan(ps[i]), ps[i]))
    out, running = [math.nan] * len(ps), 0.0
    for rank, i in enumerate(order):
        if math.isnan(ps[i]):
            continue
        running = max(running, min(1.0, (len(ps) - rank) * ps[i]))
        out[i] = running
    return out


def analyse(responses: pd.DataFrame, layout: str, conditions: list[str] | tuple[str, ...], max_failed: int = 0, *,
            seed: int = 0, resamples: int = 4000) -> Results:
    """The results of a study (see the module docstring); ``conditions`` in the design's order, the first is the
    baseline of the comparisons."""
    df = clean(responses)
    out = excluded(df, max_failed)
    df = df[~df["participant"].isin(out)]
    pp = per_participant(df)
    rows = []
    for j, c in enumerate(conditions):
        sub = pp[pp["condition"] == c]
        lo, hi = stats.bootstrap_ci(sub["accuracy"], resamples=resamples, seed=seed + j)
        rlo, rhi = stats.bootstrap_ci(sub["rt_s"], np.median, resamples=resamples, seed=seed + 100 + j)
        rows.append({"condition": c, "participants": int(len(sub)), "responses": int(sub["n"].sum()),
                     "accuracy": float(sub["accuracy"].mean()) if len(sub) else math.nan, "accuracy CI low": lo,
                     "accuracy CI high": hi, "median RT (s)": float(sub["rt_s"].median()) if len(sub) else math.nan,
                     "RT CI low": rlo, "RT CI high": rhi})
    comparisons = [_compare(pp, layout, conditions[0], c, seed + 200 + j, resamples)
                   for j, c in enumerate(conditions[1:])]
    for row, adj in zip(comparisons, _holm([r["p"] for r in comparisons]), strict=True):
        row["p (Holm)"] = adj
    scored = df[~df["attention"]]
    g = scored.groupby(["item", "condition"])["correct"]
    items = [{"item": i, "condition": c, "responses": int(n), "accuracy": float(a)}
             for (i, c), n, a in zip(g.size().index, g.size(), g.mean(), strict=True)]
    notes = [] if len(pp) else ["No scored response yet."]
    return Results(layout, rows, comparisons, items, out, int(pp["participant"].nunique()), notes)


def _compare(pp: pd.DataFrame, layout: str, base: str, other: str, seed: int, resamples: int) -> dict[str, Any]:
    acc = pp.pivot_table(index="participant", columns="condition", values="accuracy")
    if layout == "within":
        both = acc[[base, other]].dropna() if base in acc and other in acc else pd.DataFrame(columns=[base, other])
        d = (both[other] - both[base]).to_numpy(float)
        test, perm = stats.wilcoxon(d), stats.permutation_paired(d, seed=seed)
        lo, hi = stats.bootstrap_ci(d, resamples=resamples, seed=seed)
        effect, effect_name, n = stats.cohen_dz(d), "Cohen's d_z", f"{len(d)} pairs"
        diff = float(d.mean()) if len(d) else math.nan
    else:
        x = pp.loc[pp["condition"] == base, "accuracy"].to_numpy(float)
        y = pp.loc[pp["condition"] == other, "accuracy"].to_numpy(float)
        test, perm = stats.mann_whitney(x, y), stats.permutation_independent(x, y, seed=seed)
        lo, hi = stats.bootstrap_diff_ci(x, y, resamples=resamples, seed=seed)
        effect, effect_name, n = stats.hedges_g(x, y), "Hedges' g", f"{len(x)} vs {len(y)} participants"
        diff = float(y.mean() - x.mean()) if len(x) and len(y) else math.nan
    return {"comparison": f"{other} − {base}", "n": n, "accuracy difference": diff, "CI low": lo, "CI high": hi,
            "effect size": effect, "effect": effect_name, "rank-biserial r": test.effect, "test": test.name,
            "statistic": test.statistic, "p": test.p, "permutation p": perm.p}
