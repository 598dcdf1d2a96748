"""Concepts page: a class's top concepts at a layer (CRAFT-style), their crops and maps, names (kept in the workspace's
database), P-ClArC and A-ClArC, TCAV of the visitor's own concept images, and the report."""

import streamlit as st

from ui import concepts_data, concepts_report, concepts_tcav, concepts_view, jobs, services, state

JOB = "concepts_job"

ctx = state.current()
state.restore_widgets("concepts")
model = ctx.model
st.title("Concepts: what the model uses for a class")
st.caption("A heatmap is **local**: it says where the model looked in *one* image, not *what* it saw there. A concept "
           "is **global**: a direction in a layer's activations that recurs over many images of a class (a texture, a "
           "part, a watermark), shown by the crops where it is strongest and scored by how much it adds to the class. "
           "Discovery factorises the activations of image crops (CRAFT, Fel et al., CVPR 2023) or ranks the layer's "
           "channels by their share of the class's relevance (CRP, Achtibat et al., Nature Machine Intelligence 2023); "
           "a concept can be "
           "removed from the model by projecting its direction out of the layer (P-ClArC, Anders et al., Information "
           "Fusion 2022), and a concept of your own can be tested with TCAV (Kim et al., ICML 2018).")
lab_model = concepts_data.is_lab(ctx)
probs = services.predictions(ctx.model_key, ctx.digest, ctx.workbench, ctx.image)
c1, c2, c3 = st.columns([3, 3, 2])
with c1:
    target = state.target_box(ctx, probs, "Class", "concepts_target")
layers = model.layer_names()
if not layers:
    st.error(f"{model.title} has no convolutional layer to discover concepts at; pick a CNN in the sidebar.")
    st.stop()
default = layers.index(model.cam_layer) if model.cam_layer in layers else len(layers) - 1
layer = c2.selectbox("Layer", layers, index=default, key=f"concepts_layer:{ctx.model_key}",
                     help="Where the concepts live; the default is the model's CAM layer (the last feature maps).")
rank = c3.slider("Concepts", 2, 10, 5, key="concepts_rank", help="How many concepts to find and show.")
how = st.radio("How", list(concepts_data.METHODS), format_func=concepts_data.METHODS.get, horizontal=True,
               key="concepts_how", help="CRAFT factorises the activations of image crops into directions (any model); "
                                        "CRP ranks the layer's channels by their share of the class's LRP relevance "
                                        "and shows each channel's most relevant crops (models LRP supports).")
how = how if how in concepts_data.METHODS else "craft"  # a stale session value
KEEP = (("concepts_rank", "concepts_n", "concepts_tcav_runs", "concepts_tcav_cav", "concepts_how"),
        ("concepts_layer:", "concepts_set:"))
cset = concepts_view.pick_set(ctx, target)
if cset is None:
    state.keep_widgets("concepts", *KEEP)
    st.stop()
if not lab_model:
    st.caption("Pick the lab CNN in the sidebar for the horse-watermark set.")
sig = concepts_data.signature(ctx, cset, layer, target, rank, how)
jobs.panel(JOB, "🔍 Discover concepts", lambda: concepts_data.discovery_job(ctx, cset, target, layer, rank, sig, how),
           lambda _res: None, title="Discovering concepts",
           help="Runs in the background; you can keep using the page meanwhile.")
found = concepts_data.found_for(sig, st.session_state.get(JOB))
if found is None:
    st.info("Pick a class, a layer, how many concepts and how to find them, then discover them.")
else:
    concepts_view.render(ctx, found)
concepts_tcav.section(ctx, cset, target, layer)
if found is not None:
    concepts_report.download(ctx, found, concepts_tcav.done())
state.keep_widgets("concepts", *KEEP)
