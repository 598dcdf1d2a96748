"""Sanity page pieces: the map grid (rows explainers, columns randomisation stages), curves with the range over seeds,
verdicts, and the random-logit panel."""

from __future__ import annotations

import hashlib
import io

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st
from PIL import Image

from ui import report_button, services
from ui.evaluation import PALETTE
from ui.figures import fit, overlay_small
from xai_core import render, sanity
from xai_core.metrics import EDGES


def show(ctx, report: sanity.SanityReport, image: np.ndarray, digest: str,  # noqa: ANN001 - ui.state.Context
         panels: dict | None = None) -> None:
    """The finished check: grid, curves, table, downloads; ``panels``: the cells' pictures already made while it ran."""
    n = len(report.seeds)
    st.subheader(f"Maps for “{report.class_name}” as the weights are destroyed")
    st.caption("Median p(class) per stage: " + " → ".join(f"{p:.2f}" for p in report.probability) +
               f". Maps of seed {report.seeds[0]}, each scaled to its own maximum; a constant map is marked. "
               f"ρ under a map: median [range] of {sanity.MEASURE} over {n} seed(s) ({', '.join(map(str, report.seeds))}).")
    _grid(report, image, {} if panels is None else panels)
    st.subheader("Similarity to the trained model's map")
    st.caption(f"Computed at {sanity.RESOLUTION}. Lines: medians over the seeds; bands: their range. Verdicts: the "
               f"upper quartile over the seeds against {sanity.DEPENDS} (depends) and {sanity.INSENSITIVE} "
               "(insensitive, at the logits).")
    tabs = st.tabs(list(sanity.SIMILARITIES))
    for tab, sim in zip(tabs, sanity.SIMILARITIES, strict=True):
        with tab:
            st.plotly_chart(_curves(report, sim), width="stretch", key=f"sanity_curve:{sim}",
                            config={"displayModeBar": False})
    rows = [{"map": name, "verdict": report.verdict(name),
             **{f"{s} (last)": report.spread(name, s)[-1].text() for s in sanity.SIMILARITIES}}
            for name in report.maps]
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")
    png = services.memo(("sanity_png", digest, report_digest(report)), lambda: _png(report, image))
    a, b = st.columns(2)
    a.download_button("⬇️ Download the grid as PNG", png, file_name=f"sanity-{digest[:8]}.png", mime="image/png",
                      key="sanity_png")
    with b:
        report_button.sanity_download(ctx, png, report, (digest, report_digest(report)))


def show_random_logit(report: sanity.RandomLogitReport, image: np.ndarray) -> None:
    """The explained class's map beside each random class's map, and one verdict per explainer."""
    st.caption(f"Explained: **{report.class_name}**. Random classes (seeds {', '.join(map(str, report.seeds))}): "
               + ", ".join(report.class_names) + f". {sanity.MEASURE} at {sanity.RESOLUTION}.")
    for name, m in report.original.items():
        cols = st.columns([1.2] + [1] * (1 + len(report.classes)))
        cols[0].markdown(f"**{name}**  \n{report.verdict(name)}")
        cols[1].image(_panel(image, m, sanity.is_constant(m)), width="stretch", caption=report.class_name)
        for c, other, label in zip(cols[2:], report.other[name], report.class_names, strict=True):
            c.image(_panel(image, other, sanity.is_constant(other)), width="stretch",
                    caption=f"{label} · ρ = {sanity.spearman_abs(m, other):.2f}")
    st.dataframe(pd.DataFrame([{"map": n, "verdict": report.verdict(n), f"{sanity.MEASURE} median": s.median,
                                "lowest": s.low, "highest": s.high} for n, s in report.spreads.items()]),
                 hide_index=True, width="stretch")


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


def _grid(report: sanity.SanityReport, image: np.ndarray, panels: dict, partial: bool = False) -> None:
    """Rows explainers, columns stages; ``panels``: the cells' pictures by (map, stage), made once per run and kept
    across redraws. A partial report shows the cells computed so far, each ρ with its count of seeds, no verdict yet."""
    n = len(report.layers) + 1 if partial else len(report.stages)  # a partial grid has its final width from the start
    cols = st.columns([1.2] + [1] * n)
    cols[0].caption("**explainer**")
    for c, label in zip(cols[1:], [*report.stages, *["…"] * (n - len(report.stages))], strict=True):
        c.caption(f"**{label}**")
    for name, ms in report.maps.items():
        cols = st.columns([1.2] + [1] * n)
        cols[0].markdown(f"**{name}**  \n{'⏳' if partial else report.verdict(name)}")
        for k, (c, m) in enumerate(zip(cols[1:], ms, strict=False)):
            const = report.constant[name][k]
            # JPEG bytes said to be JPEG: Streamlit serves them as they are (no decoding, no re-encoding per redraw)
            c.image(_kept(panels, (name, k), image, m, const), width="stretch", output_format="JPEG",
                    caption="constant map" if const else _rho(report, name, k))


def _kept(panels: dict, key: tuple[str, int], image: np.ndarray, m: np.ndarray, constant: bool) -> bytes:
    """A cell's picture as JPEG bytes (quality 100, as Streamlit encodes an array), made once per run."""
    if key not in panels:
        buf = io.BytesIO()
        Image.fromarray(_panel(image, m, constant)).save(buf, format="JPEG", quality=100)
        panels[key] = buf.getvalue()
    return panels[key]


def _rho(report: sanity.SanityReport, name: str, k: int) -> str | None:
    """The caption of stage ``k``'s cell: ρ over the seeds so far (their count while some are missing)."""
    spreads = report.spread(name)
    if k == 0 or k > len(spreads):
        return None
    s = spreads[k - 1]
    return f"ρ = {s.text()}" + (f" ({s.n} of {len(report.seeds)} seeds)" if s.n < len(report.seeds) else "")


def live(report: sanity.SanityReport, image: np.ndarray, panels: dict, done: int, total: int) -> None:
    """A partial report while the check runs: the grid so far and how much of it is computed."""
    st.subheader(f"Maps for “{report.class_name}” as the weights are destroyed")
    st.caption(f"⏳ {done} of {total} maps computed · each stage's column and each seed appear as they are done.")
    _grid(report, image, panels, partial=True)


def _curves(report: sanity.SanityReport, sim: str) -> go.Figure:
    fig = go.Figure()
    for i, name in enumerate(report.maps):
        colour = PALETTE[i % len(PALETTE)]
        spreads = report.spread(name, sim)
        if len(report.seeds) > 1:  # the range over the seeds, as a band under the median line
            xs = [*report.stages[1:], *report.stages[:0:-1]]
            ys = [s.high for s in spreads] + [s.low for s in spreads[::-1]]
            fig.add_trace(go.Scatter(x=xs, y=ys, fill="toself", fillcolor=colour, opacity=0.15, line=dict(width=0),
                                     hoverinfo="skip", showlegend=False))
        fig.add_trace(go.Scatter(x=report.stages, y=[1.0, *[s.median for s in spreads]], mode="lines+markers", name=name,
                                 line=dict(color=colour, dash="dot" if name == EDGES else "solid")))
    fig.add_hline(y=sanity.DEPENDS, line=dict(color="#888", dash="dash", width=1))
    fig.update_layout(height=360, margin=dict(l=8, r=8, t=30, b=8), yaxis=dict(range=[-1.02, 1.02], title=sim),
                      xaxis_title="randomised", title=dict(text=f"{sim} with the trained model's map (median, range)",
                                                           font=dict(size=14)))
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
