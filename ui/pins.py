"""Pin and compare: keep one result, change one thing (class, model, a parameter, or an edit of the image) and see
both side by side with their difference. The edits (occlude a box, blur a region, paste the ImageNet-W
watermark) come from ``xai_core.lessons.edits``."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import streamlit as st

import xai_core as xc
from xai_core import images, render
from xai_core.lessons import edits

from . import escape, figures, services

PIN = "xai_pin"
EDIT_NAMES = {"none": "no edit", "occlude": "occlude a box (grey)", "blur": "blur a region",
              "watermark": "paste the ImageNet-W watermark"}


@dataclass
class Pinned:
    label: str
    image: np.ndarray
    maps: dict[str, tuple[str, np.ndarray, bool]]  # explainer id -> (title, raw map, signed)


def edited(ctx) -> tuple[np.ndarray, str, str]:  # noqa: ANN001
    """The image this page explains: the sidebar's, or an edit of it. Returns (image, digest, what was done)."""
    with st.expander("✏️ Edit the image (then compare with a pinned result)"):
        kind = st.selectbox("Edit", edits.EDITS, key="edit_kind", format_func=EDIT_NAMES.get)
        box = (0.3, 0.3, 0.7, 0.7)
        if kind in ("occlude", "blur"):
            c1, c2 = st.columns(2)
            xs = c1.slider("Box left–right (fraction of the width)", 0.0, 1.0, (0.3, 0.7), 0.05, key="edit_x")
            ys = c2.slider("Box top–bottom (fraction of the height)", 0.0, 1.0, (0.3, 0.7), 0.05, key="edit_y")
            box = (xs[0], ys[0], xs[1], ys[1])
    if kind == "none":
        return ctx.image, ctx.digest, ""
    try:
        out = services.memo(("edit", ctx.digest, kind, box), lambda: edits.edit(ctx.image, kind, box))
    except xc.XaiError as err:
        st.error(str(err))
        return ctx.image, ctx.digest, ""
    return out, images.image_digest(out), EDIT_NAMES[kind]


def pin_button(label: str, image: np.ndarray, results: list[tuple[str, xc.Explanation]]) -> None:
    if st.button("📌 Pin these maps", key="pin", help="Keep this result; change one thing and compare below."):
        st.session_state[PIN] = Pinned(label, image, {e.method: (e.title, e.map, e.signed) for _, e in results})
        st.toast("Pinned. Change the class, model, a parameter or edit the image to compare.")


def difference(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``b − a`` with each map divided by its own largest |value| (models and methods differ in scale), at b's size."""
    if a.shape != b.shape:
        a = cv2.resize(a, b.shape[::-1], interpolation=cv2.INTER_LINEAR)
    scale = lambda m: m / (float(np.abs(m).max()) or 1.0)  # noqa: E731
    return (scale(b) - scale(a)).astype(np.float32)


def compare(label: str, image: np.ndarray, results: list[tuple[str, xc.Explanation]], alpha: float, cmap: str,
            full: bool) -> None:
    """Pinned vs current vs difference, for every explainer in both."""
    pin: Pinned | None = st.session_state.get(PIN)
    if pin is None:
        return
    shared = [e for _, e in results if e.method in pin.maps]
    head, clear = st.columns([5, 1])
    head.subheader(f"📌 Pinned: {escape.markdown(pin.label)}  ·  now: {escape.markdown(label)}")
    if clear.button("Unpin", key="unpin"):
        del st.session_state[PIN]
        st.rerun()
    if not shared:
        st.caption("None of the pinned explainers is shown now; pick one of: "
                   + ", ".join(t for t, _, _ in pin.maps.values()))
    side = 640 if full else figures.DISPLAY_SIDE
    for e in shared:
        title, old, signed = pin.maps[e.method]
        diff = difference(old, e.map)
        cols = st.columns(3)
        cols[0].image(figures.overlay_small(pin.image, old, signed, alpha=alpha, cmap=cmap, side=side),
                      caption=f"{title} · pinned", width="stretch")
        cols[1].image(figures.overlay_small(image, e.map, e.signed, alpha=alpha, cmap=cmap, side=side),
                      caption=f"{e.title} · now", width="stretch")
        cols[2].image(render.colorize(figures.fit(diff, side), True, scale=1.0), width="stretch",
                      caption=f"difference (now − pinned, each scaled to its max; full colour = ±1): mean |Δ| "
                              f"{np.abs(diff).mean():.3f}")
