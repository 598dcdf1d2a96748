"""The Sanity page's attack tab: manipulate an explanation with an imperceptible perturbation, then defend."""

from __future__ import annotations

import cv2
import numpy as np
import streamlit as st

import xai_core as xc
from ui import widgets
from ui.figures import fit, overlay_small
from ui.state import Context
from xai_core import sanity

RESULT = "xai_attack_result"


def render(ctx: Context, target: int) -> None:
    """Attack the map of ``target`` (the session's class) while keeping the class probabilities close."""
    st.caption(f"Explaining **{ctx.model.label(target)}**. Dombrowski et al. (2019): a perturbation too small to see "
               "(‖δ‖∞ ≤ ε) can move a gradient map almost anywhere while the prediction stays. Mark where the map "
               "should go; the attack differentiates the map through a softplus copy of the network. The defence "
               "from the paper computes the map with softplus(β) instead of ReLU: the same perturbation then moves it much less.")
    h, w = ctx.image.shape[:2]
    c1, c2, c3, c4 = st.columns(4)
    method = c1.selectbox("Explainer", list(sanity.attack.METHODS), key="attack_method",
                          format_func=lambda m: xc.get_explainer(m).title)
    eps = c2.slider("ε (of 255)", 1, 32, 8, key="attack_eps", help="Largest change of any pixel value.")
    steps = c3.slider("Steps", 10, 300, 30, 10, key="attack_steps",
                      help="Adam steps; each is a forward and two backward passes (seconds each on a CPU).")
    beta = c4.slider("Defence β", 0.5, 20.0, 2.0, 0.5, key="attack_beta", help="Softplus sharpness; large β ≈ ReLU.")
    st.markdown("**Where the map should point** (a box, in image pixels)")
    cols = st.columns(4)
    box = [cols[i].number_input(n, 0, w if i % 2 == 0 else h, v, key=f"attack_box:{ctx.digest}:{n}")
           for i, (n, v) in enumerate(zip(("x0", "y0", "x1", "y1"), (int(w * 0.65), 0, w, int(h * 0.35)), strict=True))]
    if st.button("▶️ Run the attack", type="primary", key="attack_run"):
        goal = np.zeros((h, w), np.float32)
        goal[min(box[1], box[3]):max(box[1], box[3]), min(box[0], box[2]):max(box[0], box[2])] = 1.0
        if not goal.any():
            st.error("The box is empty: give it a width and a height.")
            return
        # Any click reruns the script, which interrupts the attack at its next progress report: that is the Stop.
        st.button("⏹️ Stop", key="attack_stop", help="Stops the attack; the last finished result stays.")
        bar = widgets.LazyProgress(st.empty(), "Attacking")
        try:
            r = sanity.manipulate(ctx.workbench, ctx.image, goal, method=method, epsilon=eps / 255, steps=steps,
                                  lr=1e-2, gamma=10.0, defence_beta=beta, target=target, progress=bar)
        except xc.XaiError as e:
            st.error(str(e))
            return
        bar.clear()
        st.session_state[RESULT] = (ctx.model_key, ctx.digest, target, r)
    result = st.session_state.get(RESULT)
    if result and result[:3] == (ctx.model_key, ctx.digest, target):
        _show(result[3], ctx.image.shape[:2], ctx.model.label(target))


def _show(r: sanity.AttackResult, shape: tuple[int, int], label: str) -> None:
    """Everything at the model's input resolution, displayed at the image's own aspect ratio."""
    h, w = fit(np.zeros((*shape, 1), np.uint8), 480).shape[:2]

    def show(a: np.ndarray) -> np.ndarray:
        return cv2.resize(a, (w, h), interpolation=cv2.INTER_LINEAR)

    diff = np.abs(r.manipulated.astype(np.int16) - r.original.astype(np.int16))
    amplified = np.clip(diff * (255 / max(int(diff.max()), 1)), 0, 255).astype(np.uint8)
    cols = st.columns(3)
    cols[0].image(show(r.original), caption=f"original · p({label}) = {r.probability_before:.3f}", width="stretch")
    cols[1].image(show(r.manipulated), caption=f"manipulated · p({label}) = {r.probability_after:.3f}", width="stretch")
    cols[2].image(show(amplified), caption=f"|δ| amplified ×{255 / max(int(diff.max()), 1):.0f} (max {int(diff.max())}/255)",
                  width="stretch")
    cols = st.columns(3)
    for c, m, cap in zip(cols, (r.map_before, r.map_after, r.target_map),
                         (f"map of “{label}” on the original", "the same on the manipulated image",
                          "where the map should go"), strict=True):
        c.image(show(overlay_small(r.original, np.abs(m), False, alpha=0.85, cmap="inferno")), caption=cap,
                width="stretch")
    a, b, c = st.columns(3)
    a.metric("Distance to the target", f"{r.distance_after:.3g}", f"{r.distance_after - r.distance_before:+.3g}",
             delta_color="inverse")
    b.metric("Attack success (ReLU maps)", f"{r.success:.0%}", help="Share of the distance to the target removed.")
    c.metric(f"Success against softplus(β={r.beta:g}) maps", f"{r.defended_success:.0%}",
             f"{r.defended_success - r.success:+.0%}", delta_color="inverse")
