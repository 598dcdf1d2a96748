"""Cached services: models (st.cache_resource) and explanations (an LRU store keyed on digests).

Explanations are not kept with st.cache_data because they report progress into a bar created
outside the cached call, which cache_data cannot replay; a process-wide, bounded LRU keyed on
(model key, image digest, ExplainRequest.key, the run options that change numbers) gives the same
instant reruns. Keys are content (digests, normalised requests), never ``id()`` of an object.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import numpy as np
import streamlit as st

import xai_core as xc
from xai_core import images


@st.cache_resource
def threads() -> int:
    """Once per process: keep a core free for the browser and the server (see xai_core.device.configure_threads)."""
    return xc.device.configure_threads(reserve=1)


@st.cache_resource(show_spinner="Loading model…")
def model(name: str) -> xc.ModelSpec:
    threads()
    return xc.load_model(name)


@st.cache_resource(show_spinner="Downloading weights…")
def downloaded_model(name: str) -> xc.ModelSpec:
    return xc.load_model(name, allow_download=True)


@st.cache_resource(show_spinner="Checking and loading your model…", max_entries=4)
def uploaded_model(digest: str, filename: str, options: tuple[tuple[str, object], ...], labels_digest: str | None,
                   _data: bytes, _labels: bytes | None = None) -> xc.ModelSpec:
    """A user's model (any format of :func:`xai_core.load_own_model`), keyed on the file's digest, the options and the
    labels file's digest; at most 4 are kept in the process (each can be up to a GB), the oldest dropped first."""
    return xc.load_own_model(_data, filename, labels=_labels, **dict(options))


@st.cache_resource(max_entries=16)
def capabilities(model_key: str, _model: xc.ModelSpec, kind: str | None = None) -> list:
    """The capability matrix of a loaded model for targets of ``kind`` (default: its first; which explainers apply,
    and why the others do not)."""
    return xc.capabilities(_model, kind)


@st.cache_data(show_spinner=False, max_entries=64)
def decoded_upload(digest: str, _data: bytes) -> tuple[np.ndarray, list[str]]:
    img = images.decode_image(_data)
    small = images.downscale(img.array, 1024)
    notes = list(img.notes)
    if small.shape != img.array.shape:
        notes.append(f"downscaled from {img.array.shape[1]}×{img.array.shape[0]} for display and explanation")
    return small, notes


@st.cache_data(show_spinner=False)
def sample(name: str) -> tuple[np.ndarray, str]:
    img = images.downscale(images.load_sample(name), 1024)
    return img, images.image_digest(img)


def bytes_digest(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=12).hexdigest()


class LRU:
    """A small thread-safe LRU map shared by all sessions of this process."""

    def __init__(self, size: int) -> None:
        self.size, self._d, self._lock = size, OrderedDict(), threading.Lock()

    def get(self, key: Any) -> Any:
        with self._lock:
            if key in self._d:
                self._d.move_to_end(key)
                return self._d[key]
        return None

    def put(self, key: Any, value: Any) -> None:
        with self._lock:
            self._d[key] = value
            self._d.move_to_end(key)
            while len(self._d) > self.size:
                self._d.popitem(last=False)


@st.cache_resource
def store() -> LRU:
    return LRU(256)


@st.cache_data(show_spinner=False, max_entries=32)
def predictions(model_key: str, digest: str, _wb: xc.Workbench | xc.ModelSpec, _image: np.ndarray) -> np.ndarray:
    """Class probabilities of the image (keyed on the model and the image digest; bf16 rounding does not matter
    for a top-5 chart, so the run options are not part of the key)."""
    return xc.as_workbench(_wb).probabilities(_image)


def explanation_key(model_key: str, digest: str, options: xc.RunOptions, request: xc.ExplainRequest) -> tuple:
    """The store key of one explanation: the model, the image's digest, the request's normalised key, and the
    run options that can change the numbers (never ``id()`` of anything)."""
    return ("explain", model_key, digest, request.key, options.result_key)


def is_cached(model_key: str, digest: str, wb: xc.Workbench, request: xc.ExplainRequest) -> bool:
    return store().get(explanation_key(model_key, digest, wb.options, request)) is not None


def explanation(model_key: str, digest: str, wb: xc.Workbench, image: np.ndarray, request: xc.ExplainRequest,
                progress: Callable[[float, str], None] | None = None) -> xc.Explanation:
    """An explanation from the store, or computed by the session's Workbench (with progress) and stored."""
    key = explanation_key(model_key, digest, wb.options, request)
    hit = store().get(key)
    if hit is None:
        hit = wb.explain(image, request, progress=progress)
        store().put(key, hit)
    return hit


def model_digest(model: xc.ModelSpec | xc.Workbench) -> str:
    """A content digest of a model's weights, for caching results of models built in a session (the lab's)."""
    spec = model.model if isinstance(model, xc.Workbench) else model
    return spec.fingerprint()


def memo(key: tuple, build: Callable[[], Any]) -> Any:
    """Anything derived and deterministic (figures, PNGs) memoised in the same store."""
    hit = store().get(key)
    if hit is None:
        hit = build()
        store().put(key, hit)
    return hit
