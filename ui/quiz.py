"""Predict, then reveal: the student marks where the model looks (a box) or guesses the class from a map alone;
the page reveals the answer and scores it (``xai_core.lessons.quiz``); the end shows a score per explainer."""

from __future__ import annotations

import streamlit as st

import xai_core as xc
from xai_core import render
from xai_core.lessons import quiz

from . import services

QUIZ = "xai_quiz"
# (sample image, explainer, kind): fast explainers, every kind of question for each explainer.
QUESTIONS = (("Chelsea the cat", "gradcam", "box"), ("Coffee cup", "gradient", "box"),
             ("Rocket", "gradcam", "class"), ("Astronaut", "gradient", "class"))


def _map(ctx, sample: str, method: str):  # noqa: ANN001, ANN202
    image, digest = services.sample(sample)
    probs = services.predictions(ctx.model_key, digest, ctx.workbench, image)
    e = services.explanation(ctx.model_key, digest, ctx.workbench, image, xc.ExplainRequest.make(method, int(probs.argmax())))
    return image, e


def run(ctx) -> None:  # noqa: ANN001
    st.markdown("Guess first, then reveal. Box questions: drag the sliders to box where you think the model looks; "
                "the score is the IoU with the map's strongest 15 % of pixels. Class questions: which class is this "
                "map for?")
    state = st.session_state.setdefault(QUIZ, {"i": 0, "answers": [], "revealed": None})
    i = state["i"]
    if i >= len(QUESTIONS):
        _summary(state)
        return
    sample, method, kind = QUESTIONS[i]
    image, e = _map(ctx, sample, method)
    st.subheader(f"Question {i + 1} of {len(QUESTIONS)} · {e.title}")
    h, w = image.shape[:2]
    if kind == "box":
        c1, c2 = st.columns(2)
        xs = c1.slider("Left–right (px)", 0, w, (w // 4, 3 * w // 4), key=f"q{i}_x")
        ys = c2.slider("Top–bottom (px)", 0, h, (h // 4, 3 * h // 4), key=f"q{i}_y")
        box = (xs[0], ys[0], xs[1], ys[1])
        shown = image.copy()
        shown[ys[0]:ys[1], [xs[0], max(xs[1] - 1, 0)]] = (0, 200, 255)
        shown[[ys[0], max(ys[1] - 1, 0)], xs[0]:xs[1]] = (0, 200, 255)
        st.image(shown, caption=f"{sample}: where will {e.title} look?", width=360)
        answer = quiz.box_answer(method, box, e.map, e.signed)
    else:
        options = sorted({_map(ctx, s, m)[1].class_name for s, m, _ in QUESTIONS})
        st.image(render.colorize(e.map, e.signed), caption="the map alone (no photo)", width=300)
        guess = st.radio("Which class is it for?", options, key=f"q{i}_guess")
        answer = quiz.Answer(method, "class", 1.0 if guess == e.class_name else 0.0)
    if state["revealed"] != i:
        if st.button("Reveal", key="quiz_reveal", type="primary"):
            state["revealed"] = i
            state["answers"].append(answer)
            st.rerun()
        return
    got = state["answers"][-1]
    st.image(render.overlay(image, e.map, e.signed), caption=f"{e.title}: {e.class_name} (p = {e.probability:.1%})",
             width=360)
    st.success(f"IoU {got.score:.2f}" if kind == "box" else ("Correct!" if got.score else f"It was {e.class_name}."))
    if st.button("Next question", key="quiz_next"):
        state["i"] += 1
        st.rerun()


def _summary(state: dict) -> None:
    st.subheader("Your score per explainer")
    rows = [{"explainer": k, **v} for k, v in quiz.scores(state["answers"]).items()]
    st.dataframe(rows, hide_index=True, key="quiz_scores")
    st.caption("High IoU or accuracy: this explainer agrees with what people expect — which is not the same as being "
               "faithful to the model (see the pitfalls lesson).")
    if st.button("Start again", key="quiz_restart"):
        st.session_state.pop(QUIZ)
        st.rerun()
