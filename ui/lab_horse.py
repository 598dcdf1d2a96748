"""The lab's first part: the synthetic horse-watermark data, the shortcut model, where it looks, and SpRAy."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

import xai_core as xc
from ui import lab_checks, services, widgets
from ui.figures import overlay_small
from ui.state import Context
from xai_core import lab

MAX_PASSES = 2000  # passes per image at 64×64 on the small lab CNN: all but what only the model can size


@st.cache_resource(show_spinner="Loading the lab model…")
def shipped() -> xc.ModelSpec:
    return xc.load_model("lab_horse_cnn")


@st.cache_data(show_spinner="Generating images…")
def dataset(n: int, seed: int, tag_fraction: float, horse_fraction: float = 0.5) -> lab.LabSet:
    return lab.make_dataset(n, seed=seed, tag_fraction=tag_fraction, horse_fraction=horse_fraction)


def render(ctx: Context | None = None) -> None:
    """The lab CNN (shipped, or retrained in this session) through a Workbench with the session's run options."""
    options = ctx.options if ctx is not None else xc.RunOptions()
    model = xc.Workbench(st.session_state.get("lab_model") or shipped(), options)
    key = (services.model_digest(model), options.result_key)
    _data()
    st.subheader("2 · The shortcut, in numbers")
    report = services.memo(("lab_report", *key), lambda: lab.shortcut_report(model))
    for c, (k, v) in zip(st.columns(4), report.items(), strict=True):
        c.metric(k.capitalize(), f"{v:.0%}")

    st.subheader("3 · Where does the model look?")
    methods = widgets.methods_within(MAX_PASSES, (lab.SIZE, lab.SIZE), model.model)
    method = st.selectbox("Explainer", methods, index=methods.index(widgets.one_per_family(methods)[0]), key="lab_method",
                          format_func=lambda m: xc.get_explainer(m).title)
    horses = dataset(80, 7, 0.5, 1.0)
    hmaps = services.memo(("lab_maps", *key, method), lambda: lab.maps_for(model, horses.images, method))
    for i, c in enumerate(st.columns(8)):
        c.image(overlay_small(horses.images[i], hmaps[i], False, alpha=0.6, cmap="inferno", side=128),
                caption="tagged" if horses.tagged[i] else "no tag", width="stretch")
    pg = lab.pointing_on_tag_and_object(hmaps, horses)
    share = float(np.mean([(b[2] - b[0]) * (b[3] - b[1]) for b in horses.tag_boxes[horses.tagged]])) / lab.SIZE ** 2
    st.markdown(f"Over the {int(horses.tagged.sum())} tagged horses — pointing game (the map's maximum within 2 px): "
                f"**{pg['on the tag']:.0%} on the tag**, {pg['on the object']:.0%} on the horse; energy in the region "
                f"(share of positive evidence): **{pg['mass on the tag']:.0%} in the tag box** (which covers "
                f"{share:.0%} of the image), {pg['mass on the object']:.0%} on the horse.")
    _spray(key, method, horses, hmaps)
    lab_checks.render(model, method, horses, dataset)


def _data() -> None:
    st.subheader("1 · The data")
    seed = st.number_input("Seed", 0, 10_000, 1, key="lab_seed")
    d = dataset(12, int(seed), 0.9)
    for i, c in enumerate(st.columns(12)):
        c.image(d.images[i], caption=("horse" if d.labels[i] else "other") + (" · tag" if d.tagged[i] else ""),
                width="stretch")
    with st.expander("Retrain the model here (about a minute on a CPU)"):
        frac = st.slider("Share of horse images with the tag", 0.0, 1.0, 0.9, 0.05, key="lab_tagfrac")
        if st.button("🏋️ Train", key="lab_train"):
            bar = widgets.LazyProgress(st.empty(), "Training")
            trained = lab.train(dataset(3000, 0, frac), progress=bar)
            bar.clear()
            st.session_state["lab_model"] = lab.as_spec(trained, provenance=f"trained in this session, tag on {frac:.0%}")
            st.rerun()
        st.caption("The shipped weights come from `python -m xai_core.lab.train` (3000 images, tag on 90% of horses).")


def spray_clusters(res: lab.SprayResult, images: np.ndarray, key: str) -> None:
    """The eigenvalue bar chart and, per cluster, its mean map beside up to 8 member images."""
    fig = go.Figure(go.Bar(x=list(range(1, len(res.eigenvalues) + 1)), y=res.eigenvalues, marker_color="#c0392b"))
    fig.update_layout(height=240, margin=dict(l=8, r=8, t=30, b=8), xaxis_title="index", yaxis_title="eigenvalue",
                      title=f"Laplacian eigenvalues: eigengap → {res.k} clusters")
    st.plotly_chart(fig, width="stretch", key=key, config={"displayModeBar": False})
    side = res.means.shape[-1]
    for c in range(res.k):
        members = np.where(res.labels == c)[0]
        left, right = st.columns([1, 5])
        left.image(overlay_small(np.full((64, 64, 3), 40, np.uint8), np.kron(res.means[c], np.ones((64 // side,) * 2)),
                                 False, alpha=1.0, cmap="inferno", side=128),
                   caption=f"cluster {c + 1}: mean map · {len(members)} images", width="stretch")
        for e, i in zip(right.columns(8), members[:8], strict=False):
            e.image(images[i], width="stretch")


def _spray(key: tuple, method: str, horses: lab.LabSet, hmaps: np.ndarray) -> None:
    st.subheader("4 · SpRAy: find the strategy without knowing it")
    st.caption("Spectral relevance analysis clusters the heatmaps of the class 'horse' (downsized to 16×16, kNN graph, "
               "eigengap). The tag column below is ground truth, shown only to check the clusters.")
    res = services.memo(("lab_spray", *key, method), lambda: lab.spray(hmaps))
    spray_clusters(res, horses.images, "lab_eig")
    rows = [{"cluster": c + 1, "images": int((res.labels == c).sum()), "tagged": int(horses.tagged[res.labels == c].sum())}
            for c in range(res.k)]
    st.dataframe(pd.DataFrame(rows), hide_index=True)
    st.caption(f"Purity against the (hidden) tag labels: {res.purity(horses.tagged.astype(int)):.0%}.")
