"""The Concepts page's set picker and discovery results: importance bars, reference crops, each concept's map on the
current image and its name (kept in the workspace's database: ``concepts_names``), then the corrections
(``concepts_correct``)."""

from __future__ import annotations

import html

import plotly.graph_objects as go
import streamlit as st

import xai_core as xc
from xai_core import concepts
from xai_core.untrusted import LIMITS

from . import callbacks, concepts_correct, concepts_names, escape, services
from . import concepts_data as data
from .concepts_data import CROP_SIDE, MIN_IMAGES, ConceptSet, Found, concept_maps, crop, is_lab
from .concepts_names import NAME_LIMIT, name_of
from .figures import overlay_small
from .state import Context

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
        cset = zip_picker(ctx, "Zip of images", "concepts_zip", "Zip a folder of images of one class (PNG, JPEG, …; "
                          "any folder depth)", f"Upload a zip of at least {MIN_IMAGES} images of the class.")
        if cset is None:
            return None
    small = len(cset.images) < MIN_IMAGES
    st.caption(f"The set is {escape.markdown(cset.title)}; discovery needs at least {MIN_IMAGES} images"
               + (", so this set is too small." if small else "."))
    return cset


def zip_picker(ctx: Context, label: str, key: str, what: str, empty: str) -> ConceptSet | None:
    """A zip uploader read through the upload boundary (``concepts_data.zip_set``): the set, or ``None`` with one
    sentence (``empty`` before an upload; the boundary's error; no readable image); skipped files as one note."""
    up = st.file_uploader(label, type=["zip"], key=key, max_upload_size=LIMITS.upload_bytes // MB,
                          help=f"{what}, up to {LIMITS.set_images} images and {LIMITS.upload_bytes // MB} MB.")
    if up is None:
        st.info(empty)
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
    return cset


def _widget(found: Found, index: int) -> str:
    return f"concept_name:{services.bytes_digest(repr(found.sig).encode())}:{index}"


def render(ctx: Context, found: Found) -> None:
    d = found.discovery
    problem = concepts_names.load(found)
    if problem:
        st.error(f"{problem} Names are kept for this session only.")
    crp = concepts.is_crp(d)
    how = ("each is a channel, ranked by its share of the class's relevance (CRP); crops by relevance maximisation"
           if crp else f"the factorisation leaves {d.relative_error:.0%} of the activations unexplained")
    st.caption(f"{len(d.concepts)} concepts of **{escape.markdown(ctx.model.label(d.target))}** at layer "
               f"`{d.layer}`, from {escape.markdown(found.set.title)}; {how}. Importance: {d.importance_method}.")
    st.plotly_chart(_bars(found), width="stretch", config={"displayModeBar": False}, key="concepts_bars")
    maps = concept_maps(ctx, found)
    order = {c.index: i for i, c in enumerate(d.concepts)}
    for c in d.concepts:
        with st.container(border=True):
            left, mid, right = st.columns([2, 4, 2])
            widget = _widget(found, c.index)
            if widget not in st.session_state:
                st.session_state[widget] = concepts_names.names(found).get(c.index, "")
            left.text_input(f"Name concept {c.index + 1}", key=widget, max_chars=NAME_LIMIT,
                            placeholder="e.g. the corner tag", args=(found, c.index, widget),
                            on_change=callbacks.guarded(concepts_names.keep, "Naming the concept"),
                            help="Kept in this workspace's database: the same concept found again (after a reload or a "
                                 "restart) gets its name back; other visitors never see it.")
            left.caption(f"importance share {c.share:+.0%}")
            mid.image([crop(found, r.image, r.box) for r in c.crops], width=CROP_SIDE)
            mid.caption(f"Where {escape.markdown(name_of(found, c.index))} is strongest in the set "
                        f"(top {len(c.crops)} crops)")
            right.image(overlay_small(ctx.image, maps[order[c.index]], crp, alpha=0.6,
                                      cmap="inferno", side=200),
                        caption="its conditional heatmap on the current image" if crp else "its map on the current image",
                        width="stretch")
    concepts_correct.section(ctx, found)


def _bars(found: Found) -> go.Figure:
    cs = found.discovery.concepts[::-1]  # most important on top
    names = [name_of(found, c.index) for c in cs]
    # two concepts given one name would share a bar: the repeated ones carry their number
    labels = [html.escape(n if names.count(n) == 1 else f"{n} ({c.index + 1})") for n, c in zip(names, cs, strict=True)]
    fig = go.Figure(go.Bar(x=[c.share for c in cs], y=labels, orientation="h",
                           marker_color=["#c0392b" if c.share >= 0 else "#2c6fbb" for c in cs],
                           text=[f"{c.share:+.0%}" for c in cs], textposition="auto",
                           hovertemplate="%{y}: %{x:+.1%} of the class's concept importance<extra></extra>"))
    fig.update_layout(height=60 + 28 * len(cs), margin=dict(l=8, r=8, t=30, b=8), title="Concept importance",
                      xaxis=dict(tickformat=".0%"), yaxis=dict(automargin=True))
    return fig
