"""What to explain on a model that is not a classifier (issue 24): a prompt (and a contrast prompt) for a dual
encoder, a second image for similarity, a class and region for a segmenter, a detected box for a detector (click it).

:func:`picker` draws the controls and returns the :mod:`xai_core.targets` value (None while it is incomplete); the
choice is kept per model and image under :data:`CHOSEN` for the other pages. Prompts are untrusted text: the library
cleans them, and this page shows them only through ``escape``. :func:`capabilities` is the sidebar's "What works on
this model", per kind of target.
"""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import plotly.graph_objects as go
import streamlit as st

import xai_core as xc
from xai_core import images
from xai_core import targets as T

from . import errors, escape, figures, limits_view, services
from .state import Context

CHOSEN = "xai_target_value"  # (model key, image digest) -> the Target explained there last
KINDS = {"prompt": "A text prompt", "similarity": "Similarity to another image", "region": "A segmentation region",
         "detection": "A detected box"}
SCORES = {"prompt": "cosine similarity", "similarity": "cosine similarity", "region": "summed class score",
          "detection": "box score"}


def chosen(ctx: Context) -> T.Target | None:
    """The target this session last picked for the current model and image (None: none yet)."""
    t = st.session_state.get(CHOSEN, {}).get((ctx.model_key, ctx.digest))
    return t if isinstance(t, T.TARGET_TYPES) else None


def bound_context(ctx: Context) -> Context | None:
    """For Evaluate and Sanity: ``ctx`` itself for a classifier; for another model, the context of the model bound to
    the target picked on Explain (its class 0 is the target's scalar, its key names the target), or None after an
    info that says where to pick one. The bound model is cached per model, image and target."""
    if ctx.model.task == "classifier":
        return ctx
    target = chosen(ctx)
    if target is None:
        st.info(f"{escape.markdown(ctx.model.title)} has no classes: pick what to explain on the Explain page (a "
                "prompt, a reference image, a region or a box); this page then evaluates that target's score.")
        return None
    tkey = json.dumps(target.key)
    bound = services.memo(("bound", ctx.model_key, ctx.digest, tkey), lambda: ctx.workbench.bound(target, ctx.image).model)
    return dataclasses.replace(ctx, workbench=xc.Workbench(bound, ctx.options),
                               model_key=f"{ctx.model_key}|{services.bytes_digest(tkey.encode())}")


def score_text(e: xc.Explanation) -> str:
    """'p = 93.1%' for a class, 'cosine similarity 0.284' for a prompt, ..."""
    return f"p = {e.probability:.1%}" if e.target_kind == "class" else f"{SCORES[e.target_kind]} {e.probability:.3g}"


def picker(ctx: Context, image: np.ndarray) -> T.Target | None:
    """Draw the target controls for ``ctx.model`` and return the target (None until it is complete)."""
    kinds = xc.target_kinds(ctx.model)
    kind = kinds[0] if len(kinds) == 1 else st.radio("Explain", kinds, format_func=KINDS.get, horizontal=True,
                                                     key=f"target_kind:{ctx.model_key}")
    try:
        target = {"prompt": _prompt, "similarity": _reference, "region": _region, "detection": _detection}[kind](
            ctx, image)
    except xc.XaiError as e:
        errors.report(e, "Choosing the target")
        return None
    if target is not None:
        st.session_state.setdefault(CHOSEN, {})[(ctx.model_key, ctx.digest)] = target
    return target


def _prompt(ctx: Context, image: np.ndarray) -> T.Target | None:
    text = st.text_input("Prompt", "a photo of a horse", max_chars=T.PROMPT_CHARS, key="target_prompt",
                         help="The map shows what raises the cosine similarity of the image and this text.")
    contrast = st.text_input("Contrast prompt (optional)", "", max_chars=T.PROMPT_CHARS, key="target_contrast",
                             help="Explain 'prompt minus contrast': what makes the image more the one than the other.")
    return T.PromptTarget(text, contrast) if text.strip() else None


