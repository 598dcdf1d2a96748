"""XAI Explorer: page config and router. No torch import here.

The shared sidebar (model picker, image picker, device badge) lives in ``ui/sidebar.py`` and each
page calls ``sidebar.render()`` first: widgets drawn in this entrypoint before ``st.navigation``
vanished on the second run with Streamlit 1.67 (seen in AppTest and in Chromium: a sidebar radio
ignored clicks), while widgets drawn by the page script keep their state.
"""

import streamlit as st

st.set_page_config(page_title="XAI Explorer", page_icon="🔬", layout="wide", initial_sidebar_state="expanded")

page = st.navigation({
    "Explore": [st.Page("pages/explain.py", title="Explain", icon="🔥", default=True)],
    "Learn": [st.Page("pages/methods.py", title="Methods", icon="📚")],
})
page.run()
