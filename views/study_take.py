"""A study, as its participant sees it (``/take?study=CODE``; app.py draws no sidebar and no menu for such a link):
consent, then one question at a time, then a thank-you. Their own link (``&p=TOKEN``) resumes where they left off —
after a closed tab or a server restart too: every answer is in the database the moment it is given."""

import streamlit as st

from ui import escape, study_access, study_trial
from xai_core.study import StudyError, answers, plan, storage

st.html(study_trial.HIDE_CHROME)
try:
    opened = storage.study(st.query_params.get(study_access.STUDY))
except StudyError as e:  # a wrong, closed or expired code: one sentence, nothing else
    st.error(str(e))
    st.stop()

st.title(escape.markdown(opened.design.name, 80))
token = study_access.participant_token()
me = answers.joined(opened, token) if token else None
if me is None:
    study_trial.consent(opened)
    st.stop()

trials = plan.plan(opened.design, me.seq)
nxt = len(me.answered)
if nxt >= len(trials):
    study_trial.thanks(opened, trials, me.answered)
else:
    study_trial.trial(opened, token, trials[nxt], len(trials))
