"""The sidebar's choices in the page's URL, so a reload (a new Streamlit session) or a copied link restores them.

``?model=resnet18&sample=Coffee+cup&target=967`` or ``?image=<digest>`` for an upload. Uploaded images are
kept decoded in a small process-wide store keyed on their content digest (96 bits: a link works only for
someone who has it). Every value read from a URL is untrusted and checked against what exists; anything
else is ignored.
"""

from __future__ import annotations

import re
from typing import Any

import streamlit as st

import xai_core as xc
from xai_core import images

from . import services
from .state import LAST_IMAGE, TARGETS

RESTORED = "xai_url_restored"
_DIGEST = re.compile(r"[0-9a-f]{24}")
KEPT_UPLOADS = 32  # decoded images of at most 1024 px: ~100 MB at most


@st.cache_resource
def kept_uploads() -> services.LRU:
    """Decoded uploads by content digest, shared by the sessions of this process, bounded."""
    return services.LRU(KEPT_UPLOADS)


def restore(model_names: list[str]) -> None:
    """Once per session, before the sidebar's widgets exist: seed their state from the URL."""
    if st.session_state.get(RESTORED):
        return
    st.session_state[RESTORED] = True
    q = st.query_params
    model = q.get("model")
    if model in model_names:
        st.session_state["model_choice"] = model
    digest = q.get("image") or ""
    kept = kept_uploads().get(digest) if _DIGEST.fullmatch(digest) else None
    if kept is not None:
        st.session_state["image_source"] = "Upload"
        st.session_state[LAST_IMAGE] = kept
    elif q.get("sample") in images.sample_names():
        st.session_state["image_source"] = "Sample"
        st.session_state["sample_name"] = q.get("sample")
    target = q.get("target") or ""
    if target.isdigit() and len(target) < 7:
        st.session_state["xai_url_target"] = int(target)


def publish(ctx: Any) -> None:
    """Write the session's model, image and target into the URL (only what changed)."""
    want = {"model": ctx.model_key if ctx.model_key in xc.list_models() else None,
            "sample": ctx.image_name if ctx.source == "sample" else None,
            "image": ctx.digest if ctx.source == "upload" else None}
    targets = st.session_state.get(TARGETS, {})
    t = targets.get((ctx.model_key, ctx.digest))
    want["target"] = str(t) if t is not None else None
    q = st.query_params
    for k, v in want.items():
        if v is None and k in q:
            del q[k]
        elif v is not None and q.get(k) != v:
            q[k] = v


def adopt_target(ctx: Any) -> None:
    """A target from the URL applies to the first model and image drawn in this session, if the class exists."""
    t = st.session_state.pop("xai_url_target", None)
    if t is not None and 0 <= t < ctx.model.num_classes:
        st.session_state.setdefault(TARGETS, {})[(ctx.model_key, ctx.digest)] = t
