"""XAI Explorer: page config and router. No torch import here.

The shared sidebar (model picker, image picker, device badge) lives in ``ui/sidebar.py`` and each
page calls ``sidebar.render()`` first: widgets drawn in this entrypoint before ``st.navigation``
vanished on the second run with Streamlit 1.67 (seen in AppTest and in Chromium: a sidebar radio
ignored clicks), while widgets drawn by the page script keep their state.

The page scripts live in ``views/``, not ``pages/``: with a ``pages/`` folder, the first request after the
server starts that opens a page's URL directly (``/methods``) ran that file as a legacy multipage-app
page, without this router (no wide layout, a file-name menu). Seen with Streamlit 1.67 in Chromium.
"""

import streamlit as st

st.set_page_config(page_title="XAI Explorer", page_icon="🔬", layout="wide", initial_sidebar_state="expanded")

page = st.navigation({
    "Explore": [st.Page("views/explain.py", title="Explain", icon="🔥", default=True),
                st.Page("views/evaluate.py", title="Evaluate", icon="📏"),
                st.Page("views/sanity.py", title="Sanity checks", icon="🧪"),
                st.Page("views/lab.py", title="Debugging lab", icon="🐴")],
    "Learn": [st.Page("views/methods.py", title="Methods", icon="📚")],
})
page.run()
