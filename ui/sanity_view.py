"""Sanity page pieces: the map grid (rows explainers, columns randomisation stages), curves and verdicts."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from ui import services
from ui.evaluation import PALETTE
from ui.figures import fit, overlay_small
from xai_core import render, sanity
from xai_core.metrics import EDGES


def show(report: sanity.SanityReport, image: np.ndarray, digest: str) -> None:
    st.subheader(f"Maps for “{report.class_name}” as the weights are destroyed")
    st.caption("p(class) per stage: " + " → ".join(f"{p:.2f}" for p in report.probability) +
               ". Each map is scaled to its own maximum; a constant map is marked.")
    _grid(report, image)
    st.subheader("Similarity to the trained model's map")
    tabs = st.tabs(list(sanity.SIMILARITIES))
    for tab, sim in zip(tabs, sanity.SIMILARITIES, strict=True):
        with tab:
            st.plotly_chart(_curves(report, sim), width="stretch", key=f"sanity_curve:{sim}",
                            config={"displayModeBar": False})
    rows = [{"map": name, "verdict": report.verdict(name),
             **{f"{s} (last)": report.similarity[name][s][-1] for s in sanity.SIMILARITIES}}
            for name in report.maps]
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")
    png = services.memo(("sanity_png", digest, report_digest(report)), lambda: _png(report, image))
    st.download_button("⬇️ Download the grid as PNG", png, file_name=f"sanity-{digest[:8]}.png", mime="image/png",
                       key="sanity_png")


def report_digest(report: sanity.SanityReport) -> str:
    """A content digest of a report (its stages and every map), for caching what is drawn from it."""
    h = hashlib.blake2b(f"{report.mode}|{report.target}|{report.stages}".encode(), digest_size=16)
    for name, ms in report.maps.items():
        h.update(name.encode())
        for m in ms:
            h.update(np.ascontiguousarray(m, dtype=np.float32).tobytes())
    return h.hexdigest()


def _panel(image: np.ndarray, m: np.ndarray, constant: bool, side: int = 160) -> np.ndarray:
    """|map| over the image; a constant map is shown as a flat grey tile (it carries no information)."""
    over = overlay_small(image, np.abs(m), False, alpha=0.85, cmap="inferno", side=side)
    return np.full_like(over, 235) if constant else over


def _grid(report: sanity.SanityReport, image: np.ndarray) -> None:
    cols = st.columns([1.2] + [1] * len(report.stages))
    cols[0].caption("**explainer**")
    for c, label in zip(cols[1:], report.stages, strict=True):
        c.caption(f"**{label}**")
    for name, ms in report.maps.items():
        cols = st.columns([1.2] + [1] * len(report.stages))
        cols[0].markdown(f"**{name}**  \n{report.verdict(name)}")
        for k, (c, m) in enumerate(zip(cols[1:], ms, strict=True)):
            const = report.constant[name][k]
            c.image(_panel(image, m, const), width="stretch",
                    caption="constant map" if const else (None if k == 0 else
                                                          f"ρ = {report.similarity[name]['Spearman |·|'][k - 1]:.2f}"))


def _curves(report: sanity.SanityReport, sim: str) -> go.Figure:
    fig = go.Figure()
    for i, (name, sims) in enumerate(report.similarity.items()):
        fig.add_trace(go.Scatter(x=report.stages, y=[1.0, *sims], mode="lines+markers", name=name,
                                 line=dict(color=PALETTE[i % len(PALETTE)], dash="dot" if name == EDGES else "solid")))
    fig.add_hline(y=sanity.DEPENDS, line=dict(color="#888", dash="dash", width=1))
    fig.update_layout(height=360, margin=dict(l=8, r=8, t=30, b=8), yaxis=dict(range=[-1.02, 1.02], title=sim),
                      xaxis_title="randomised", title=dict(text=f"{sim} with the trained model's map", font=dict(size=14)))
    return fig


def _png(report: sanity.SanityReport, image: np.ndarray) -> bytes:
    """One row per explainer: the image, then its map at every stage (grid_png puts the input first)."""
    small = fit(image, 256)
    panels: list[tuple[str, np.ndarray]] = []
    for i, (name, ms) in enumerate(report.maps.items()):
        if i:
            panels.append((name, small))
        panels += [(f"{name}\n{label}", _panel(image, m, report.constant[name][k], side=256))
                   for k, (label, m) in enumerate(zip(report.stages, ms, strict=True))]
    return render.grid_png(small, panels, tile=256, cols=len(report.stages) + 1)
