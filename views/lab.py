"""Lab page: the 'horse watermark' Clever Hans case end to end — data, a shortcut model, explanations, SpRAy."""

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

import xai_core as xc
from ui import services, sidebar, widgets
from ui.figures import overlay_small
from xai_core import lab

sidebar.render()
st.title("Dataset debugging lab: the horse watermark")
st.caption("Lapuschkin et al. (2019) found a PASCAL VOC classifier that recognised *horse* by a copyright tag in "
           "the corner of horse photos. Here the same story runs on your machine: a generated dataset where most "
           "horse images carry a tag, a small CNN trained on it, and the tools that expose the shortcut.")


@st.cache_resource(show_spinner="Loading the lab model…")
def shipped() -> xc.ModelSpec:
    return xc.load_model("lab_horse_cnn")


@st.cache_data(show_spinner="Generating images…")
def dataset(n: int, seed: int, tag_fraction: float, horse_fraction: float = 0.5) -> lab.LabSet:
    return lab.make_dataset(n, seed=seed, tag_fraction=tag_fraction, horse_fraction=horse_fraction)


model = st.session_state.get("lab_model") or shipped()
st.subheader("1 · The data")
seed = st.number_input("Seed", 0, 10_000, 1, key="lab_seed")
d = dataset(12, int(seed), 0.9)
cols = st.columns(12)
for i, c in enumerate(cols):
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

st.subheader("2 · The shortcut, in numbers")
report = services.memo(("lab_report", model.provenance, id(model.module)), lambda: lab.shortcut_report(model))
cols = st.columns(4)
for c, (k, v) in zip(cols, report.items(), strict=True):
    c.metric(k.capitalize(), f"{v:.0%}")

st.subheader("3 · Where does the model look?")
method = st.selectbox("Explainer", ["gradcam", "lrp", "gradient", "integrated_gradients", "occlusion", "rise"],
                      format_func=lambda m: xc.get_explainer(m).title, key="lab_method")
horses = dataset(80, 7, 0.5, 1.0)
hmaps = services.memo(("lab_maps", id(model.module), method), lambda: lab.maps_for(model, horses.images, method))
cols = st.columns(8)
for i, c in enumerate(cols):
    c.image(overlay_small(horses.images[i], hmaps[i], False, alpha=0.6, cmap="inferno", side=128),
            caption="tagged" if horses.tagged[i] else "no tag", width="stretch")
pg = lab.pointing_on_tag_and_object(hmaps, horses)
st.markdown(f"Pointing game over the {int(horses.tagged.sum())} tagged horses (the map's maximum within 2 px): "
            f"**{pg['on the tag']:.0%} on the tag**, {pg['on the object']:.0%} on the horse.")

st.subheader("4 · SpRAy: find the strategy without knowing it")
st.caption("Spectral relevance analysis clusters the heatmaps of the class 'horse' (downsized to 16×16, kNN graph, "
           "eigengap). The tag column below is ground truth, shown only to check the clusters.")
res = services.memo(("lab_spray", id(model.module), method), lambda: lab.spray(hmaps))
fig = go.Figure(go.Bar(x=list(range(1, len(res.eigenvalues) + 1)), y=res.eigenvalues, marker_color="#c0392b"))
fig.update_layout(height=240, margin=dict(l=8, r=8, t=30, b=8), title=f"Laplacian eigenvalues: eigengap → {res.k} clusters",
                  xaxis_title="index", yaxis_title="eigenvalue")
st.plotly_chart(fig, width="stretch", key="lab_eig", config={"displayModeBar": False})
rows = []
for c in range(res.k):
    members = np.where(res.labels == c)[0]
    left, right = st.columns([1, 5])
    left.image(overlay_small(np.full((64, 64, 3), 40, np.uint8), np.kron(res.means[c], np.ones((4, 4))), False,
                             alpha=1.0, cmap="inferno", side=128), caption=f"cluster {c + 1}: mean map", width="stretch")
    ex = right.columns(8)
    for e, i in zip(ex, members[:8], strict=False):
        e.image(horses.images[i], width="stretch")
    rows.append({"cluster": c + 1, "images": len(members), "tagged": int(horses.tagged[members].sum())})
st.dataframe(pd.DataFrame(rows), hide_index=True)
st.caption(f"Purity against the (hidden) tag labels: {res.purity(horses.tagged.astype(int)):.0%}.")

st.subheader("5 · Data randomisation")
st.caption("Adebayo et al. (2018): train the same network on the same images with shuffled labels. It learns "
           "nothing about horses, so a faithful explanation of it should not look like the real model's.")
if st.button("🎲 Train on shuffled labels (about a minute)", key="lab_shuffle"):
    bar = widgets.LazyProgress(st.empty(), "Training on shuffled labels")
    st.session_state["lab_shuffled"] = lab.shuffled_label_model(dataset(3000, 0, 0.9), progress=bar)
    bar.clear()
