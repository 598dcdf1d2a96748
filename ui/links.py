"""The view's state in the page's URL, so a reload (a new Streamlit session) or a copied link restores it.

``?model=resnet18&sample=Coffee+cup&target=967`` or ``?image=<token>`` for an upload; the Explain page adds
``explainers=gradcam,rise``, ``p=rise.masks=500`` (repeated, one per changed parameter) and ``seed=3``; the Learn
page ``lesson=ig_path``; ``present=1`` opens presentation mode. The page itself is the URL's path.

Uploads are private to their session. An upload is kept decoded in a small process-wide store under a random
share token (144 bits, made for this upload in this session; :func:`keep`), never under its content digest: anyone
can compute the digest of a public photo, but only someone the owner gave the link to has the token. A fresh server
does not have it, and the page says to upload it again. :func:`hand_over` is the one way another page (Runs) hands
an image to the Explain page. Every value read
from a URL is untrusted and checked against what exists (explainers and their parameters through
``ExplainRequest`` validation); anything else is ignored.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlencode

import numpy as np
import streamlit as st

import xai_core as xc
from xai_core import images

from . import services
from .state import LAST_IMAGE, TARGETS, Upload

RESTORED = "xai_url_restored"
VIEW = "xai_url_view"  # the Explain page's explainers, parameters and seed from the URL, until that page adopts them
MISSING_UPLOAD = "xai_url_missing_upload"
LESSON = "xai_url_lesson"
PRESENT = "xai_present"
TOKENS = "xai_share_tokens"  # this session's uploads: content digest -> share token
MAX_EXPLAINERS = 8
_TOKEN = re.compile(r"[A-Za-z0-9_-]{24}")
KEPT_UPLOADS = 32  # decoded images of at most 1024 px: ~100 MB at most


@st.cache_resource
def kept_uploads() -> services.LRU:
    """Decoded uploads (:class:`~ui.state.Upload`) by share token, shared by the sessions of this process, bounded."""
    return services.LRU(KEPT_UPLOADS)


def keep(image: np.ndarray, name: str, notes: Sequence[str] = ()) -> Upload:
    """Keep an image this session uploaded (or was handed) where a link with its share token finds it. The token is
    random, made once per image and session (a rerun reuses it: the link stays the same), never derived from the
    pixels; only the base of ``name`` is kept (a server path is never shown)."""
    digest = images.image_digest(image)
    tokens = st.session_state.setdefault(TOKENS, {})
    token = tokens.get(digest) or secrets.token_urlsafe(18)
    tokens[digest] = token
    kept = Upload(image, str(name).replace("\\", "/").rsplit("/", 1)[-1], digest, list(notes), token)
    kept_uploads().put(token, kept)
    return kept


def hand_over(image: np.ndarray, name: str, model: str = "") -> str:
    """THE way to hand an image to the Explain page (e.g. from a run): keeps it (:func:`keep`) and returns the
    Explain page's URL that opens it, with ``model`` when it is one of the picker's models."""
    kept = keep(image, name)
    query = {"model": model} if model in xc.list_models() else {}
    return "/?" + urlencode({**query, "image": kept.token})


def restore(model_names: list[str]) -> None:
    """Once per session, before the sidebar's widgets exist: seed their state from the URL."""
    if st.session_state.get(RESTORED):
        return
    st.session_state[RESTORED] = True
    q = st.query_params
    model = q.get("model")
    if model in model_names:
        st.session_state["model_choice"] = model
    token = q.get("image") or ""
    kept = kept_uploads().get(token) if _TOKEN.fullmatch(token) else None
    if isinstance(kept, Upload):
        st.session_state["image_source"] = "Upload"
        st.session_state[LAST_IMAGE] = kept
    elif token:
        st.session_state[MISSING_UPLOAD] = True
    elif q.get("sample") in images.all_sample_names():
        st.session_state["image_source"] = "Sample"
        st.session_state["sample_name"] = q.get("sample")
    target = q.get("target") or ""
    if target.isdigit() and len(target) < 7:
        st.session_state["xai_url_target"] = int(target)
    st.session_state[VIEW] = parse_view(q.get("explainers") or "", q.get_all("p"), q.get("seed") or "")
    if q.get("lesson"):
        st.session_state[LESSON] = q.get("lesson")
    st.session_state[PRESENT] = q.get("present") == "1"


