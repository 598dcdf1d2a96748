"""Lessons 3–5 on the Learn page: CAM as a weighted sum, perturbation (RISE, LIME), pitfalls."""

from __future__ import annotations

import cv2
import numpy as np
import streamlit as st

from xai_core import ExplainRequest, render
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
    effect = ("here the weighted sum is positive everywhere, so the ReLU changes nothing: pick an earlier layer to see "
              "it matter" if r.negative_share < 0.01 else "the blue part of the map without it")
    st.caption(f"{r.channel_count} channels at this layer; the ReLU drops {r.negative_share:.0%} of the sum's "
               f"absolute mass ({effect}). An earlier layer has finer feature maps, so a sharper map.")


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
    st.markdown("**Min-max scaling hides magnitude.** Gradient maps for the explained class and the least likely class, "
                "each scaled to its own maximum, look equally strong:")
    low = int(np.argmin(probs))
    mg = services.memo(("l5m", ctx.model_key, ctx.digest, target, low),
                       lambda: pitfalls.magnitudes(ctx.workbench, ctx.image, [target, low]))
    shared = st.toggle("Shared colour scale", False, key="l5_shared")
    maps = pitfalls.shared_scale([e.map for e in mg.explanations]) if shared else [e.map for e in mg.explanations]
    names = [f"{e.class_name} · p = {probs[c]:.2g} · peak {p:.3g}"
             for e, c, p in zip(mg.explanations, (target, low), mg.peaks, strict=True)]
    st.image([_fixed(m) if shared else render.colorize(m, False) for m in maps], caption=names, width=220)
    st.caption(f"On a shared scale the least likely class's map peaks at {mg.relative()[1]:.0%} of the other's, while "
               f"its probability is {probs[low] / max(probs[target], 1e-12):.1g} times it: neither the brightness of "
               "a scaled map nor the size of a gradient is the model's confidence.")
    st.markdown("**Random weights, the same map.** Each method on the trained model and on a copy whose logit layer is "
                "re-initialised (the sanity check's first stage): the class scores are now random, so a map that "
                "explains them must change.")
    rm = services.memo(("l5r", ctx.model_key, ctx.digest, target),
                       lambda: pitfalls.randomised_maps(ctx.workbench, ctx.image, target))
    for name in rm.trained:
        cols = st.columns([1, 1, 1.4])
        cols[0].image(render.colorize(np.abs(rm.trained[name]), False), caption=f"{name} · trained", width="stretch")
        cols[1].image(render.colorize(np.abs(rm.random[name]), False), caption=f"{name} · logit layer random",
                      width="stretch")
        verdict = "the same map: it cannot be explaining the class score" if rm.rho[name] >= 0.8 else \
            "a different map: it depends on the weights" if rm.rho[name] < 0.5 else "partly changed"
        cols[2].metric(f"{name}: Spearman ρ of |map|", f"{rm.rho[name]:.2f}", help="1 = the same ranking of pixels.")
        cols[2].caption(verdict)
    st.caption(f"p({ctx.model.label(target)}) is {rm.probability[0]:.2f} with the trained weights and "
               f"{rm.probability[1]:.2g} with the random logit layer ({', '.join(rm.layers)}). Adebayo et al. 2018 "
               "found Guided Backprop insensitive to randomising the higher layers: it shows the image's edges more "
               "than what the model learnt.")
    st.markdown("**Deletion prefers scattered maps.** Two random maps that know nothing about the model:")
    gc = services.memo(("l5g", ctx.model_key, ctx.digest, target),
                       lambda: ctx.workbench.explain(ctx.image, ExplainRequest.make("gradcam", target)).map)
    curves = services.memo(("l5d", ctx.model_key, ctx.digest, target),
                           lambda: pitfalls.deletion_scatter(ctx.workbench, ctx.image, {"Grad-CAM": gc}, target))
    xs = next(iter(curves.values()))[0]
    st.plotly_chart(line("Deletion (lower area = 'more faithful')", xs,
                         {f"{n} · AUC {v[2]:.3f}": v[1] for n, v in curves.items()}, "fraction deleted", "probability"),
                    width="stretch", key="l5_deletion")
    auc = {n: v[2] for n, v in curves.items()}
    best = min(auc, key=auc.get)
    st.caption(f"Lowest deletion AUC: {best} ({auc[best]:.3f}). "
               + ("Random scattered pixels beat the blocky random map: deletion rewards scatter, not knowledge."
                  if auc[pitfalls.SCATTERED] < auc[pitfalls.BLOCKS] else
                  "Here the scattered random map does not beat the blocky one."))
