"""Lessons 3–5 on the Learn page: CAM as a weighted sum, perturbation (RISE, LIME), pitfalls."""

from __future__ import annotations

import cv2
import numpy as np
import streamlit as st

from xai_core import render
from xai_core.lessons import cams, perturbation, pitfalls

from . import services
from .lesson_gradients import line


def _fixed(v: np.ndarray) -> np.ndarray:
    """Values already in [0, 1] coloured as they are (no per-map rescaling)."""
    bgr = cv2.applyColorMap((np.clip(v, 0, 1) * 255).astype(np.uint8), cv2.COLORMAP_INFERNO)
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def _image_aspect(labels: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """A label image (superpixels at the model's square input) stretched back to the image's aspect ratio at the same
    longest side (nearest label, no blending), so the picture is not squashed and its lines stay as thin."""
    side = max(labels.shape)
    out_h, out_w = (side, max(1, round(side * shape[1] / shape[0]))) if shape[0] >= shape[1] else \
        (max(1, round(side * shape[0] / shape[1])), side)
    rows = np.arange(out_h) * labels.shape[0] // out_h
    cols = np.arange(out_w) * labels.shape[1] // out_w
    return labels[rows[:, None], cols[None, :]]


def cam(ctx, target: int) -> None:  # noqa: ANN001
    st.markdown("Grad-CAM = ReLU(Σ_k α_k A_k): each channel A_k of a layer, weighted by α_k, the mean gradient of the "
                "class score over that channel. Below: the channels that add most.")
    c1, c2 = st.columns(2)
    layers = ["", *ctx.model.layer_names()]
    layer = c1.selectbox("Layer", layers, key="l3_layer", format_func=lambda n: n or f"default ({ctx.model.cam_layer})")
    relu = c2.toggle("Apply the ReLU (Grad-CAM)", True, key="l3_relu")
    try:
        r = services.memo(("l3", ctx.model_key, ctx.digest, target, layer),
                          lambda: cams.cam_parts(ctx.workbench, ctx.image, target, layer=layer))
    except Exception as err:  # noqa: BLE001 - a layer off the path to the output is a user choice, not a crash
        st.error(str(err))
        return
    st.image([render.colorize(f, False) for f in r.features],
             caption=[f"channel {c}: α = {w:+.2g}" for c, w in zip(r.channels, r.weights, strict=True)], width=120)
    shown = r.gradcam if relu else r.signed
    st.image(render.overlay(ctx.model.resized(ctx.image), shown, not relu), width=300,
             caption=f"{'Grad-CAM' if relu else 'Weighted sum without the ReLU (blue = negative)'} at {r.layer}")
    st.caption(f"{r.channel_count} channels at this layer; the ReLU drops {r.negative_share:.0%} of the sum's "
               "absolute mass. An early layer gives a sharper but less class-specific map.")


def perturbation_(ctx, target: int) -> None:  # noqa: ANN001
    st.markdown("**RISE** scores the image seen through random smooth masks and averages the masks weighted by the "
                "class probability.")
    masks = st.slider("RISE masks", 50, 400, 100, 50, key="l4_masks")
    r = services.memo(("l4r", ctx.model_key, ctx.digest, target, masks),
                      lambda: perturbation.rise_steps(ctx.workbench, ctx.image, target, masks=masks,
                                                      checkpoints=(10, masks // 4, masks // 2, masks)))
    st.image([im for im in r.masked], caption=[f"p = {p:.2f}" for p in r.probabilities[:len(r.masked)]], width=130)
    st.image([render.colorize(m, False) for m in r.running], caption=[f"after {n} masks" for n in r.checkpoints],
             width=150)
    st.markdown("**LIME** fits a linear surrogate over superpixels switched on and off; its sampling depends on the "
                "seed.")
    samples = st.slider("LIME samples", 50, 300, 50, 25, key="l4_samples")
    lm = services.memo(("l4l", ctx.model_key, ctx.digest, target, samples),
                       lambda: perturbation.lime_seeds(ctx.workbench, ctx.image, target, samples=samples))
    first = lm.explanations[0]
    st.image([render.superpixel_boundaries(ctx.image, _image_aspect(np.asarray(first.value("segments")), ctx.image.shape))]
             + [render.colorize(e.map, True) for e in lm.explanations],
             caption=["superpixels"] + [f"seed {s} · R² {e.value('surrogate_r2', float('nan')):.2f}"
                                         for s, e in zip(lm.seeds, lm.explanations, strict=True)], width=150)
    st.metric("Agreement between seeds (mean correlation)", f"{lm.mean_agreement:.2f}")


def pitfalls_(ctx, target: int, probs: np.ndarray) -> None:  # noqa: ANN001
    st.markdown("**Min-max scaling hides magnitude.** Gradient maps for the top class and the least likely class:")
    low = int(np.argmin(probs))
    mg = services.memo(("l5m", ctx.model_key, ctx.digest, target, low),
                       lambda: pitfalls.magnitudes(ctx.workbench, ctx.image, [target, low]))
    shared = st.toggle("Shared colour scale", False, key="l5_shared")
    maps = pitfalls.shared_scale([e.map for e in mg.explanations]) if shared else [e.map for e in mg.explanations]
    names = [f"{e.class_name} · peak {p:.3g}" for e, p in zip(mg.explanations, mg.peaks, strict=True)]
    st.image([_fixed(m) if shared else render.colorize(m, False) for m in maps], caption=names, width=220)
    st.markdown("**Random weights, similar maps.** Guided Backprop of the trained model and of a copy with every "
                "weight re-initialised:")
    rm = services.memo(("l5r", ctx.model_key, ctx.digest, target),
                       lambda: pitfalls.randomised_maps(ctx.workbench, ctx.image, target))
    st.image([render.colorize(rm.trained.map, False), render.colorize(rm.random.map, False), render.colorize(rm.edges, False)],
             caption=[f"trained · vs edges {rm.trained_vs_edges:.2f}", f"random weights · vs edges {rm.random_vs_edges:.2f}",
                      "edge detector (no model)"], width=220)
    st.markdown("**Deletion prefers scattered maps.** Two random maps that know nothing about the model:")
    gc = services.memo(("l5g", ctx.model_key, ctx.digest, target),
                       lambda: ctx.workbench.explain(ctx.image, "gradcam").map)
    curves = services.memo(("l5d", ctx.model_key, ctx.digest, target),
                           lambda: pitfalls.deletion_scatter(ctx.workbench, ctx.image, {"Grad-CAM": gc}, target))
    xs = next(iter(curves.values()))[0]
    st.plotly_chart(line("Deletion (lower area = 'more faithful')", xs,
                         {f"{n} · AUC {v[2]:.3f}": v[1] for n, v in curves.items()}, "fraction deleted", "probability"),
                    width="stretch", key="l5_deletion")
