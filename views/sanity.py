"""Sanity page: do the explanations depend on the model at all? Model randomisation (Adebayo et al. 2018) and the
random-logit check (Sixt et al. 2020), each over several seeds; and the attack on explanations.

Nothing heavy runs on opening the page: each part is drawn only when picked, states what a run will cost and
computes on its Run button (the randomisation grid fills in as each map is computed); results come from the cache
afterwards. Every part explains the session's class (the one picked on Explain or Evaluate; top-1 until then)."""

import streamlit as st

import xai_core as xc
from ui import attack_view, sanity_runs, sanity_view, services, state, target_view, widgets
from ui.evaluation import explainer_titles
from xai_core import sanity

DEFAULTS = ["gradient", "guided_backprop", "gradcam", "integrated_gradients"]
SEEDS = 3  # default seed count: about 3× the cost of one seed (the page states the cost before a run)
PARTS = {"randomisation": "🎲 Model randomisation", "random_logit": "🔀 Random logit", "attack": "🎯 Attack an explanation"}
unbound = state.current()
ctx = target_view.bound_context(unbound)  # a model without classes: bound to the target picked on Explain
if ctx is None:
    st.stop()
image = ctx.image

st.title("Sanity checks")
st.caption("An explanation of a model should change when the model is destroyed, and when another class is "
           "explained. Adebayo et al. (2018) found that some popular methods barely change — they show edges of the "
           "image, not what the model learnt. The edge detector is a row for comparison: it ignores the model by "
           f"construction. Maps are compared with {sanity.MEASURE} at {sanity.RESOLUTION}.")

for k in ("sanity_explainers", "sanity_seeds", "sanity_seed", "sanity_mode", "sanity_stages"):
    if k in st.session_state:  # keep a part's settings while another part is open (its widgets are not drawn)
        st.session_state[k] = st.session_state[k]
probs = services.predictions(ctx.model_key, ctx.digest, ctx.workbench, image)
target = state.target_box(ctx, probs, "Class to explain", "sanity_target")
part = st.segmented_control("Part", list(PARTS), format_func=PARTS.get, default="randomisation", key="sanity_part",
                            label_visibility="collapsed") or "randomisation"
if part == "attack":
    attack_view.render(ctx, target)
    st.stop()

titles = explainer_titles()
choice = st.session_state.get(state.CHOICE, {})
c1, c2, c3 = st.columns([4, 1, 1])
chosen = c1.multiselect("Explainers", list(titles), default=DEFAULTS, format_func=titles.get, key="sanity_explainers")
n_seeds = int(c2.number_input("Seeds", 1, sanity.MAX_SEEDS, SEEDS, key="sanity_seeds",
                              help="Random re-initialisations (or random classes) per check. Each cell shows the "
                                   "median and the range; verdicts use the upper quartile. Cost grows with the count."))
base_seed = int(c3.number_input("Base seed", 0, 2**31 - 1, 0, key="sanity_seed",
                                help="Seeds used: this one and the next ones."))
params = choice.get("params", {})
explained = [(m, params.get(m, {})) for m in chosen]
request_keys = tuple(xc.ExplainRequest.make(m, target, p, base_seed).key for m, p in explained)
size = ctx.model.input_size

if part == "random_logit":
    st.caption(f"Explain {n_seeds} randomly drawn other class(es) of the same image with the same model: a map "
               "that explains the class should change. 📄 " + sanity.RANDOM_LOGIT_REFERENCE)
    if not chosen:
        st.info("Pick at least one explainer.")
        st.stop()
    key = ("random_logit", ctx.model_key, ctx.digest, ctx.options.result_key, target, request_keys, n_seeds, base_seed)
    cost = sanity.random_logit_cost(explained, seeds=n_seeds, input_size=size)
    if not sanity_runs.ready(key, cost, ctx.model_key, "▶️ Run the random-logit check", "sanity_logit_run"):
        st.stop()
    bar = widgets.LazyProgress(st.empty(), "Explaining random classes")
    try:
        picked = target_view.chosen(unbound)
        logit_report = sanity_runs.compute(key, cost, ctx.model_key, (lambda: sanity.random_logit(
            ctx.workbench, image, explained, target=target, seeds=n_seeds, seed=base_seed, progress=bar))
            if picked is None else (lambda: sanity.random_target_check(  # no classes: random prompts, boxes, ...
                unbound.workbench, image, explained, target=picked, seeds=n_seeds, seed=base_seed, progress=bar)),
            "sanity_logit_stop")
    except xc.XaiError as err:
        st.error(str(err))
        st.stop()
    bar.clear()
    sanity_view.show_random_logit(logit_report, image)
    st.stop()

c1, c2 = st.columns([1, 2])
mode = c1.radio("Randomisation", ["cascading", "independent"], key="sanity_mode",
                help="Cascading: each column randomises one more group of layers, from the logits down. "
                     "Independent: each column randomises only that group.")
n_stages = c2.slider("Stages", 2, 8, 5, key="sanity_stages", help="Columns after the trained model.")
if not chosen:
    st.info("Pick at least one explainer.")
    st.stop()
key = ("sanity", ctx.model_key, ctx.digest, ctx.options.result_key, target, request_keys, mode, n_stages, n_seeds,
       base_seed)
cost = sanity.randomisation_cost(explained, n_stages=n_stages, seeds=n_seeds, input_size=size)
if not sanity_runs.ready(key, cost, ctx.model_key, "▶️ Run the randomisation", "sanity_run"):
    st.stop()
bar = widgets.LazyProgress(st.empty(), f"Randomising and explaining ({n_seeds} seeds)")
stop, area = st.empty(), st.empty()  # the Stop button; the grid, redrawn as each map is computed
live = sanity_runs.Live(area, image)
try:
    report = sanity_runs.compute(key, cost, ctx.model_key, lambda: sanity.model_randomisation(
        ctx.workbench, image, explained, mode=mode, n_stages=n_stages, target=target, seeds=n_seeds, seed=base_seed,
        progress=bar, partial=live), "sanity_stop", stop)
except xc.XaiError as err:
    st.error(str(err))
    st.stop()
bar.clear()
with area.container():
    sanity_view.show(ctx, report, image, ctx.digest, live.panels)
