"""Presentation mode: the sidebar and the page's controls hidden, the maps full width, large type (for a lecture
or a demo). The controls stay drawn — only hidden — so their state survives leaving the mode."""

from __future__ import annotations

import plotly.graph_objects as go
import streamlit as st

from . import links

KEY = "present"
CONTROLS = "xai-controls"  # the container key of a page's controls; Streamlit gives it the class st-key-<key>

_CSS = """<style>
section[data-testid="stSidebar"], div[data-testid="stSidebarCollapsedControl"], header[data-testid="stHeader"],
[class*="st-key-xai-controls"] {display: none !important;}
.stMainBlockContainer {max-width: 100% !important; padding-top: 1rem !important;}
.stMainBlockContainer p, .stMainBlockContainer li, .stMainBlockContainer label {font-size: 1.35rem !important;}
.stMainBlockContainer h1 {font-size: 2.6rem !important;}
.st-key-present p {font-size: 1rem !important; white-space: nowrap;}
</style>"""  # hides every container whose key starts with CONTROLS; the switch's own label keeps its size (it fits)
SCREEN = 1400  # px: the main column's width on a projector-sized browser window, to size the maps for it


def toggle() -> bool:
    """The presentation-mode switch (on when the URL says ``present=1``); hides the controls when on."""
    if st.session_state.pop(links.PRESENT, False):
        st.session_state[KEY] = True
    on = st.toggle("🎤 Presentation mode", key=KEY, help="Hides the sidebar and the controls, shows the maps full "
                   "width with large type. Switch it off here to get the controls back.")
    if on:
        st.markdown(_CSS, unsafe_allow_html=True)
        st.query_params["present"] = "1"
    elif "present" in st.query_params:
        del st.query_params["present"]
    return on


def enlarge(fig: go.Figure, image_shape: tuple[int, ...], ncols: int) -> go.Figure:
    """A copy of a heatmap figure (``figures.heatmap``) tall enough that the image fills its column's width on a
    wide screen (the cached figure is left as it is)."""
    h, w = image_shape[:2]
    big = go.Figure(fig)
    big.update_layout(height=int(min(SCREEN / ncols * h / w, 720)) + 50, title_font_size=22)
    return big
