"""The lab's second part: data randomisation, influence, ROAR (a background job) and model manipulation."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import plotly.graph_objects as go
import streamlit as st

import xai_core as xc
from ui import jobs, services, widgets
from ui.figures import overlay_small
from xai_core import lab

ROAR_FRACTIONS = (0.05, 0.2, 0.5)
INFLUENCE_NAMES = {"relatif": "RelatIF", "exact": "influence (exact H⁻¹)", "lissa": "influence (LiSSA)",
                   "tracin": "TracIn", "tracin_cos": "gradient cosine"}


def render(model: xc.Workbench, method: str, horses: lab.LabSet, dataset: Callable[..., lab.LabSet]) -> None:
    _data_randomisation(model, method, horses, dataset)
    _influence(model, dataset)
    _roar(model, method, dataset)
    _manipulation(model, horses, dataset)


def _map_rows(images: np.ndarray, rows: list[tuple[str, np.ndarray]]) -> None:
    for title, maps_ in rows:
        cols = st.columns(9)
        cols[0].caption(f"**{title}**")
        for c, i in zip(cols[1:], range(8), strict=True):
            c.image(overlay_small(images[i], maps_[i], False, alpha=0.6, cmap="inferno", side=128), width="stretch")


def _data_randomisation(model: xc.Workbench, method: str, horses: lab.LabSet, dataset: Callable[..., lab.LabSet]) -> None:
    st.subheader("5 · Data randomisation")
    st.caption("Adebayo et al. (2018): train the same network on the same images with shuffled labels. It learns "
               "nothing about horses, so a faithful explanation of it should not look like the real model's.")
    if st.button("🎲 Train on shuffled labels (about a minute)", key="lab_shuffle"):
        bar = widgets.LazyProgress(st.empty(), "Training on shuffled labels")
        st.session_state["lab_shuffled"] = lab.shuffled_label_model(dataset(3000, 0, 0.9), progress=bar)
        bar.clear()
    fake = st.session_state.get("lab_shuffled")
    if fake is not None:
        fake = model.with_model(fake)
        a, b, rho = services.memo(("lab_dr", services.model_digest(model), services.model_digest(fake), method),
                                  lambda: lab.map_similarity(model, fake, horses.images[:24], method))
        st.markdown(f"Mean Spearman ρ of |maps| between the two models: **{rho:.2f}** ({xc.get_explainer(method).title}).")
        _map_rows(horses.images, [("real labels", a), ("shuffled labels", b)])


def _influence(model: xc.Workbench, dataset: Callable[..., lab.LabSet]) -> None:
    st.subheader("6 · Which training images made it say 'horse'?")
    st.caption("A non-horse with the tag added, which the model calls horse. Influence of 600 training images on that "
               "prediction, through the model's last layer (130 parameters: exact Hessian). Raw influence (Koh & Liang "
               "2017) favours training images the model gets wrong; RelatIF and the gradient cosine normalise that away.")
    c1, c2 = st.columns([1, 3])
    case = int(c1.number_input("Test image", 0, 99, 0, key="lab_case"))
    how = c2.radio("Method", list(lab.influence.METHODS), horizontal=True, key="lab_influence",
                   format_func=INFLUENCE_NAMES.get)
    pool = dataset(600, 0, 0.9)
    probe = lab.add_tag(dataset(100, 77, 0.0, 0.0).images[case])[0]
    scores = services.memo(("lab_inf", services.model_digest(model), case, how), lambda: lab.helpfulness(
        model, pool.images, pool.labels, probe[None], np.ones(1, int), method=how)[0])
    left, right = st.columns([1, 5])
    left.image(probe, caption="test: tagged non-horse", width="stretch")
    for title, order in (("most helpful", np.argsort(-scores)[:8]), ("most harmful", np.argsort(scores)[:8])):
        for c, i in zip(right.columns(8), order, strict=True):
            c.image(pool.images[i], width="stretch", caption=f"{title.split()[1]} {scores[i]:+.2g}" +
                    (" · tag" if pool.tagged[i] else ""))
    top = np.argsort(-scores)[:10]
    st.markdown(f"Tagged images among the 10 most helpful: **{int(pool.tagged[top].sum())}/10** "
                f"(they are {pool.tagged.mean():.0%} of the pool).")


def _roar(model: xc.Workbench, method: str, dataset: Callable[..., lab.LabSet]) -> None:
    st.subheader("7 · ROAR: remove the evidence and retrain")
    st.caption("Hooker et al. (2019): replace each image's top-k% pixels (by the explainer's ranking) with the mean "
               "colour, retrain from scratch, and measure accuracy; a ranking that finds what the model needs should hurt "
               "more than a random one. Caveat (Rong et al. 2022, ROAD): the shape of what was removed can itself give the "
               "class away, so a retrained model may recover — read the curve, not just one point.")
    train_set, test_set = dataset(800, 0, 0.9), dataset(300, 123, 0.9)
    fast = widgets.methods_within(widgets.FAST, (lab.SIZE, lab.SIZE), model.model)
    rankings = st.multiselect("Rankings (a random one is always added)", fast, default=[method] if method in fast else
                              widgets.one_per_family(fast)[:1], format_func=lambda m: xc.get_explainer(m).title,
                              key="lab_roar_methods", help="Explainers cheap enough (one forward and one backward per "
                              "image) to rank 1100 images per retraining.")

    def make() -> Callable:
        return lambda progress: lab.roar.roar(model, train_set, test_set, rankings, fractions=ROAR_FRACTIONS,
                                              progress=progress)

    left, right = st.columns(2)
    with left:
        jobs.panel("lab_roar_job", "🔁 Run ROAR in the background (800 images, 3 fractions × 3 rankings, about 3 "
                   "minutes on a CPU)", make, lambda c: _curves(c, "ROAR", "test accuracy after retraining"),
                   title="ROAR")
    with right:
        jobs.panel("lab_road_job", "🩹 Run ROAD (no retraining: the same rankings, holes filled by noisy linear "
                   "imputation; about 15 s)",
                   lambda: lambda progress: lab.road.road(model, test_set, rankings, fractions=ROAR_FRACTIONS,
                                                          progress=progress),
                   lambda c: _curves(c, "ROAD", "accuracy of the unchanged model"), title="ROAD")
    st.caption("ROAR's holes are filled with the mean colour, so at 50% the retrained model can read the class from "
               "the holes' shape and its accuracy comes back (measured: Grad-CAM 0.93 → 0.44 at 20% → 1.00 at 50%). "
               "ROAD (Rong et al., ICML 2022) fills them with what the neighbours predict and keeps the model: "
               "Grad-CAM's curve falls to 0.44 at 20% and stays there, a random ranking stays near 0.93.")


def _curves(curves: dict[str, list[float]], title: str, y_title: str) -> None:
    fig = go.Figure()
    x = [0, *(round(100 * f) for f in ROAR_FRACTIONS)]
    for name, acc in curves.items():
        fig.add_trace(go.Scatter(x=x, y=acc, mode="lines+markers", name=name,
                                 line=dict(dash="dot" if name == "random" else "solid")))
    fig.update_layout(height=320, margin=dict(l=8, r=8, t=30, b=8), xaxis_title="% of pixels removed",
                      yaxis=dict(title=y_title, range=[0, 1.02]), title=title)
    st.plotly_chart(fig, width="stretch", key=f"lab_{title.lower()}_fig", config={"displayModeBar": False})


def _manipulation(model: xc.Workbench, horses: lab.LabSet, dataset: Callable[..., lab.LabSet]) -> None:
    st.subheader("8 · Model manipulation: make Grad-CAM lie")
    st.caption("Heo et al. (2019): fine-tune the model with a fooling loss that pushes Grad-CAM into the top-left corner, "
               "plus the usual classification loss. The accuracy stays; does the explanation? And do other explainers "
               "follow?")
    if st.button("😈 Fine-tune the lab CNN to fool Grad-CAM (about 15 s)", key="lab_fool"):
        bar = widgets.LazyProgress(st.empty(), "Fooling")
        st.session_state["lab_fooled"] = lab.model_manipulation.fool_gradcam(model, dataset(600, 0, 0.9), epochs=6,
                                                                             progress=bar)
        bar.clear()
    fooled = st.session_state.get("lab_fooled")
    if fooled is None:
        return
    test = dataset(300, 123, 0.9)
    c1, c2 = st.columns(2)
    c1.metric("Accuracy before", f"{lab.accuracy(model, test.images, test.labels):.1%}")
    c2.metric("Accuracy after", f"{lab.accuracy(fooled, test.images, test.labels):.1%}")
    fooled = model.with_model(fooled)
    found = services.memo(("lab_fool_cmp", services.model_digest(model), services.model_digest(fooled)),
                          lambda: lab.model_manipulation.compare(model, fooled, horses.images[:24]))
    for m, (before, after, s0, s1) in found.items():
        st.markdown(f"**{xc.get_explainer(m).title}**: mass in the corner {s0:.0%} → **{s1:.0%}**")
        _map_rows(horses.images, [("before", before), ("after", after)])