fake = st.session_state.get("lab_shuffled")
if fake is not None:
    a, b, rho = services.memo(("lab_dr", id(model.module), id(fake.module), method),
                              lambda: lab.map_similarity(model, fake, horses.images[:24], method))
    st.markdown(f"Mean Spearman ρ of |maps| between the two models: **{rho:.2f}** ({xc.get_explainer(method).title}).")
    for row, maps_ in (("real labels", a), ("shuffled labels", b)):
        cols = st.columns([1] + [1] * 8)
        cols[0].caption(f"**{row}**")
        for c, i in zip(cols[1:], range(8), strict=True):
            c.image(overlay_small(horses.images[i], maps_[i], False, alpha=0.6, cmap="inferno", side=128), width="stretch")

st.subheader("6 · Which training images made it say 'horse'?")
st.caption("A non-horse with the tag added, which the model calls horse. Influence of 600 training images on that "
           "prediction, through the model's last layer (130 parameters: exact Hessian). Raw influence (Koh & Liang "
           "2017) favours training images the model gets wrong; RelatIF and the gradient cosine normalise that away.")
c1, c2 = st.columns([1, 3])
case = int(c1.number_input("Test image", 0, 99, 0, key="lab_case"))
how = c2.radio("Method", list(lab.influence.METHODS), horizontal=True, key="lab_influence",
               format_func={"relatif": "RelatIF", "exact": "influence (exact H⁻¹)", "lissa": "influence (LiSSA)",
                            "tracin": "TracIn", "tracin_cos": "gradient cosine"}.get)
pool = dataset(600, 0, 0.9)
other = dataset(100, 77, 0.0, 0.0).images[case]
probe = lab.add_tag(other)[0]
scores = services.memo(("lab_inf", id(model.module), case, how), lambda: lab.helpfulness(
    model, pool.images, pool.labels, probe[None], np.ones(1, int), method=how)[0])
left, right = st.columns([1, 5])
left.image(probe, caption="test: tagged non-horse", width="stretch")
for title, order in (("most helpful", np.argsort(-scores)[:8]), ("most harmful", np.argsort(scores)[:8])):
    cols = right.columns(8)
    for c, i in zip(cols, order, strict=True):
        c.image(pool.images[i], width="stretch", caption=f"{title.split()[1]} {scores[i]:+.2g}" +
                (" · tag" if pool.tagged[i] else ""))
top = np.argsort(-scores)[:10]
st.markdown(f"Tagged images among the 10 most helpful: **{int(pool.tagged[top].sum())}/10** "
            f"(they are {pool.tagged.mean():.0%} of the pool).")

st.subheader("7 · ROAR: remove the evidence and retrain")
st.caption("Hooker et al. (2019): replace each image's top-k% pixels (by the explainer's ranking) with the mean "
           "colour, retrain from scratch, and measure accuracy; a ranking that finds what the model needs should hurt "
           "more than a random one. Caveat (Rong et al. 2022, ROAD): the shape of what was removed can itself give the "
           "class away, so a retrained model may recover — read the curve, not just one point.")
if st.button("🔁 Run ROAR (800 images, 3 fractions, about 3 minutes on a CPU)", key="lab_roar"):
    bar = widgets.LazyProgress(st.empty(), "ROAR")
    st.session_state["lab_roar"] = lab.roar.roar(model, dataset(800, 0, 0.9), dataset(300, 123, 0.9),
                                                 ["gradcam", "gradient"], fractions=(0.05, 0.2, 0.5), progress=bar)
    bar.clear()
curves = st.session_state.get("lab_roar")
if curves:
    fig = go.Figure()
    for name, acc in curves.items():
        fig.add_trace(go.Scatter(x=[0, 5, 20, 50], y=acc, mode="lines+markers", name=name,
                                 line=dict(dash="dot" if name == "random" else "solid")))
    fig.update_layout(height=320, margin=dict(l=8, r=8, t=30, b=8), xaxis_title="% of pixels removed",
                      yaxis=dict(title="test accuracy after retraining", range=[0, 1.02]), title="ROAR")
    st.plotly_chart(fig, width="stretch", key="lab_roar_fig", config={"displayModeBar": False})

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
if fooled is not None:
    test = dataset(300, 123, 0.9)
    c1, c2 = st.columns(2)
    c1.metric("Accuracy before", f"{lab.accuracy(model, test.images, test.labels):.1%}")
    c2.metric("Accuracy after", f"{lab.accuracy(fooled, test.images, test.labels):.1%}")
    found = services.memo(("lab_fool_cmp", id(model.module), id(fooled.module)),
                          lambda: lab.model_manipulation.compare(model, fooled, horses.images[:24]))
    for m, (before, after, s0, s1) in found.items():
        st.markdown(f"**{xc.get_explainer(m).title}**: mass in the corner {s0:.0%} → **{s1:.0%}**")
        for row, maps_ in (("before", before), ("after", after)):
            cols = st.columns([1] + [1] * 8)
            cols[0].caption(row)
            for c, i in zip(cols[1:], range(8), strict=True):
                c.image(overlay_small(horses.images[i], maps_[i], False, alpha=0.6, cmap="inferno", side=128),
                        width="stretch")