def _reference(ctx: Context, image: np.ndarray) -> T.Target | None:
    source = st.radio("Reference image", ["Sample", "Upload"], horizontal=True, key="target_ref_source")
    if source == "Upload":
        up = st.file_uploader("Reference image", type=limits_view.IMAGE_TYPES, key="target_ref_upload")
        if up is None:
            st.info("Upload the image to compare with.")
            return None
        data = up.getvalue()
        ref, _ = services.decoded_upload(services.bytes_digest(data), data)  # through the untrusted-image boundary
        name = escape.no_paths(up.name)[:80]
    else:
        names = images.all_sample_names()
        name = st.selectbox("Reference sample", names, index=min(1, len(names) - 1), key="target_ref_sample")
        ref = services.sample(name)[0]
    st.image(figures.display(ref, 160), caption=f"Reference: {escape.markdown(name)}")
    return T.SimilarityTarget(ref, name)


def _region(ctx: Context, image: np.ndarray) -> T.Target | None:
    out = services.memo(("describe", ctx.model_key, ctx.digest), lambda: ctx.workbench.describe(image))
    share, labels = out["share"], ctx.model.labels
    order = [int(i) for i in np.argsort(-share)]
    default = next((i for i in order if i != 0), order[0])  # the largest class that is not class 0 (background)
    c = st.selectbox("Class", order, index=order.index(default), key=f"target_region_class:{ctx.model_key}",
                     format_func=lambda i: f"{ctx.model.label(i)} · {share[i]:.0%} of the pixels")
    where = st.radio("Region", ["Its predicted region", "A box"], horizontal=True, key="target_region_where")
    box = None
    if where == "A box":
        a, b = st.columns(2)
        x = a.slider("Box left → right", 0.0, 1.0, (0.25, 0.75), 0.01, key="target_region_x")
        y = b.slider("Box top → bottom", 0.0, 1.0, (0.25, 0.75), 0.01, key="target_region_y")
        if x[0] >= x[1] or y[0] >= y[1]:
            st.info("Make the box wider than zero.")
            return None
        box = (x[0], y[0], x[1], y[1])
    st.plotly_chart(_segmentation(image, out["classes"], labels, c, box), width="stretch",
                    config={"displayModeBar": False}, key="target_region_fig")
    if box is None and share[c] == 0:
        st.info(f"The model gives no pixel to {escape.markdown(ctx.model.label(c))}: pick another class or a box.")
        return None
    return T.RegionTarget(c, box=box)


def _detection(ctx: Context, image: np.ndarray) -> T.Target | None:
    out = services.memo(("describe", ctx.model_key, ctx.digest), lambda: ctx.workbench.describe(image))
    least = st.slider("Show detections scoring at least", 0.0, 1.0, 0.3, 0.05, key="target_det_min")
    keep = [i for i in range(len(out["scores"])) if out["scores"][i] >= least][:20]
    if not keep:
        st.info("No detection scores that high on this image: lower the threshold or pick another image.")
        return None
    names = {i: f"{ctx.model.label(int(out['labels'][i]))} {out['scores'][i]:.2f}" for i in keep}
    pick = f"target_det_box:{ctx.model_key}:{ctx.digest}"
    event = st.plotly_chart(_boxes(image, out["boxes"], keep, names), width="stretch", on_select="rerun",
                            selection_mode=("points",), config={"displayModeBar": False}, key=f"{pick}:fig")
    points = getattr(getattr(event, "selection", None), "points", None) or []
    clicked = next((p.get("customdata") for p in points if isinstance(p, dict)), None)
    clicked = clicked[0] if isinstance(clicked, list) and clicked else clicked
    if isinstance(clicked, int) and clicked in keep and st.session_state.get(f"{pick}:clicked") != clicked:
        st.session_state[f"{pick}:clicked"] = st.session_state[pick] = clicked  # a click picks the box below
    if st.session_state.get(pick) not in keep:
        st.session_state[pick] = keep[0]
    i = st.selectbox("Box to explain (or click its centre)", keep, key=pick, format_func=names.get)
    scoring = st.radio("Score", list(T.DETECTION_SCORING), horizontal=True, key="target_det_scoring",
                       format_func=lambda s: "Matched box (IoU + score)" if s == "match" else "D-RISE (IoU × score)",
                       help="\n\n".join(T.DETECTION_SCORING.values()))
    return T.DetectionTarget(tuple(float(v) for v in out["boxes"][i]), int(out["labels"][i]), scoring)


