"""The participant's screens: consent (and the designer's questions), one trial at a time, the thank-you.

Nothing here shows a right answer before the end: a trial draws its pictures, its question and the options; the
answer goes to the database (``study.answers.submit``), which scores it. Every text that comes from a designer or an
upload (the study's name, consent, questions, class names) is escaped before Streamlit's Markdown sees it.
"""

from __future__ import annotations

import streamlit as st

from xai_core.study import NONE, answers, question, storage
from xai_core.study.plan import Trial

from . import escape, study_access

HIDE_CHROME = ("<style>[data-testid='stToolbar'],[data-testid='stDecoration'],[data-testid='stMainMenu']"
               "{display:none !important}</style>")


def consent(opened: storage.Opened) -> None:
    """The consent text, the designer's questions and the start button (joining writes the token into the link)."""
    d = opened.design
    for para in (d.consent or "Your answers are recorded anonymously.").split("\n\n"):
        st.markdown("  \n".join(escape.markdown(line, 400) for line in para.splitlines()))
    with st.form("study_consent"):
        answers_given = {q: st.text_input(escape.markdown(q, 160), max_chars=200, key=f"study_q{i}")
                         for i, q in enumerate(d.questions)}
        agreed = st.checkbox("I have read the text above and agree to take part.", key="study_agree")
        start = st.form_submit_button("Start", type="primary")
    if start and not agreed:
        st.warning("Tick the box to agree first, or close the page to leave.")
    elif start:
        answers.join(opened, study_access.participant_token(create=True), answers_given)
        st.rerun()


def trial(opened: storage.Opened, token: str, t: Trial, total: int) -> None:
    """One trial: its clock starts when it is first drawn; Submit stores the answer once and moves on."""
    answers.show(opened, token, t.index)
    st.progress(t.index / total, text=f"Question {t.index + 1} of {total}")
    pics = t.item.pictures
    if pics:
        cols = st.columns(len(pics)) if len(pics) > 1 else [st.container()]
        for k, (col, p) in enumerate(zip(cols, pics, strict=True)):
            caption = f"Image {k + 1}" if len(pics) > 1 else None
            col.image(storage.picture(opened.code, p, t.condition), caption=caption,
                      width=200 if len(pics) > 2 else 256)
        if t.condition != NONE:
            st.caption("Coloured overlay: the parts of the image the model's explanation marks as important.")
    st.markdown(f"**{escape.markdown(question(opened.design, t.item), 400)}**")
    with st.form(f"study_trial_{t.index}"):
        choice = st.radio("Your answer", t.item.options, index=None, key=f"study_answer_{t.index}",
                          format_func=lambda o: escape.markdown(o, 120))
        sent = st.form_submit_button("Submit", type="primary")
    if sent and choice is None:
        st.warning("Choose an answer, then submit.")
    elif sent:
        answers.submit(opened, token, t.index, choice)
        st.rerun()


def thanks(opened: storage.Opened, trials: list[Trial], given: dict[int, str]) -> None:
    st.success("Thank you! Your answers are saved; you can close this page.")
    if opened.design.show_score:
        scored = [t for t in trials if not t.item.attention]
        right = sum(given.get(t.index) == t.item.truth for t in scored)
        st.markdown(f"Your score: **{right} of {len(scored)}** questions answered correctly.")