def _value(p: xc.ParamSpec, text: str) -> Any:
    if p.kind == "bool":
        return {"true": True, "1": True, "false": False, "0": False}[text.lower()]
    if p.kind == "int":
        return int(text)
    if p.kind == "float":
        return float(text)
    return text


def parse_view(explainers: str, params: list[str], seed: str) -> dict[str, Any]:
    """Explainer ids, their parameters and the seed from URL text; whatever is unknown or invalid is dropped."""
    known = {s.id: s for s in xc.list_explainers()}
    ids = list(dict.fromkeys(i for i in explainers.split(",") if i in known))[:MAX_EXPLAINERS]
    chosen: dict[str, dict[str, Any]] = {i: {} for i in ids}
    for item in params[:64]:
        mid, _, rest = item.partition(".")
        name, _, text = rest.partition("=")
        spec = known.get(mid)
        p = next((p for p in spec.params if p.name == name), None) if spec and mid in chosen else None
        if p is None or len(text) > 200:
            continue
        try:
            value = _value(p, text)
            xc.ExplainRequest.make(mid, None, {name: value})  # validates kind and range
        except (KeyError, ValueError, OverflowError, xc.XaiError):
            continue
        chosen[mid][name] = value
    view: dict[str, Any] = {"explainers": ids, "params": chosen}
    if seed.isdigit() and len(seed) < 11:
        view["seed"] = int(seed)
    return view


def adopt_view(model_id: str) -> bool:
    """Once, on the Explain page before its widgets: put the URL's explainers, parameters and seed into their
    widget state. True when it did (the caller reruns, so the widgets start from these values)."""
    view = st.session_state.pop(VIEW, None)
    if not view or not view.get("explainers"):
        return False
    st.session_state["explainers"] = view["explainers"]
    for mid, values in view["params"].items():
        for name, value in values.items():
            st.session_state[f"param:{model_id}:{mid}:{name}"] = value
    if "seed" in view:
        st.session_state["seed"] = view["seed"]
    return True


def publish_view(explainers: list[str], params: dict[str, dict[str, Any]], seed: int) -> None:
    """Write the Explain page's explainers, changed parameters and seed into the URL."""
    q = st.query_params
    want = {"explainers": ",".join(explainers),
            "p": [f"{m}.{k}={_text(v)}" for m in explainers for k, v in params.get(m, {}).items()],
            "seed": str(seed) if seed else None}
    for k, v in want.items():
        if not v:
            if k in q:
                del q[k]
        elif (q.get_all(k) if isinstance(v, list) else q.get(k)) != v:
            q[k] = v


def _text(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def publish_lesson(lesson_id: str) -> None:
    if st.query_params.get("lesson") != lesson_id:
        st.query_params["lesson"] = lesson_id


def share_url() -> str:
    """The link to this view: the browser's address (the page's path) with the current query string, less the
    session's workspace token (``ui/workspace.py``: a shared link never hands over the sharer's workspace)."""
    base = (st.context.url or "").split("?")[0]
    pairs = [(k, v) for k in st.query_params if k != "ws" for v in st.query_params.get_all(k)]
    return base + ("?" + urlencode(pairs) if pairs else "")


def missing_upload_notice(ctx: Any) -> None:
    """When a link named an uploaded image this server no longer has: say so until an image is uploaded."""
    if ctx.source == "upload":
        st.session_state.pop(MISSING_UPLOAD, None)
    elif st.session_state.get(MISSING_UPLOAD):
        st.warning("This link names an uploaded image that this server no longer has (it keeps uploads only while "
                   "it runs): upload the same image again in the sidebar to see the same maps.", icon="📤")


def publish(ctx: Any) -> None:
    """Write the session's model, image and target into the URL (only what changed)."""
    want = {"model": ctx.model_key if ctx.model_key in xc.list_models() else None,
            "sample": ctx.image_name if ctx.source == "sample" else None,
            "image": (ctx.token or None) if ctx.source == "upload" else None}
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
