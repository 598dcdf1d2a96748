"""The lab's real-world twin: the ImageNet-W watermark on an ImageNet model — carton probability and where maps point."""

from __future__ import annotations

import cv2
import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

import xai_core as xc
from ui import services, widgets
from ui.figures import overlay_small
from ui.state import Context
from xai_core import images
from xai_core.lab import imagenet_w as iw

MAX_PASSES = 2000  # passes per image offered here (two maps per image: clean and watermarked)
# Explainers of at most one forward and one backward (about 0.1-0.3 s per map on a CPU) also run over every image.


def _model(ctx: Context) -> tuple[xc.Workbench, str]:
    try:
        iw.check_model(ctx.workbench)
        return ctx.workbench, ctx.model_key
    except xc.XaiError as e:
        st.info(f"{e} Using the bundled {xc.model_title(xc.DEFAULT_MODEL)} here.", icon="ℹ️")
        return ctx.workbench.with_model(services.model(xc.DEFAULT_MODEL)), xc.DEFAULT_MODEL


def render(ctx: Context) -> None:
    st.caption("Li et al. (CVPR 2023) found that ImageNet models raise the class **carton** when a translucent Chinese "
               "text watermark is added to any image: many carton photos in ImageNet carry one. The watermark below is "
               "the paper's own transform (PyPI package `imagenet-w`), drawn at the model's input size.")
    model, key = _model(ctx)
    key = f"{key}|{model.options.result_key}"
    pool = {n: services.sample(n)[0] for n in images.sample_names()}
    if ctx.image_name not in pool:
        pool = {f"{ctx.image_name} (yours)": ctx.image, **pool}
    shifts = services.memo(("iw_shift", key, ctx.digest), lambda: iw.carton_shift(model, pool))
    _shift_chart(shifts)
    table = pd.DataFrame([s.row() for s in shifts])
    st.dataframe(table, hide_index=True, width="stretch", column_config={
        "p(carton) clean": st.column_config.NumberColumn(format="%.5f"),
        "p(carton) watermarked": st.column_config.NumberColumn(format="%.5f"),
        "× change": st.column_config.NumberColumn(format="×%.1f")})
    up = sum(s.p_marked > s.p_clean for s in shifts)
    st.markdown(f"The watermark raises p(carton) on **{up} of {len(shifts)}** images (median ×"
                f"{np.median([s.ratio for s in shifts]):.1f}); it changes the top-1 class on "
                f"{sum(s.top_clean != s.top_marked for s in shifts)}.")
    st.download_button("⬇️ Download the table (CSV)", table.to_csv(index=False), file_name="imagenet-w-carton.csv",
                       mime="text/csv", key="iw_csv")

    st.subheader("Where do the explainers point?")
    c1, c2 = st.columns([1, 2])
    name = c1.selectbox("Image", list(pool), key="iw_image")
    offered, fast_ids = (widgets.methods_within(MAX_PASSES, model=model.model),
                         widgets.methods_within(widgets.FAST, model=model.model))
    chosen = c2.multiselect("Explainers (each explains 'carton')", offered, default=widgets.one_per_family(fast_ids),
                            format_func=lambda m: xc.get_explainer(m).title, key="iw_methods")
    clean = model.model.resized(pool[name])
    marked, box = iw.watermark(clean)
    chance = xc.metrics.box_share(clean.shape[:2], box)
    with st.spinner("Explaining 'carton' with and without the watermark…"):
        found = _points(model, key, pool, name, ctx.digest, chosen)
    cols = st.columns(1 + len(chosen))
    cols[0].image(clean, caption="clean ↓ watermarked", width="stretch")
    cols[0].image(marked, caption="box: the watermark text", width="stretch")
    for c, m in zip(cols[1:], chosen, strict=True):
        f = found[m]
        c.image(overlay_small(clean, f["clean"], f["signed"], alpha=0.6, cmap="inferno"),
                caption=f"{_short(m)} · {f['mass_clean']:.0%} in box", width="stretch")
        c.image(_boxed(overlay_small(marked, f["marked"], f["signed"], alpha=0.6, cmap="inferno"), box, marked.shape),
                caption=f"{_short(m)} · {f['mass_marked']:.0%} in box", width="stretch")
    st.caption(f"'in the box': share of the map's positive evidence for carton inside the watermark's text box, which "
               f"covers {chance:.0%} of the image — a map spread evenly would put {chance:.0%} there.")
    fast = [m for m in chosen if m in fast_ids]
    if fast:
        bar, found_all = widgets.LazyProgress(st.empty(), "Explaining every image with and without the watermark"), {}
        for i, n in enumerate(pool):
            if not all(services.store().get(_key(key, n, ctx.digest, m)) for m in fast):
                bar(i / len(pool), n)
            found_all[n] = _points(model, key, pool, n, ctx.digest, fast)
        bar.clear()
        rows = iw.mass_over(found_all, fast)
        st.markdown(f"**Over all {len(pool)} images** (the fast explainers among those chosen):")
        st.dataframe(pd.DataFrame([{**r, "method": xc.get_explainer(r["method"]).title} for r in rows]), hide_index=True,
                     width="stretch", column_config={c: st.column_config.NumberColumn(format="%.2f") for c in (
                         "mass in box, clean", "mass in box, watermarked")})


def _short(method: str) -> str:
    return xc.get_explainer(method).title.split(" (")[0]


def _points(model: xc.Workbench, key: str, pool: dict[str, np.ndarray], name: str, digest: str,
            methods: list[str]) -> dict[str, dict]:
    """Each method's clean/watermarked carton maps for one image, memoised per (model, image, method)."""
    return {m: services.memo(_key(key, name, digest, m), lambda m=m: iw.where_explainers_point(model, pool[name], [m])[m])
            for m in methods}


def _key(model_key: str, name: str, digest: str, method: str) -> tuple:
    return ("iw_point", model_key, f"{name}:{digest}" if name.endswith("(yours)") else name, method)


def _shift_chart(shifts: list[iw.CartonShift]) -> None:
    names = [s.name for s in shifts]
    fig = go.Figure([go.Bar(name="clean", x=names, y=[s.p_clean for s in shifts], marker_color="#95a5a6"),
                     go.Bar(name="watermarked", x=names, y=[s.p_marked for s in shifts], marker_color="#c0392b",
                            text=[f"×{s.ratio:.0f}" for s in shifts], textposition="outside")])
    fig.update_layout(barmode="group", height=300, margin=dict(l=8, r=8, t=30, b=8), title="p(carton)",
                      yaxis=dict(type="log", title="probability (log scale)"), legend=dict(orientation="h"))
    st.plotly_chart(fig, width="stretch", key="iw_chart", config={"displayModeBar": False})


def _boxed(img: np.ndarray, box: xc.Box, shape: tuple[int, ...]) -> np.ndarray:
    """The watermark's box outlined on a (possibly shrunk) overlay."""
    s = img.shape[1] / shape[1]
    x0, y0, x1, y1 = (round(v * s) for v in box)
    return cv2.rectangle(img.copy(), (x0, y0), (max(x0, x1 - 1), max(y0, y1 - 1)), (0, 200, 255), 1)
