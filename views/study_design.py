"""Design a human study (issue 25): pick the task, images, conditions and design, publish it (every picture rendered
once, in a background job), send the link; open a published study with its code and designer key to see who took
part, and close or reopen it. Participants never reach this page's data: they have the code, not the key."""

from collections import Counter

import streamlit as st

from ui import escape, jobs, state, study_access, study_form
from xai_core.study import LAYOUTS, TASKS, StudyError, storage

ctx = state.current()
st.title("Design a human study")
st.caption("Do the maps help people understand the model? A study asks participants to judge the model's answers with "
           "and without explanation maps (HIVE, Kim et al. ECCV 2022; Shen & Huang, HCOMP 2020), stores every answer "
           "in the database as it is given, and analyses the result on the *Study results* page.")

new, existing = st.tabs(["➕ New study", "🔑 Open a published study"])
with new:
    job = study_form.form(ctx)
    if job is not None:
        jobs.panel("study_publish_job", "Publish the study", lambda: job, study_form.published,
                   title="Publishing the study",
                   help="Computes the model's answers and renders every picture once (participants never make the "
                        "model run), then stores the study in one transaction.")

with existing:
    opened = study_access.designer("sd")
    if opened is None:
        st.info("Enter a study's code and designer key (shown when it was published).")
        st.stop()
    d = opened.design
    state_text = "open" if opened.open else ("closed" if opened.status == "closed" else "expired")
    st.subheader(escape.markdown(d.name, 80))
    st.caption(f"Task: {d.task} ({TASKS[d.task]}) · {LAYOUTS[d.layout]} · {len(d.items)} items, "
               f"{d.items_per_participant} per participant, {len(d.checks)} attention checks · {state_text}, closes "
               f"{opened.closes:%Y-%m-%d %H:%M} UTC · images: {escape.markdown(d.source, 80)} · "
               f"model: {escape.markdown(d.model, 120)}")
    st.code(study_access.participant_link(opened.code), language=None)
    people = storage.participants(opened.code)
    counts = Counter(c for _, c, _ in people)
    m1, m2, m3 = st.columns(3)
    m1.metric("Joined", len(people))
    m2.metric("Finished", sum(f for _, _, f in people))
    m3.metric("Conditions", " · ".join(f"{d.labels.get(c, c)} {counts[c]}" for c in d.conditions)
              if d.layout == "between" else "all, per participant")
    target = "closed" if opened.status == "open" else "open"
    if st.button("Close the study" if target == "closed" else "Reopen the study", key="sd_status"):
        keys = st.session_state.get(study_access.KEYS) or {}
        try:
            storage.set_status(opened.code, keys.get(opened.code, ""), target)
        except StudyError as e:
            st.error(str(e))
        else:
            st.rerun()
    st.page_link("views/study_results.py", label="Results of this study", icon="📊")
