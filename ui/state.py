"""The session layer: what one visitor picked, kept in ``st.session_state`` across pages and reruns.

The sidebar (drawn once per run by the entrypoint, before the page) builds a :class:`Context` and stores
it under :data:`CONTEXT`; every page reads it with :func:`current`. Choices that must outlive a widget
(the class to explain, the Explain page's explainers, parameters and seed) live under ``xai_*`` keys, never only in
widget keys, because Streamlit deletes the state of a widget that a page stops drawing (:func:`keep_widgets` and
:func:`restore_widgets` carry a page's widget values across a visit to another page).

The class: pages call :func:`target` (or draw :func:`target_box`); only they and the URL (``links``) read :data:`TARGETS`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
import streamlit as st

from xai_core import ModelSpec, RunOptions, Workbench

from . import callbacks

CONTEXT = "xai_context"
LAST_IMAGE = "xai_last_image"
TARGETS = "xai_targets"
# The Explain page's choices (explainers, their parameters, target, seed), kept for the Evaluate page:
# widget state does not survive a page switch.
CHOICE = "xai_choice"
KEPT = "xai_kept_widgets"  # page -> {widget key: value}: a page's widget values, given back when the visitor returns
_INDEX = re.compile(r"· #(\d{1,6})\b")


class Upload(NamedTuple):
    """An uploaded (or handed-over) image as this session keeps it under :data:`LAST_IMAGE`. ``token`` is its random
    share token (``links.keep``): a link names the image by it, never by its content digest."""

    image: np.ndarray
    name: str
    digest: str
    notes: list[str]
    token: str


@dataclass
class Context:
    """What the sidebar picked: the session's workbench (model + run options) and the image (and its digest)."""

    workbench: Workbench
    model_key: str
    image: np.ndarray
    image_name: str
    digest: str
    notes: list[str] = field(default_factory=list)
    source: str = "sample"  # or "upload"
    token: str = ""  # an upload's share token (``links``): the only name of the image a link may carry

    @property
    def model(self) -> ModelSpec:
        return self.workbench.model

    @property
    def options(self) -> RunOptions:
        return self.workbench.options


def current() -> Context:
    """The context the sidebar drew for this run (the entrypoint always draws it before the page)."""
    ctx = st.session_state.get(CONTEXT)
    if ctx is None:
        raise RuntimeError("The sidebar has not been drawn: pages run through app.py, never on their own.")
    return ctx


def class_index(value: object, num_classes: int) -> int | None:
    """A class index from a widget's session value, which is never assumed to be of the type it was given: an int in
    range, or a label ``"name · #968"`` (a browser may send back a label it showed earlier); anything else is None."""
    if isinstance(value, str):
        found = _INDEX.search(value)
        value = int(found.group(1)) if found else None
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool) and 0 <= int(value) < num_classes:
        return int(value)
    return None


def target(ctx: Context, top: int) -> int:
    """THE class this session explains for the current model and image: the last one picked on any page (Explain,
    Evaluate), else ``top`` (pass the top-1 class, ``int(probs.argmax())``). Every page that explains a class calls
    this (or draws :func:`target_box`, which starts on it)."""
    chosen = class_index(st.session_state.get(TARGETS, {}).get((ctx.model_key, ctx.digest)), ctx.model.num_classes)
    return top if chosen is None else chosen


def remember_target(ctx: Context, value: object) -> None:
    """Make ``value`` the session's class for this model and image (ignored unless it is a class of the model)."""
    _remember(ctx.model_key, ctx.digest, ctx.model.num_classes, value)


def _remember(model_key: str, digest: str, num_classes: int, value: object) -> None:
    index = class_index(value, num_classes)
    if index is not None:
        st.session_state.setdefault(TARGETS, {})[(model_key, digest)] = index


def _remember_widget(model_key: str, digest: str, num_classes: int, widget: str) -> None:
    _remember(model_key, digest, num_classes, st.session_state.get(widget))


def target_box(ctx: Context, probs: np.ndarray, label: str, key: str) -> int:
    """A searchable class picker that starts on the session's target and writes the choice back to it.

    Its value is the class index and its label ``"name · #index"`` is the same on every run (Streamlit identifies a
    selectbox's value by its label: a label with the probability in it stopped matching once an edit of the image
    changed the probabilities). The probability is a caption under the box."""
    model = ctx.model
    n = model.num_classes
    widget = f"{key}:{ctx.model_key}:{ctx.digest}"
    chosen = target(ctx, int(probs.argmax()))
    current = st.session_state.get(widget)
    if type(current) is not int or current != chosen:  # another page changed the target, or a stale label came back
        st.session_state[widget] = chosen
    # on_change runs before the rerun's script, so the new pick is remembered before any page reads it.
    value = st.selectbox(label, range(n), key=widget, format_func=lambda i: f"{model.label(i)} · #{i}",
                         on_change=callbacks.guarded(_remember_widget, "Choosing the class"),
                         args=(ctx.model_key, ctx.digest, n, widget))
    index = class_index(value, n)
    index = chosen if index is None else index
    if 0 <= index < len(probs):
        st.caption(f"p = {float(probs[index]):.1%} for this image")
    return index


def restore_widgets(page: str) -> None:
    """Before a page draws its widgets: give back the values they had when the visitor left the page (Streamlit
    deletes the state of a widget that a run does not draw). A value already in the session (from a URL) wins."""
    for k, v in st.session_state.get(KEPT, {}).get(page, {}).items():
        if k not in st.session_state:
            st.session_state[k] = v


def keep_widgets(page: str, keys: tuple[str, ...] = (), prefixes: tuple[str, ...] = ()) -> None:
    """After a page drew its widgets: keep the values of ``keys`` and of every key starting with one of ``prefixes``
    under an ``xai_*`` key, for :func:`restore_widgets`."""
    kept = st.session_state.setdefault(KEPT, {}).setdefault(page, {})
    for k in list(st.session_state.keys()):
        if isinstance(k, str) and (k in keys or (prefixes and k.startswith(prefixes))):
            kept[k] = st.session_state[k]
