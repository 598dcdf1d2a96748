"""One sentence on the page for any failure; the traceback of an unexpected one goes to the server log only."""

from __future__ import annotations

import logging

import streamlit as st

from xai_core import XaiError

log = logging.getLogger("xai_explorer")


def report(err: Exception, what: str) -> None:
    """``st.error`` with the typed error's sentence, or a generic one naming ``what`` failed (details logged)."""
    if isinstance(err, XaiError):
        st.error(str(err))
    else:
        log.error("%s failed", what, exc_info=err)
        st.error(f"{what} failed unexpectedly ({type(err).__name__}). The details are in the server log; "
                 "try another file or other settings.")
