"""Evaluate page: which metrics can be trusted for this model? The meta-evaluation after MetaQuantus (Hedström et
al., TMLR 2023) as a background job over a set of images, its verdict table (IAC/IEC/MC per metric, failing metrics
greyed out with the sentence that says why) and the Kendall τ agreement of the metrics that pass."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

import xai_core as xc
from ui import jobs
from ui.state import Context
from xai_core import metrics

META = metrics.meta_evaluation
GREY = "color: #9e9e9e"
COLUMNS = {"iac_nr": "IAC_NR", "iac_ar": "IAC_AR", "iec_nr": "IEC_NR", "iec_ar": "IEC_AR", "MC": "MC"}
HELP = ("Each metric is re-run under K draws of four perturbations: minor and disruptive noise on a copy of the "
        "model's weights and on the images. A reliable metric keeps its scores (IAC_NR) and its ranking of the "
        "explainers (IEC_NR) under minor noise, and its scores change (IAC_AR) and get worse (IEC_AR) under disruptive "
        "noise. MC is their mean (1 is ideal); a metric fails when it does not react, when its ranking survives minor "
        "noise no better than chance, or when MC is not above 0.5.")


def _key(ctx: Context) -> str:
    return f"meta_eval:{ctx.model_key}:{ctx.options.result_key}"


def latest(ctx: Context) -> Any:
    """The last finished meta-evaluation (a ``MetaReport``) for the session's model and run options, or None."""
    job = st.session_state.get(_key(ctx))
    return job.result if job is not None and job.done and job.error is None and not job.cancelled else None


def failing(report: Any) -> dict[str, str]:
    """Column header (``metrics.get_metric(id).column``) → the sentence why, for every metric that failed."""
    return {metrics.get_metric(v.metric).column: v.reason for v in report.verdicts if v.passed is False}


def grey(style: Any, report: Any) -> Any:
    """A pandas Styler with the failing metrics' columns greyed out (use on any table with metric columns)."""
    cols = [c for c in failing(report) if c in style.data.columns]
    return style.map(lambda _v: GREY, subset=cols) if cols else style


def panel(ctx: Context, items: Sequence[metrics.Item], explainers: Sequence[str], metric_ids: Sequence[str],
          explainer_params: dict[str, dict], metric_params: dict[str, dict], *, references: bool = True,
          seed: int = 0) -> None:
    """Settings, a start button (a background job with a Stop button) and, once done, :func:`show`. ``items`` are the
    set's images (boxes or masks feed the localisation metrics); the first ``n`` of them are used."""
    st.subheader("Which metrics can be trusted for this model?")
    st.caption(HELP)
    c1, c2, c3 = st.columns(3)
    n = int(c1.number_input("Images", 2, max(2, len(items)), min(8, max(2, len(items))), key="meta_images"))
    k = int(c2.number_input("Perturbations per test (K)", 1, 10, 3, key="meta_k"))
    strong = float(c3.number_input("Disruptive weight noise σ", 0.1, 5.0, META.Levels().model_disruptive, 0.1,
                                   key="meta_sigma", help="MetaQuantus uses 2.0 for MNIST networks and 0.5 for "
                                                          "ImageNet ResNets; it should change some predictions."))
    refs = [metrics.RANDOM, metrics.EDGES] if references else []
    chosen = [*explainers, *refs]
    st.caption(f"Runs the set's evaluation {1 + 4 * k} times over {min(n, len(items))} images and {len(chosen)} maps.")
    if len(items) < 2 or len(chosen) < 2 or not metric_ids:
        st.info("The meta-evaluation needs two images or more, two maps or more (explainers or reference maps) and "
                "one metric or more.")
        return
    used = list(items)[:n]
    requests = [xc.ExplainRequest.make(e, None, explainer_params.get(e, {}), seed) for e in explainers]
    regions = [_region(it) for it in used]

    def make() -> Any:
        return lambda progress: META.meta_evaluate(
            ctx.workbench, [it.image for it in used], None, [*requests, *refs], list(metric_ids),
            perturbations=k, seed=seed, params=metric_params, regions=regions,
            levels=META.Levels(model_disruptive=strong), progress=progress)

    jobs.panel(_key(ctx), "🔬 Meta-evaluate the metrics", make, show, title="Meta-evaluation",
               help="Re-runs the chosen metrics under noise on the model and the images (MetaQuantus).")


def _region(item: metrics.Item) -> np.ndarray | None:
    if item.region is not None:
        return item.region
    return metrics.box_region(item.image.shape[:2], item.box) if item.box is not None else None


def table(report: Any) -> pd.DataFrame:
    """One row per metric: the four criteria and MC (means over the model and input tests), verdict and why."""
    rows = []
    for r, v in zip(report.rows(), report.verdicts, strict=True):
        mark = "✅ passes" if v.passed else ("❌ fails" if v.passed is False else "– not judged")
        rows.append({"metric": metrics.get_metric(v.metric).column, **{COLUMNS[c]: r[c] for c in COLUMNS},
                     "verdict": mark, "why": v.reason})
    return pd.DataFrame(rows)


def tau_figure(report: Any) -> go.Figure:
    """Kendall τ between the passing metrics' rankings of the explainers (mean over images), −1..1."""
    names = [metrics.get_metric(m).column for m in report.tau_metrics]
    tau = np.asarray(report.tau, dtype=float)
    fig = go.Figure(go.Heatmap(z=tau, x=names, y=names, zmin=-1, zmax=1, colorscale="RdBu", reversescale=True,
                               text=np.vectorize(lambda v: "–" if np.isnan(v) else f"{v:.2f}")(tau),
                               texttemplate="%{text}", hovertemplate="%{y} vs %{x}: τ = %{z:.2f}<extra></extra>",
                               colorbar=dict(title="τ")))
    side = 120 + 60 * len(names)
    fig.update_layout(height=side, margin=dict(l=8, r=8, t=40, b=8), yaxis=dict(autorange="reversed"),
                      title=dict(text="Agreement of the metrics that pass (Kendall τ)", font=dict(size=14)))
    return fig


def show(report: Any) -> None:
    """The verdict table (failing metrics greyed out, each with its sentence) and the agreement heatmap."""
    df = table(report)
    nums = list(COLUMNS.values())
    style = df.style.format(precision=2, subset=nums, na_rep="–").apply(
        lambda row: [GREY if row["verdict"] != "✅ passes" else ""] * len(row), axis=1)
    st.dataframe(style, hide_index=True, width="stretch",
                 column_config={"why": st.column_config.TextColumn("why", width="large")})
    changed = {t: int(c.sum()) for t, c in report.counted.items() if "Adversary" in t}
    draws = next(iter(report.counted.values())).size
    st.caption(f"{len(report.targets)} images × {len(report.explainers)} maps ({', '.join(report.explainers)}) in "
               f"{report.seconds:.0f} s. Disruptive noise changed {changed.get('Model Adversary Test', 0)} of {draws} "
               f"predictions (weights) and {changed.get('Input Adversary Test', 0)} of {draws} (images): only those "
               "count for IAC_AR and IEC_AR, only unchanged ones for the resilience columns.")
    for v in report.verdicts:
        if v.passed is not True:
            st.caption(f"{'❌' if v.passed is False else '–'} {v.reason}")
    if len(report.tau_metrics) >= 2:
        st.plotly_chart(tau_figure(report), width="stretch", config={"displayModeBar": False}, key="meta_tau")
        st.caption("τ = 1: two metrics rank the explainers the same on every image; 0: unrelated; −1: reversed.")
    else:
        st.caption("Fewer than two metrics pass, so there is no agreement between metrics to show.")
