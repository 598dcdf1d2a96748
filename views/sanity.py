"""Sanity page: do the explanations depend on the model at all? Model randomisation (Adebayo et al. 2018)."""

import streamlit as st

import xai_core as xc
from ui import attack_view, maps, sanity_view, services, state, widgets
from ui.evaluation import explainer_titles
from xai_core import sanity

DEFAULTS = ["gradient", "guided_backprop", "gradcam", "integrated_gradients"]
ctx = state.current()
image = ctx.image

st.title("Sanity checks")
st.caption("An explanation of a model should change when the model is destroyed. Re-initialise the weights from "
           "the logits downwards and watch each map: Adebayo et al. (2018) found that some popular methods barely "
           "change — they show edges of the image, not what the model learnt. The edge detector is a row for "
           "comparison: it ignores the model by construction.")

randomisation, attack = st.tabs(["🎲 Model randomisation", "🎯 Attack an explanation"])
with attack:
    attack_view.render(ctx)
with randomisation:
    titles = explainer_titles()
    choice = st.session_state.get(state.CHOICE, {})
    c1, c2, c3 = st.columns([3, 1, 1])
    chosen = c1.multiselect("Explainers", list(titles), default=DEFAULTS, format_func=titles.get, key="sanity_explainers")
    mode = c2.radio("Randomisation", ["cascading", "independent"], key="sanity_mode",
                    help="Cascading: each column randomises one more group of layers, from the logits down. "
                         "Independent: each column randomises only that group.")
    n_stages = c3.slider("Stages", 2, 8, 5, key="sanity_stages", help="Columns after the trained model.")
    if not chosen:
        st.info("Pick at least one explainer.")
        st.stop()

    params = choice.get("params", {})
    explained = [(m, params.get(m, {})) for m in chosen]
    key = ("sanity", ctx.model_key, ctx.digest, ctx.options.result_key,
           tuple(xc.ExplainRequest.make(m, None, p).key for m, p in explained), mode, n_stages)
    stop_slot = st.empty()
    if not maps.stop_control(key, [] if services.store().get(key) is not None else ["the sanity check"], stop_slot):
        st.stop()
    bar = widgets.LazyProgress(st.empty(), "Randomising and explaining")
    try:
        report = services.memo(key, lambda: sanity.model_randomisation(ctx.workbench, image, explained, mode=mode,
                                                                       n_stages=n_stages, progress=bar))
    except xc.XaiError as err:
        st.error(str(err))
        st.stop()
    bar.clear()
    stop_slot.empty()
    sanity_view.show(report, image, ctx.digest)