def _base(image: np.ndarray) -> tuple[go.Figure, int, int]:
    small = figures.display(image, figures.DISPLAY_SIDE)
    h, w = small.shape[:2]
    fig = go.Figure(go.Image(z=small, hoverinfo="skip"))
    fig.update_layout(height=h + 20, margin=dict(l=0, r=0, t=10, b=0), showlegend=False,
                      xaxis=dict(visible=False, range=[-0.5, w - 0.5]),
                      yaxis=dict(visible=False, range=[h - 0.5, -0.5], scaleanchor="x"))
    return fig, h, w


def _segmentation(image: np.ndarray, classes: np.ndarray, labels: list[str], c: int,
                  box: tuple[float, float, float, float] | None) -> go.Figure:
    fig, h, w = _base(image)
    ch, cw = classes.shape
    fig.add_trace(go.Heatmap(z=(classes == c).astype(float), x0=(w / cw - 1) / 2, dx=w / cw, y0=(h / ch - 1) / 2,
                             dy=h / ch, colorscale=[[0, "rgba(0,0,0,0)"], [1, "rgba(230,60,60,0.45)"]],
                             showscale=False, hoverinfo="skip"))
    if box is not None:
        x0, y0, x1, y1 = box[0] * w, box[1] * h, box[2] * w, box[3] * h
        fig.add_shape(type="rect", x0=x0, y0=y0, x1=x1, y1=y1, line=dict(color="#f1c40f", width=3))
    fig.update_layout(title=dict(text=f"predicted {escape.plain(labels[c] if c < len(labels) else c)}",
                                 font=dict(size=13)), margin=dict(l=0, r=0, t=30, b=0))
    return fig


def _boxes(image: np.ndarray, boxes: np.ndarray, keep: list[int], names: dict[int, str]) -> go.Figure:
    fig, h, w = _base(image)
    for i in keep:
        x0, y0, x1, y1 = boxes[i] * [w, h, w, h]
        fig.add_trace(go.Scatter(x=[x0, x1, x1, x0, x0], y=[y0, y0, y1, y1, y0], mode="lines",
                                 line=dict(color="#f1c40f" if i == keep[0] else "#3498db", width=2), hoverinfo="skip"))
    cx = [(boxes[i][0] + boxes[i][2]) / 2 * w for i in keep]
    cy = [(boxes[i][1] + boxes[i][3]) / 2 * h for i in keep]
    fig.add_trace(go.Scatter(x=cx, y=cy, mode="markers", marker=dict(size=14, color="#f1c40f", line=dict(width=1)),
                             customdata=[[i] for i in keep], text=[escape.plain(names[i]) for i in keep],
                             hovertemplate="%{text}<extra>click to explain</extra>"))
    return fig


def capabilities(spec: xc.ModelSpec, key: str) -> None:
    """The sidebar's "What works on this model" for a model that is not a classifier: per kind of target."""
    with st.expander("What works on this model", expanded=False):
        st.caption(f"A {escape.markdown(spec.task.replace('_', ' '))}: it is explained for "
                   + ", ".join(KINDS[k].lower() for k in xc.target_kinds(spec)) + ".")
        for kind in xc.target_kinds(spec):
            rows = services.capabilities(key, spec, kind)
            st.caption(f"**{KINDS[kind]}** ✅ " + ", ".join(c.title for c in rows if c.applies))
            for c in rows:
                if not c.applies:
                    st.caption(f"— **{c.title}**: {escape.markdown(c.why)}")
