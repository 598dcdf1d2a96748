"""XAI Explorer: page config, router, the shared sidebar and the error boundary. No torch import here.

The sidebar (model, image, run options: ``ui/sidebar.py``) is drawn here on every run, after
``st.navigation`` and before ``page.run()``: its widgets belong to the entrypoint, so their state (an
uploaded image included) survives every page change. Checked in Chromium with Streamlit 1.67. (Drawn
*before* ``st.navigation``, the same widgets lost their state on the second run.)

A participant's study link (``?study=CODE``) is the exception: the navigation holds only the study page, hidden,
and no sidebar is drawn (views/study_take.py: the task and nothing else; no model is loaded for it).

Any exception a page raises ends here: the visitor sees one ``st.error`` sentence, the traceback goes
to the server log only (``client.showErrorDetails`` is off in ``.streamlit/config.toml``).

The page scripts live in ``views/``, not ``pages/``: with a ``pages/`` folder, the first request after the
server starts that opens a page's URL directly (``/methods``) ran that file as a legacy multipage-app
page, without this router (no wide layout, a file-name menu). Seen with Streamlit 1.67 in Chromium.
"""

import streamlit as st

from ui import callbacks, errors, memory, sidebar

participant = bool(st.query_params.get("study"))  # a participant's study link: the task only (see above)
TAKE = "views/study_take.py"
st.set_page_config(page_title="Study" if participant else "XAI Explorer", page_icon="🔬",
                   layout="centered" if participant else "wide",
                   initial_sidebar_state="collapsed" if participant else "expanded")

PAGES = {
    "Explore": [st.Page("views/explain.py", title="Explain", icon="🔥", default=True),
                st.Page("views/evaluate.py", title="Evaluate", icon="📏"),
                st.Page("views/sanity.py", title="Sanity checks", icon="🧪"),
                st.Page("views/lab.py", title="Debugging lab", icon="🐴"),
                st.Page("views/concepts.py", title="Concepts", icon="🧩"),
                st.Page("views/runs.py", title="Runs", icon="🗂️")],
    "Learn": [st.Page("views/methods.py", title="Methods", icon="📚"),
              st.Page("views/learn.py", title="Learn", icon="🎓")],
    "Study": [st.Page("views/study_design.py", title="Design a study", icon="🧑‍🔬", url_path="study_design"),
              st.Page("views/study_results.py", title="Study results", icon="📊", url_path="study_results"),
              st.Page(TAKE, title="Take a study", url_path="take", visibility="hidden")],
}
if participant:  # /take and / (the default page's address) both open the study
    page = st.navigation([st.Page(TAKE, title="Study", url_path="study", default=True),
                          st.Page(TAKE, title="Study", url_path="take")], position="hidden")
else:
    page = st.navigation(PAGES)
try:
    if not participant:
        sidebar.render()
    callbacks.show()  # a widget callback that failed before this run left one sentence (ui/callbacks.py)
    page.run()
except Exception as err:  # noqa: BLE001 - the boundary: st.stop()/st.rerun() are BaseExceptions and pass through
    errors.report(err, f"The {page.title} page")
finally:
    memory.after_run()  # st.stop()/st.rerun() included: trim now, a full gc within 10 s (ui/memory.py)
