"""Learn page: the taxonomy table and saliency cards (from registry metadata), six lessons over the real engine,
and a predict-then-reveal quiz. Deep link to a lesson: ``/learn?lesson=<id>`` (ids in ``xai_core.lessons``)."""

import streamlit as st

from ui import cards, escape, lesson_concepts, lesson_gradients, lesson_maps, links, quiz, services, state
from xai_core import lessons

ctx = state.current()
st.title("Learn")
st.caption("One idea per lesson, on the real model and the image in the sidebar (or a sample). Every lesson runs in "
           "seconds on a CPU and has its own link.")
links.missing_upload_notice(ctx)
ids = [item.id for item in lessons.LESSONS]
wanted = st.session_state.pop(links.LESSON, None)
if wanted in ids:  # a deep link: open that lesson
    st.session_state["learn_section"] = "Lessons"
    st.session_state["lesson"] = wanted
section = st.segmented_control("Section", ["Methods and cards", "Lessons", "Predict, then reveal"],
                               default="Lessons", key="learn_section", label_visibility="collapsed") or "Lessons"
if section == "Methods and cards":
    cards.taxonomy()
    st.stop()
if section == "Predict, then reveal":
    quiz.run(ctx)
    st.stop()

pick = st.radio("Lesson", ids, key="lesson", horizontal=True, format_func=lambda i: lessons.lesson(i).title)
links.publish_lesson(pick)
item = lessons.lesson(pick)
st.subheader(item.title)
st.caption(f"{item.idea}  \n📄 {item.reference}")
if pick == "local_global":  # on the lab CNN, whatever the sidebar's model
    lesson_concepts.local_vs_global(ctx)
    st.stop()
probs = services.predictions(ctx.model_key, ctx.digest, ctx.workbench, ctx.image)
target = state.target(ctx, int(probs.argmax()))
st.caption(f"Explaining **{ctx.model.label(target)}** (p = {probs[target]:.1%}) on {escape.markdown(ctx.image_name)} with "
           f"{ctx.model.title}; the class is the one picked on the Explain page.")
if pick == "shattered":
    lesson_gradients.shattered(ctx, target)
elif pick == "ig_path":
    lesson_gradients.ig_path(ctx, target)
elif pick == "cam":
    lesson_maps.cam(ctx, target)
elif pick == "perturbation":
    lesson_maps.perturbation_(ctx, target)
else:
    lesson_maps.pitfalls_(ctx, target, probs)
