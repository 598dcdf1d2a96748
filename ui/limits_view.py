"""The upload limits, shown where people upload (stated once, in xai_core.untrusted.limits)."""

from __future__ import annotations

import streamlit as st

from xai_core.untrusted import FORMATS, describe_limits

IMAGE_TYPES = ["png", "jpg", "jpeg", "webp", "tif", "tiff", "bmp", "gif"]  # what image uploaders offer (checked after)


def render() -> None:
    with st.expander("Upload limits and safety"):
        st.caption(f"Images: {', '.join(FORMATS)}; documents (PDF, PostScript/EPS, SVG) are refused whatever their name. "
                   "Checkpoints load as tensors only (no pickled code); nothing uploaded is ever run or written to disk.")
        st.markdown("\n".join(f"- {r['what'].capitalize()}: **{r['value']}**" for r in describe_limits()))
