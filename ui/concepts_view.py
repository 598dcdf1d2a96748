"""The Concepts page's results: importance bars, reference crops, each concept's map on the current image, names kept
for the session, and P-ClArC's before/after."""

from __future__ import annotations

import html

import cv2
import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

import xai_core as xc
from xai_core.untrusted import LIMITS

from . import callbacks, escape, jobs, services
from . import concepts_data as data
from .concepts_data import MIN_IMAGES, ConceptSet, Found, clarc_for, clarc_job, clarc_sig, concept_maps, is_lab
from .figures import overlay_small
from .state import Context

NAMES = "xai_concept_names"  # {(discovery signature, concept index): name}: kept for the session (and for reports)
CLARC_JOB = "concepts_clarc_job"
NAME_LIMIT = 40
CROP_SIDE = 72
MB = 1024 * 1024


def pick_set(ctx: Context, target: int) -> ConceptSet | None:
    """The "Set" choice and its widgets: the horse-watermark set (lab CNN), the bundled samples, or an uploaded zip;
    one sentence on its size against discovery's minimum. ``None`` (with one error sentence) when there is no set yet."""
    choices = data.set_choices(ctx)
    how = st.radio("Set", choices, format_func=data.SETS.get, horizontal=True, key=f"concepts_set:{is_lab(ctx)}",
                   help="The images concepts are discovered from: the class's concepts are what recurs across them.")
    if how not in choices:  # a stale session value
        how = choices[0]
    cset: ConceptSet | None = None
    if how == "lab":
        n = st.slider("Images generated from the horse-watermark set (the class's share is used)", 20, 400, 200, 20,
                      key="concepts_n")
        cset = data.concept_set(ctx, target, n)
    elif how == "samples":
        cset = data.sample_set(ctx)
    else:
        up = st.file_uploader("Zip of images", type=["zip"], key="concepts_zip", max_upload_size=LIMITS.upload_bytes // MB,
                              help=f"Zip a folder of images of one class (PNG, JPEG, …; any folder depth), up to "
                                   f"{LIMITS.set_images} images and {LIMITS.upload_bytes // MB} MB.")
        if up is None:
            st.info(f"Upload a zip of at least {MIN_IMAGES} images of the class.")
            return None
        raw = up.getvalue()
        try:
            cset, notes = data.zip_set(ctx, services.bytes_digest(raw), raw)
        except xc.XaiError as e:
            st.error(str(e))
            return None
        if notes:
            st.caption("ℹ️ " + escape.markdown(" · ".join(notes[:5]))
                       + (f" (and {len(notes) - 5} more skipped)" if len(notes) > 5 else ""))
        if cset is None:
            st.error("The zip holds no image the app can read; zip a folder of PNG or JPEG images and upload that.")
            return None
    small = len(cset.images) < MIN_IMAGES
    st.caption(f"The set is {escape.markdown(cset.title)}; discovery needs at least {MIN_IMAGES} images"
               + (", so this set is too small." if small else "."))
    return cset


def name_of(found: Found, index: int) -> str:
    """The visitor's name for a concept, else 'concept k' (as the visitor typed it: escape where it is shown)."""
    kept = st.session_state.get(NAMES, {}).get((found.sig, index))
    return kept if isinstance(kept, str) and kept else f"concept {index + 1}"


def _keep_name(sig: tuple, index: int, widget: str) -> None:
    value = st.session_state.get(widget)
    text = " ".join(value.split())[:NAME_LIMIT] if isinstance(value, str) else ""
    st.session_state.setdefault(NAMES, {})[(sig, index)] = text


def _widget(found: Found, index: int) -> str:
    return f"concept_name:{services.bytes_digest(repr(found.sig).encode())}:{index}"


