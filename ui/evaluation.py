"""Evaluate page pieces: the box figure, curve plots, the ranking table, cached reports and the stability of the
ranking across references."""

from __future__ import annotations

import base64
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

import xai_core as xc
from ui import evaluation_meta, services, widgets
from ui.figures import fit
from xai_core import metrics, render

PALETTE = ["#c0392b", "#2471a3", "#229954", "#8e44ad", "#d68910", "#17a589", "#7f8c8d", "#a04000", "#1b2631"]
REFERENCE_STYLE = dict(dash="dot", width=1.5)
STABILITY_METRICS = ("aopc_morf", "deletion", "aopc_lerf")  # the first one chosen is re-run under every reference


def box_figure(image: np.ndarray, box: tuple[float, float, float, float] | None, side: int = 420) -> go.Figure:
    """The image with the annotated box; drag a rectangle on it (box select) to set a new box."""
    small = fit(image, side)
    h, w = small.shape[:2]
    s = w / image.shape[1]
    uri = "data:image/png;base64," + base64.b64encode(render.to_png(small)).decode()
    fig = go.Figure(go.Image(source=uri, hoverinfo="skip"))
    # An invisible grid of points in image coordinates: plotly only reports box selections over data points.
    ys, xs = np.mgrid[0:image.shape[0]:max(1, image.shape[0] // 40), 0:image.shape[1]:max(1, image.shape[1] // 40)]
    fig.add_trace(go.Scatter(x=(xs.ravel() * s), y=(ys.ravel() * s), mode="markers", marker=dict(opacity=0, size=4),
                             customdata=np.stack([xs.ravel(), ys.ravel()], 1), showlegend=False,
                             hovertemplate="x %{customdata[0]}, y %{customdata[1]}<extra></extra>"))
    if box is not None:
        x0, y0, x1, y1 = (v * s for v in box)
        fig.add_shape(type="rect", x0=x0, y0=y0, x1=x1, y1=y1, line=dict(color="#00e676", width=3))
    fig.update_layout(height=h + 30, margin=dict(l=0, r=0, t=30, b=0), dragmode="select",
                      title=dict(text="Drag a box around the object", font=dict(size=13)),
                      xaxis=dict(visible=False, range=[-0.5, w - 0.5]),
                      yaxis=dict(visible=False, range=[h - 0.5, -0.5], scaleanchor="x"))
    return fig


def selected_box(event: Any, image: np.ndarray, side: int = 420) -> tuple[int, int, int, int] | None:
    """The box a user dragged on :func:`box_figure`, in image pixels (None if nothing was selected)."""
    try:
        boxes = event["selection"]["box"]
    except (KeyError, TypeError):
        return None
    if not boxes:
        return None
    s = fit(image, side).shape[1] / image.shape[1]
    b = boxes[-1]
    xs, ys = sorted(b["x"]), sorted(b["y"])
    h, w = image.shape[:2]
    x0, x1 = (int(np.clip(round(v / s), 0, w)) for v in xs)
    y0, y1 = (int(np.clip(round(v / s), 0, h)) for v in ys)
    return (x0, y0, x1, y1) if x1 > x0 and y1 > y0 else None


def take_drawn_box(event: Any, image: np.ndarray, box_key: str) -> None:
    """on_select callback: a dragged box becomes the box and fills the number inputs (runs before widgets exist)."""
    drawn = selected_box(event, image)
    if drawn is not None:
        st.session_state[box_key] = drawn
        for n, v in zip(("x0", "y0", "x1", "y1"), drawn, strict=True):
            st.session_state[f"{box_key}:{n}"] = v


def curve_figure(report: metrics.Report, metric_id: str, references: set[str], step: int | None = None) -> go.Figure:
    """One curve per map, the metric's value in the legend; reference maps dotted. (Built in one constructor call:
    half the time of ``update_layout``, which matters while partial reports are redrawn.)"""
    spec = metrics.get_metric(metric_id)
    traces = []
    for i, name in enumerate(report.maps):
        c = report.curves[(name, metric_id)]
        traces.append(go.Scatter(
            x=c.xs, y=c.probs, mode="lines", name=f"{name} ({c.value:.3f})",
            line=dict(color=PALETTE[i % len(PALETTE)], **(REFERENCE_STYLE if name in references else {"width": 2.5})),
            hovertemplate=f"{name}<br>{c.x_label} %{{x:.3g}}<br>p = %{{y:.3f}}<extra></extra>"))
    better = "higher" if spec.better == "higher" else "lower"
    fig = go.Figure(data=traces, layout=dict(
        height=360, margin=dict(l=8, r=8, t=40, b=8), legend=dict(title=dict(text=f"{spec.short} ({better} is better)")),
        title=dict(text=f"{spec.title}: p({report.class_name})", font=dict(size=14)),
        xaxis=dict(title=dict(text=report.curves[(report.maps[0], metric_id)].x_label)),
        yaxis=dict(title=dict(text="class probability"), range=[0, 1.02])))
    if step is not None:
        c0 = report.curves[(report.maps[0], metric_id)]
        fig.add_vline(x=float(c0.xs[min(step, len(c0.xs) - 1)]), line=dict(color="#888", dash="dash", width=1))
    return fig


def ranking(report: metrics.Report, references: set[str]) -> list[dict[str, Any]]:
    """Table rows sorted by mean rank over the metrics (1 = best on every metric), references marked."""
    rows = report.rows()
    ranks = np.zeros((len(rows), len(report.metrics)))
    for j, m in enumerate(report.metrics):
        spec = metrics.get_metric(m)
        raw = np.array([r[spec.column] for r in rows], dtype=float)
        if np.isnan(raw).all():  # no map has a value (e.g. PIC refused the image): the metric ranks nobody
            ranks[:, j] = (len(raw) + 1) / 2
            continue
        vals = np.nan_to_num(raw, nan=-np.inf if spec.better == "higher" else np.inf)
        order = (-vals if spec.better == "higher" else vals).argsort(kind="stable")
        ranks[order, j] = np.arange(1, len(vals) + 1)
    for r, rk in zip(rows, ranks.mean(1) if len(report.metrics) else np.zeros(len(rows)), strict=True):
        r["kind"] = "reference" if r["map"] in references else "explainer"
        r["mean rank"] = float(rk)
    return sorted(rows, key=lambda r: r["mean rank"])


def is_cached(key: tuple) -> bool:
    return services.store().get(("evaluate", *key)) is not None


def references_for(digest: str, image: np.ndarray, seed: int) -> dict[str, np.ndarray]:
    return services.memo(("refmaps", digest, seed), lambda: metrics.reference_maps(image, seed))


def explainer_titles() -> dict[str, str]:
    return {s.id: s.title for s in xc.list_explainers()}


def show_report(report: metrics.Report, references: set[str], image_name: str, meta: Any = None) -> None:
    """The ranking table, a verdict against the edge detector, curves with a step slider, and downloads; ``meta``:
    the session's last metric meta-evaluation (its failing metrics' columns are greyed, each with its sentence)."""
    rows = ranking(report, references)
    table = pd_table(rows, report)
    failing = evaluation_meta.failing(meta) if meta is not None else {}
    if failing:
        table = evaluation_meta.grey(table, meta)
    st.subheader(f"Ranking for “{report.class_name}”")
    st.caption(f"{report.passes} perturbed inputs in {report.seconds:.1f} s · ↑ higher is better, ↓ lower is better · "
               "best value per column in green; rows sorted by their mean rank over the metrics. "
               "Reference maps are model-free baselines.")
    st.dataframe(table, hide_index=True, width="stretch")
    for line in verdicts(report, references):
        st.warning(line, icon="📰")
    for note in report.notes:  # why a value is missing: one line each
        st.caption(f"ℹ️ {note}")
    for column, why in failing.items():
        if column in table.data.columns:
            st.caption(f"⚠️ {column} is greyed: {why} (meta-evaluation on the set tab)")
    st.download_button("⬇️ Download the table (CSV)", report.csv(), file_name=f"evaluation-{image_name}.csv",
                       mime="text/csv", key="eval_csv")
    curve_ids = [m for m in report.metrics if (report.maps[0], m) in report.curves] if report.maps else []
    if not curve_ids:
        return
    tabs = st.tabs([metrics.get_metric(m).title for m in curve_ids])
    for tab, mid in zip(tabs, curve_ids, strict=True):
        with tab:
            n = len(report.curves[(report.maps[0], mid)].xs)
            step = st.slider("Step", 0, n - 1, n // 4, key=f"step:{mid}",
                             help="Shows each map's perturbed input at this step of the curve.") if n > 1 else None
            st.plotly_chart(curve_figure(report, mid, references, step), width="stretch", key=f"curve:{mid}",
                            config={"displayModeBar": False})
            if step is None or (report.maps[0], mid) not in report.plans:  # a probe's curve (ROAD): no input kept
                continue
            cols = st.columns(min(len(report.maps), 5))
            for i, name in enumerate(report.maps):
                c = report.curves[(name, mid)]
                cols[i % len(cols)].image(report.image_at(name, mid, step), width="stretch",
                                          caption=f"{name} · p={c.probs[step]:.2f}")


def pd_table(rows: list[dict[str, Any]], report: metrics.Report) -> Any:
    """A pandas Styler: numbers to 3 decimals, the best value of each metric column highlighted."""
    df = pd.DataFrame(rows)
    value_cols = [metrics.get_metric(m).column for m in report.metrics]
    df = df[["map", "kind", "mean rank", *value_cols]]
    style = df.style.format(precision=3, subset=value_cols).format(precision=1, subset=["mean rank"])
    for m in report.metrics:
        spec = metrics.get_metric(m)
        pick = style.highlight_max if spec.better == "higher" else style.highlight_min
        style = pick(subset=[spec.column], props="background-color: #c8f7c5; font-weight: bold")
    return style


def verdicts(report: metrics.Report, references: set[str]) -> list[str]:
    """'News' lines: explainers that do not beat the edge detector on most metrics."""
    if metrics.EDGES not in references:
        return []
    out = []
    edge = report.values[metrics.EDGES]
    for name in report.maps:
        if name in references:
            continue
        lost = [metrics.get_metric(m).short for m in report.metrics
                if (report.values[name][m] <= edge[m] if metrics.get_metric(m).better == "higher"
                    else report.values[name][m] >= edge[m])]
        if len(lost) * 2 >= len(report.metrics):
            out.append(f"**{name}** does not beat the model-free edge detector on {len(lost)} of "
                       f"{len(report.metrics)} metrics ({', '.join(lost)}).")
    return out


def show_stability(ctx: Any, key: tuple, image: np.ndarray, maps: dict[str, np.ndarray], target: int | None,
                   curve_ids: list[str], params: dict[str, dict], seed: int, slot: Any) -> None:
    """The "stability" line: is the ranking of the explainers' maps by AOPC (or deletion) the same under every
    reference (black, mean, blurred, noise)? Each reference is one more batched run of that metric."""
    metric = next((m for m in STABILITY_METRICS if m in curve_ids), None)
    if metric is None:
        return
    if len(maps) < 2:
        st.caption("Stability across references: pick two explainers or more to compare their ranking.")
        return
    short = metrics.get_metric(metric).short
    if not st.toggle(f"Stability: re-run {short} under every reference", True, key="eval_stability",
                     help="Ranks the explainers' maps with black, mean-colour, blurred and noise references and says "
                          "whether the order changes. Costs one more curve run per reference."):
        return
    bar = widgets.LazyProgress(slot, "Stability across references")
    try:
        result = services.memo(("stability", *key, metric), lambda: metrics.reference_stability(
            ctx.workbench, image, maps, target, metric=metric, params=params.get(metric), seed=seed, progress=bar))
    except xc.XaiError as err:
        st.error(str(err))
        return
    bar.clear()
    (st.success if result.stable else st.warning)(result.text(), icon="⚖️")
