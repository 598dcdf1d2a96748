"""One explanation's card below its heatmap: facts, notices and method-specific panels."""

from __future__ import annotations

from typing import Any

import numpy as np
import streamlit as st

import xai_core as xc
from xai_core import render

from . import services


def facts(e: xc.Explanation) -> str:
    """A one-line summary: time, sign, and the method's own diagnostics."""
    x = e.extras
    info = [f"{e.seconds:.2f} s", "signed" if e.signed else "unsigned"]
    if "completeness_gap" in x:
        info.append(f"completeness gap {x['completeness_gap']:.1%}")
    if "efficiency_gap" in x:
        info.append(f"efficiency gap {x['efficiency_gap']:.2g}")
    if "relevance_kept" in x:
        info.append(f"pixels hold {x['relevance_kept']:.0%} of the logit")
    if "surrogate_r2" in x:
        info.append(f"surrogate R² {x['surrogate_r2']:.2f}")
    if "masks_used" in x:
        info.append(f"{x['masks_used']} masks")
    if "probability_before" in x and "probability_after" in x:
        info.append(f"p {x['probability_before']:.2f} → {x['probability_after']:.2f} after deletion")
    return " · ".join(info)


def panels(e: xc.Explanation, image: np.ndarray, key: tuple) -> None:
    """Notices and method-specific views (LIME's superpixels, Meaningful Perturbation's mask)."""
    x = e.extras
    if x.get("notice"):
        st.info(x["notice"], icon="⏱️")
    if "segments" in x:
        weights = np.asarray(x.get("coefficients", x.get("shap_values")))
        with st.expander("Superpixels and the top 5 kept"):
            a, b = st.columns(2)
            a.image(services.memo(("seg", *key), lambda: render.superpixel_boundaries(image, x["segments"])),
                    caption=f"{int(x['segments'].max()) + 1} superpixels", width="stretch")
            b.image(services.memo(("top", *key), lambda: render.top_superpixels(image, x["segments"], weights)),
                    caption="top 5 positive superpixels", width="stretch")
    if "mask" in x and "perturbed" in x:
        with st.expander("Learned mask and perturbed image"):
            a, b = st.columns(2)
            a.image(np.clip(x["mask"], 0, 1), caption="keep-mask (white = kept)", width="stretch", clamp=True)
            b.image(x["perturbed"], caption="what the model saw", width="stretch")


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
