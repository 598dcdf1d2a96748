"""Lessons 1 and 2 on the Learn page: shattered gradients and the Integrated Gradients path."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from xai_core import render
from xai_core.lessons import gradients

from . import services


def line(title: str, x: np.ndarray, ys: dict[str, np.ndarray], x_label: str, y_label: str) -> go.Figure:
    fig = go.Figure([go.Scatter(x=x, y=y, mode="lines+markers", name=n) for n, y in ys.items()])
    fig.update_layout(title=title, height=300, margin=dict(l=8, r=8, t=40, b=8), xaxis_title=x_label,
                      yaxis_title=y_label)
    return fig


def twin(title: str, x: np.ndarray, left: tuple[str, np.ndarray], right: tuple[str, np.ndarray], x_label: str) -> go.Figure:
    """Two curves of different units over one x: ``left`` on the left axis, ``right`` on its own axis at the right."""
    fig = go.Figure([go.Scatter(x=x, y=left[1], mode="lines+markers", name=left[0]),
                     go.Scatter(x=x, y=right[1], mode="lines+markers", name=right[0], yaxis="y2")])
    fig.update_layout(title=title, height=320, margin=dict(l=8, r=8, t=40, b=8), xaxis_title=x_label,
                      yaxis=dict(title=left[0]), yaxis2=dict(title=right[0], overlaying="y", side="right", showgrid=False),
                      legend=dict(orientation="h", y=-0.25))
    return fig


def shattered(ctx, target: int) -> None:  # noqa: ANN001
    st.markdown("The image is moved right by 0–3 pixels. A plain gradient map should move with it — instead, its "
                "fine pattern changes (Balduzzi et al.: gradients 'shatter' in deep nets). SmoothGrad averages the "
                "gradient over noisy copies.")
    c1, c2 = st.columns(2)
    noise = c1.slider("SmoothGrad noise (fraction of the input range)", 0.0, 0.5, 0.15, 0.05, key="l1_noise")
    samples = c2.slider("SmoothGrad samples", 2, 32, 8, 2, key="l1_samples")
    r = services.memo(("l1", ctx.model_key, ctx.digest, target, noise, samples),
                      lambda: gradients.shattered(ctx.workbench, ctx.image, target, noise=noise, samples=samples))
    st.image([im for im in r.inputs], caption=[f"shift {k} px" for k in r.shifts], width=150)
    st.image([render.colorize(m, False) for m in r.plain], caption=[f"gradient, shift {k}" for k in r.shifts], width=150)
    st.image([render.colorize(m, False) for m in r.smooth], caption=[f"SmoothGrad, shift {k}" for k in r.shifts],
             width=150)
    a, b = st.columns(2)
    a.metric("Gradient: agreement with the unshifted map", f"{r.plain_stability:.2f}")
    b.metric("SmoothGrad: agreement", f"{r.smooth_stability:.2f}", f"{r.smooth_stability - r.plain_stability:+.2f}")
    st.caption("Agreement: mean correlation of each shifted copy's map (moved back) with the unshifted one, read at an "
               "8-pixel scale. Raise the samples to see it climb; noise 0 gives the plain gradient back.")


RULE_TEXT = {"adaptive": "adaptive (points where the sum misses)", "midpoint": "equal steps (midpoint rule)"}


def ig_path(ctx, target: int) -> None:  # noqa: ANN001
    st.markdown("Integrated Gradients walks a straight path from a **baseline** x′ to the image and adds up the "
                "gradients on the way. Completeness: the attributions sum to f(x) − f(x′) — once the path is sampled "
                "finely enough. The defaults (blurred baseline, 64 adaptive points) close the gap to under 5% on five "
                "of the seven samples (the cat: 0.2%); the gap below says whether they do on your image.")
    c1, c2, c3 = st.columns([2, 1, 1])
    baseline = c1.radio("Baseline (what 'missing' means)", gradients.BASELINES, index=1, horizontal=True,
                        key="l2_baseline")
    rule = c2.radio("Points on the path", gradients.RULES, format_func=RULE_TEXT.get, key="l2_rule",
                    help="Adaptive: 17 equal steps, then more points on the intervals whose sum misses the logit's "
                         "change there. Equal steps: the midpoints of equal intervals.")
    steps = c3.slider("Steps on the path", 4, 256, 64, 4, key="l2_steps",
                      help="Each step is one forward and one backward pass: 64 take about 10 s on one CPU core, "
                           "256 about 40 s.")
    r = services.memo(("l2", ctx.model_key, ctx.digest, target, baseline, rule, steps),
                      lambda: gradients.ig_path(ctx.workbench, ctx.image, target, baseline=baseline, steps=steps,
                                                rule=rule))
    st.image([im for im in r.pictures], caption=[f"α = {a:.2f}" for a in r.picture_alphas], width=150)
    left, right = st.columns(2)
    left.plotly_chart(twin("Along the path", r.alphas, ("logit f(x′ + α(x − x′))", r.scores),
                           ("integrand ∇f · (x − x′)", r.integrand), "α"), width="stretch", key="l2_curve")
    with right:
        st.image(render.colorize(r.attribution, True), caption="IG map (red +, blue −)", width=260)
    a, b, c = st.columns(3)
    a.metric("Σ attributions", f"{r.total:.3f}")
    b.metric("f(x) − f(x′)", f"{r.difference:.3f}")
    c.metric("Completeness gap", f"{r.gap:.1%}")
    peak = int(np.argmax(np.abs(r.integrand)))
    if r.gap > gradients.COMPLETE:
        st.caption(f"The gap is over {gradients.COMPLETE:.0%}: the integrand peaks at α = {r.alphas[peak]:.2f} "
                   f"({r.integrand[peak]:.3g}), and {steps} points sample its narrow spikes too coarsely. Raise the "
                   "steps, use the adaptive points, or try another baseline.")
    else:
        st.caption(f"The gap is under {gradients.COMPLETE:.0%}: the {steps} points sample the integrand finely enough.")
    st.caption("Fewer points, a larger gap: with the black baseline and equal steps this model's integrand spikes "
               "near α ≈ 0.03, and on the cat sample the gap is 70% at 16 steps, 32% at 64 and 3% at 256. "
               "Sturmfels et al. 2020: a black baseline says black pixels are 'missing', so dark parts of the object "
               "get no attribution; a blurred one says fine detail is what is missing.")
    with st.expander("Why not just gradient × input? f(x) = 1 − ReLU(1 − x)"):
        toy = gradients.relu_toy()
        st.latex(r"f(x) = 1 - \mathrm{ReLU}(1 - x),\quad x = 2,\ x' = 0")
        st.table({k: [f"{v:g}"] for k, v in toy.items()})
        st.caption("f changes from 0 to 1, yet the gradient at x = 2 is 0: gradient × input gives 0 and breaks "
                   "sensitivity. IG integrates over the path, where the gradient is 1 for x < 1, and gets 1.")
