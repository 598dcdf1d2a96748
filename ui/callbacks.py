"""Guarded widget callbacks: an ``on_change`` / ``on_click`` runs before the page script, outside ``app.py``'s error
boundary, so a failure there would replace the whole app with Streamlit's generic error. :func:`guarded` wraps every
callback: the traceback goes to the server log, one sentence waits in the session for :func:`show` (called by
``app.py`` before the page) to put on the page, and the rerun goes on."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import streamlit as st

from xai_core import XaiError

from .errors import log

FAILED = "xai_callback_failed"


def guarded(fn: Callable[..., Any], what: str) -> Callable[..., None]:
    """``fn`` as a widget callback that never raises; ``what`` names the action in the sentence a visitor reads."""

    @functools.wraps(fn)
    def callback(*args: Any, **kwargs: Any) -> None:
        try:
            fn(*args, **kwargs)
        except Exception as err:  # noqa: BLE001 - the boundary for callbacks: one sentence, the traceback logged
            if isinstance(err, XaiError):
                message = str(err)
            else:
                log.error("%s failed (widget callback)", what, exc_info=err)
                message = (f"{what} failed unexpectedly ({type(err).__name__}); the page kept your other choices. "
                           "The details are in the server log.")
            st.session_state[FAILED] = message

    callback.guarded = True  # type: ignore[attr-defined] - read by the tests that check every callback is guarded
    return callback


def show() -> None:
    """The sentence a failed callback left in this session, shown once on the page."""
    message = st.session_state.pop(FAILED, None)
    if isinstance(message, str):
        st.error(message)
