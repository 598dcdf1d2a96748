"""The Study results page's pieces: the tables (formatted for reading; plain HTML tables, so the numbers are text a
browser test can read back), the statement of the analysis, and the downloads (CSV, Parquet, the HTML report)."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd
import streamlit as st

from xai_core import report
from xai_core.study import LAYOUTS, TASKS, Design, analysis, export

from . import escape
from .report_button import report_download


def _num(v: Any, digits: int = 3) -> str:
    return "–" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.{digits}f}"


def _ci(lo: float, hi: float, digits: int = 3) -> str:
    return "–" if math.isnan(lo) else f"{lo:.{digits}f} – {hi:.{digits}f}"


def condition_rows(r: analysis.Results, d: Design) -> list[dict[str, str]]:
    return [{"condition": c["condition"], "shown as": d.labels.get(c["condition"], c["condition"]),
             "participants": str(c["participants"]), "responses": str(c["responses"]),
             "accuracy": _num(c["accuracy"]), "accuracy 95 % CI": _ci(c["accuracy CI low"], c["accuracy CI high"]),
             "median RT (s)": _num(c["median RT (s)"], 2), "RT 95 % CI": _ci(c["RT CI low"], c["RT CI high"], 2)}
            for c in r.conditions]


def comparison_rows(r: analysis.Results) -> list[dict[str, str]]:
    return [{"comparison": c["comparison"], "n": c["n"], "accuracy difference": _num(c["accuracy difference"]),
             "95 % CI": _ci(c["CI low"], c["CI high"]), c["effect"]: _num(c["effect size"], 2),
             "rank-biserial r": _num(c["rank-biserial r"], 2), "test": c["test"], "statistic": _num(c["statistic"], 1),
             "p": _num(c["p"], 4), "permutation p": _num(c["permutation p"], 4), "p (Holm)": _num(c["p (Holm)"], 4)}
            for c in r.comparisons]


def statement(d: Design) -> str:
    test = "Wilcoxon signed-rank test on each participant's paired difference (Cohen's d_z)" if d.layout == "within" \
        else "Mann–Whitney U test on participants' accuracies (Hedges' g)"
    return (f"{LAYOUTS[d.layout].capitalize()}. Unit of analysis: the participant. Accuracy per condition is the mean of "
            f"the participants' accuracies, response time the median of their median times; 95 % intervals are "
            f"percentile bootstraps over participants (4,000 resamples, seed {d.seed}). Each condition is compared with "
            f"the first ({escape.markdown(d.labels.get(d.conditions[0], d.conditions[0]), 60)}): {test}, two-sided, "
            f"normal approximation with tie and continuity corrections, and a permutation test beside it; Holm's "
            f"correction over the comparisons. Attention checks are not scored; a participant who failed more than "
            f"{d.max_failed_checks} of them is excluded entirely. Response times run on the server from when a "
            f"question is first drawn to when its answer arrives.")


def balance_rows(d: Design, people: list[tuple[int, str, bool]], df: pd.DataFrame) -> list[dict[str, str]]:
    if d.layout == "between":
        return [{"condition": c, "participants": str(sum(pc == c for _, pc, _ in people))} for c in d.conditions]
    scored = df[~df["attention"].astype(bool)] if len(df) else df
    return [{"condition": c, "trials answered": str(int((scored["condition"] == c).sum()) if len(scored) else 0)}
            for c in d.conditions]


def downloads(code: str, d: Design, df: pd.DataFrame, r: analysis.Results, balance: list[dict[str, str]]) -> None:
    c1, c2, c3 = st.columns(3)
    c1.download_button("⬇️ Responses (CSV)", export.to_csv(df), file_name=f"study-{code}-responses.csv",
                       mime="text/csv", key="sr_csv", help="One row per answer; text that a spreadsheet would run as a "
                       "formula starts with an apostrophe.")
    c2.download_button("⬇️ Responses (Parquet)", export.to_parquet(df), file_name=f"study-{code}-responses.parquet",
                       mime="application/octet-stream", key="sr_parquet")
    settings = {"task": f"{d.task}: {TASKS[d.task]}", "design": LAYOUTS[d.layout],
                "conditions": [f"{c} ({d.labels.get(c, c)})" for c in d.conditions], "items in the pool": len(d.items),
                "items per participant": d.items_per_participant, "attention checks": len(d.checks),
                "failed checks allowed": d.max_failed_checks, "images": d.source, "model": d.model,
                "analysis": statement(d).replace("\\", ""), "excluded participants": r.excluded or "none",
                "participants analysed": r.analysed}
    tables = [("Per condition", condition_rows(r, d)), ("Comparisons", comparison_rows(r)),
              ("Per item (hardest first)", sorted(r.items, key=lambda i: i["accuracy"])), ("Balance", balance)]
    with c3:
        report_download(lambda: report.study_report(d.name, settings, tables, seed=d.seed), "sr_report",
                        f"study-{code}-report.html")
