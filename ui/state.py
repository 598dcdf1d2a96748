"""The session layer: what one visitor picked, kept in ``st.session_state`` across pages and reruns.

The sidebar (drawn once per run by the entrypoint, before the page) builds a :class:`Context` and stores
it under :data:`CONTEXT`; every page reads it with :func:`current`. Choices that must outlive a widget
(the class to explain, the Explain page's explainers) live under ``xai_*`` keys, never in widget keys,
because Streamlit deletes the state of a widget that a page stops drawing.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import streamlit as st

from xai_core import ModelSpec, RunOptions, Workbench

CONTEXT = "xai_context"
LAST_IMAGE = "xai_last_image"
TARGETS = "xai_targets"
# The Explain page's choices (explainers, their parameters, target, seed), kept for the Evaluate page:
# widget state does not survive a page switch.
CHOICE = "xai_choice"


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


def target(ctx: Context, top: int) -> int:
    """The class this session explains for the current model and image: the last one picked on any page, else top-1."""
    return int(st.session_state.get(TARGETS, {}).get((ctx.model_key, ctx.digest), top))


def remember_target(ctx: Context, value: int) -> None:
    st.session_state.setdefault(TARGETS, {})[(ctx.model_key, ctx.digest)] = int(value)


def target_box(ctx: Context, probs: np.ndarray, label: str, key: str) -> int:
    """A searchable class picker that starts on the session's target and writes the choice back to it."""
    model = ctx.model
    widget = f"{key}:{ctx.model_key}:{ctx.digest}"
    chosen = target(ctx, int(probs.argmax()))
    if st.session_state.get(widget) != chosen:  # another page changed the target since this widget last ran
        st.session_state[widget] = chosen
    # on_change runs before the rerun's script, so the new pick is remembered before any page reads it.
    value = st.selectbox(label, range(model.num_classes), key=widget,
                         on_change=lambda: remember_target(ctx, st.session_state[widget]),
                         format_func=lambda i: f"{model.label(i)} · #{i} · p={probs[i]:.1%}")
    return int(value)
