"""One explanation's card below its heatmap: facts, notices and panels, built from the diagnostics each explainer
declares (name, title, how to show) — this module names no method."""

from __future__ import annotations

from typing import Any

import numpy as np
import streamlit as st

import xai_core as xc
from xai_core import render

from . import services


def facts(e: xc.Explanation) -> str:
    """A one-line summary: time, sign, and every diagnostic the explainer declares as a caption."""
    return " · ".join([f"{e.seconds:.2f} s", "signed" if e.signed else "unsigned", *(d.text for d in e.shown("caption"))])


def panels(e: xc.Explanation, image: np.ndarray, key: tuple) -> None:
    """Notices, images and superpixel views, each drawn the way its declaration says (no method is named here)."""
    for d in e.shown("notice"):
        st.info(d.text if d.spec.fmt else str(d.value), icon="⏱️")
    for d in e.shown("segments"):
        _segments(e, d, image, key)
    pictures = e.shown("image")
    if pictures:
        with st.expander(" and ".join(d.spec.title for d in pictures).capitalize()):
            for col, d in zip(st.columns(len(pictures)), pictures, strict=True):
                col.image(_displayable(d.value), caption=d.spec.title, width="stretch", clamp=True)


def _displayable(value: np.ndarray) -> np.ndarray:
    """Float maps are shown in [0, 1]; uint8 images as they are."""
    a = np.asarray(value)
    return np.clip(a, 0, 1) if a.dtype.kind == "f" else a


def _segments(e: xc.Explanation, d: xc.DiagnosticValue, image: np.ndarray, key: tuple) -> None:
    segments = np.asarray(d.value)
    weights = e.value(d.spec.weights)
    with st.expander(d.spec.title):
        a, b = st.columns(2)
        a.image(services.memo(("seg", d.spec.name, *key), lambda: render.superpixel_boundaries(image, segments)),
                caption=f"{int(segments.max()) + 1} superpixels", width="stretch")
        if weights is not None:
            b.image(services.memo(("top", d.spec.name, *key),
                                  lambda: render.top_superpixels(image, segments, np.asarray(weights))),
                    caption="top 5 positive superpixels", width="stretch")


def stop_control(signature: tuple, pending: list[str], slot: Any) -> bool:
    """A Stop button (in ``slot``, emptied by the caller when done) while maps are being computed;
    returns False once the user has stopped this request."""
    if st.session_state.get("stopped") == signature:
        left, right = st.columns([5, 1])
        left.warning(f"Stopped: {', '.join(pending)} not computed. Change a setting or resume.", icon="⏹️")
        if right.button("▶️ Resume", key="resume"):
            del st.session_state["stopped"]
            st.rerun()
        return False
    if pending and slot.button("⏹️ Stop", key="stop", help="Stops between two batches; finished maps stay."):
        st.session_state["stopped"] = signature
        st.rerun()
    return True