def render(ctx: Context, found: Found) -> None:
    d = found.discovery
    st.caption(f"{len(d.concepts)} concepts of **{escape.markdown(ctx.model.label(d.target))}** at layer "
               f"`{d.layer}`, from {escape.markdown(found.set.title)}; the factorisation leaves "
               f"{d.relative_error:.0%} of the activations unexplained. Importance: {d.importance_method}.")
    st.plotly_chart(_bars(found), width="stretch", config={"displayModeBar": False}, key="concepts_bars")
    maps = concept_maps(ctx, found)
    order = {c.index: i for i, c in enumerate(d.concepts)}
    for c in d.concepts:
        with st.container(border=True):
            left, mid, right = st.columns([2, 4, 2])
            widget = _widget(found, c.index)
            if widget not in st.session_state:
                st.session_state[widget] = st.session_state.get(NAMES, {}).get((found.sig, c.index), "")
            left.text_input(f"Name concept {c.index + 1}", key=widget, max_chars=NAME_LIMIT,
                            placeholder="e.g. the corner tag", on_change=callbacks.guarded(_keep_name, "Naming the concept"),
                            args=(found.sig, c.index, widget))
            left.caption(f"importance share {c.share:+.0%}")
            mid.image([_crop(found, r.image, r.box) for r in c.crops], width=CROP_SIDE)
            mid.caption(f"Where {escape.markdown(name_of(found, c.index))} is strongest in the set "
                        f"(top {len(c.crops)} crops)")
            right.image(overlay_small(ctx.image, maps[order[c.index]], False, alpha=0.6, cmap="inferno", side=200),
                        caption="its map on the current image", width="stretch")
    _clarc(ctx, found)


def _bars(found: Found) -> go.Figure:
    cs = found.discovery.concepts[::-1]  # most important on top
    labels = [html.escape(name_of(found, c.index)) for c in cs]
    fig = go.Figure(go.Bar(x=[c.share for c in cs], y=labels, orientation="h",
                           marker_color=["#c0392b" if c.share >= 0 else "#2c6fbb" for c in cs],
                           text=[f"{c.share:+.0%}" for c in cs], textposition="auto",
                           hovertemplate="%{y}: %{x:+.1%} of the class's concept importance<extra></extra>"))
    fig.update_layout(height=60 + 28 * len(cs), margin=dict(l=8, r=8, t=30, b=8), title="Concept importance",
                      xaxis=dict(tickformat=".0%"), yaxis=dict(automargin=True))
    return fig


def _crop(found: Found, image: int, box: tuple[int, int, int, int]) -> np.ndarray:
    x0, y0, x1, y1 = box
    piece = found.set.images[image][y0:y1, x0:x1]
    return cv2.resize(piece, (CROP_SIDE, CROP_SIDE), interpolation=cv2.INTER_NEAREST)


def _clarc(ctx: Context, found: Found) -> None:
    st.subheader("Correct it: remove a concept (P-ClArC)")
    st.caption("P-ClArC (Anders et al. 2022) projects the concept's direction out of the layer's activations on every "
               "forward pass: no retraining, everything else at the layer is kept. "
               + ("The numbers are the lab's shortcut report on fresh horse-watermark images."
                  if is_lab(ctx) else "The numbers are the class's probability on the current image."))
    indices = [c.index for c in found.discovery.concepts]
    # a stable label (Streamlit identifies a selectbox's value by its label: a renamed concept would lose the pick)
    index = st.selectbox("Concept to remove", indices, key="concepts_clarc_pick", format_func=lambda i: f"concept {i + 1}")
    if index not in indices:  # a stale session value from an earlier discovery
        index = indices[0]
    sig = clarc_sig(ctx, found, index)
    if name_of(found, index) != f"concept {index + 1}":
        st.caption(f"Concept {index + 1} is *{escape.markdown(name_of(found, index))}*.")
    jobs.panel(CLARC_JOB, "🧹 Remove it (P-ClArC)", lambda: clarc_job(ctx, found, index, sig), lambda _res: None,
               title="P-ClArC", help="Runs in the background; the model's other users wait only for its forward passes.")
    rows = clarc_for(sig, st.session_state.get(CLARC_JOB))
    if rows is not None:
        st.markdown(f"**Before and after removing {escape.markdown(name_of(found, index))}**")
        st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")
