"""Explain page: top-5 predictions, pick a class (or, for a model that is not a classifier, a prompt, a reference image,
a region or a box) and several explainers, compare heatmaps side by side (refining
explainers' maps sharpen in place, with their uncertainty on demand); pin a result and compare, present full screen,
copy a link to the view, download a report or the raw maps."""

import streamlit as st

import xai_core as xc
from ui import (
    anytime_view,
    cards,
    escape,
    figures,
    links,
    maps,
    pins,
    present,
    report_button,
    services,
    state,
    target_view,
    widgets,
)
from xai_core import render

DEFAULTS = ["gradcam", "integrated_gradients", "guided_backprop"]
# What the visitor picked here survives a visit to another page (Streamlit drops the state of undrawn widgets).
KEPT = ("explainers", "seed", "alpha", "cmap", "ncols", "edit_kind", "edit_x", "edit_y", "anytime_stop", "uncertainty")
ctx = state.current()
model = ctx.model
if links.adopt_view(model.id):  # a copied link: its explainers, parameters and seed become the widgets' values
    st.rerun()
state.restore_widgets("explain")

head, switch = st.columns([4, 1], vertical_alignment="bottom")
head.title("Explain a prediction")
with switch:
    presenting = present.toggle()
links.missing_upload_notice(ctx)
controls = st.container(key=present.CONTROLS)
with controls:
    st.caption("What did the model look at? Pick explainers and compare their heatmaps side by side. "
               "Hover a map to read its raw attribution.")
    image, digest, edit_label = pins.edited(ctx)
classifier = model.task == "classifier"
probs = services.predictions(ctx.model_key, digest, ctx.workbench, image) if classifier else None

with controls:
    left, right = st.columns([1, 1], gap="large")  # wide enough for three explainer chips
    with left:
        if probs is not None:
            st.plotly_chart(figures.top_k(probs, model.labels), width="stretch", key="topk",
                            config={"displayModeBar": False})
            picked = None
        else:  # a prompt, a reference image, a region or a box: the scalar every explainer explains
            picked = target_view.picker(ctx, image)
    # Only methods that apply to this model (and target) are offered (a CNN gets no attention rollout, a ViT no Guided
    # Backprop, a box no CAM); the sidebar's "What works on this model" says why the others do not.
    if classifier:
        specs = {s.id: s for s in xc.list_explainers() if s.why_not(model) is None}
    else:
        kind = picked.kind if picked is not None else xc.target_kinds(model)[0]
        specs = {c.id: xc.get_explainer(c.id) for c in services.capabilities(ctx.model_key, model, kind) if c.applies}
    if "explainers" in st.session_state:  # picks made for another model keep only what applies to this one
        st.session_state["explainers"] = [m for m in st.session_state["explainers"] if m in specs]
    with right:
        if probs is not None:
            target = state.target_box(ctx, probs, "Class to explain (type to search)", "target")
            name, score = model.label(target), f" (p = {probs[target]:.1%})"
        else:
            target, name, score = picked, picked.named(model.labels) if picked is not None else "", ""
        chosen = st.multiselect("Explainers", sorted(specs, key=lambda i: (specs[i].family, specs[i].title)),
                                default=None if "explainers" in st.session_state else [m for m in DEFAULTS if m in specs],
                                key="explainers",
                                format_func=lambda i: specs[i].title,
                                help="Sorted by family: " + ", ".join(dict.fromkeys(s.family for s in specs.values())))
        with st.expander("Display and seed"):
            c1, c2 = st.columns(2)
            alpha = c1.slider("Overlay opacity", 0.0, 1.0, 0.55, 0.05, key="alpha")
            cmap = c2.selectbox("Colour map (unsigned maps)", list(render.COLORMAPS), key="cmap")
            ncols = c1.slider("Maps per row", 1, 5, 3, key="ncols")
            seed = int(c2.number_input("Seed (stochastic methods)", 0, 2**31 - 1, key="seed"))
            auto_stop = c1.toggle("Stop when stable", True, key="anytime_stop",
                                  help="Maps that refine (RISE, LIME, SmoothGrad, …) stop once successive refinements "
                                       f"agree: {anytime_view.RULE.text()}.")
            uncertainty = c2.toggle("Show uncertainty", False, key="uncertainty",
                                    help="Hatch the pixels whose place in the top 10% the map's uncertainty leaves open.")
            st.caption("Signed maps (Input × Gradient, Integrated Gradients, CAM) use blue for negative and red for "
                       "positive evidence.")
    params = {}
    if chosen:
        param_cols = st.columns(min(len(chosen), 4))
        for i, mid in enumerate(chosen):
            with param_cols[i % len(param_cols)]:
                params[mid] = widgets.params_for(specs[mid], model)
    state.keep_widgets("explain", KEPT, prefixes=("param:",))
    if not chosen:
        st.info("Pick at least one explainer above.")
        st.stop()
    if target is None:
        st.info("Choose what to explain above.")
        st.stop()

st.session_state[state.CHOICE] = {"explainers": chosen, "params": params, "target": target if classifier else None,
                                  "seed": seed, "digest": ctx.digest}
links.publish_view(chosen, params, seed)
if presenting:
    ncols = min(len(chosen), 4)
    st.markdown(f"### {escape.markdown(name)}{score} · {escape.markdown(model.title)}"
                + (f" · {edit_label}" if edit_label else ""))
else:
    st.divider()
requests = {m: xc.ExplainRequest.make(m, target, params[m], seed) for m in chosen}
signature = (ctx.model_key, digest, ctx.options.result_key, tuple(r.key for r in requests.values()))
pending = [specs[m].title for m in chosen if not anytime_view.is_cached(ctx, digest, requests[m], auto_stop)]
stop_slot = st.empty()
may_compute = maps.stop_control(signature, pending, stop_slot)
look = anytime_view.Look(alpha, cmap, ncols, presenting, auto_stop, uncertainty)
results: list[tuple[str, xc.Explanation]] = []
cols = st.columns(ncols)
for i, mid in enumerate(chosen):
    spec = specs[mid]
    with cols[i % ncols]:
        e = anytime_view.draw(ctx, digest, image, requests[mid], look, stopped=not may_compute and spec.title in pending)
        if e is None:
            continue
        with st.popover("📇 Saliency card"):
            cards.show(spec)
        if not presenting:
            maps.panels(e, image, anytime_view.store_key(ctx, digest, requests[mid], auto_stop))
        results.append((spec.title, e))

stop_slot.empty()
label = f"{model.title} · {name} · {edit_label or ctx.image_name} · seed {seed}"
if results:
    pins.compare(label, image, results, alpha, cmap, presenting)
    with st.container(key=present.CONTROLS + "-downloads"):
        pins.pin_button(label, image, results)

        def grid() -> bytes:
            panels = [(f"{t}\n{e.class_name} · {e.seconds:.2f} s",
                       figures.overlay_small(image, e.map, e.signed, alpha=alpha, cmap=cmap, side=512)) for t, e in results]
            return render.grid_png(figures.fit(image, 512), panels, cols=min(len(panels) + 1, 4))

        gkey = ("grid", ctx.model_key, digest, ctx.options.result_key, alpha, cmap,
                tuple((e.request.key, e.refinement and e.refinement.stopped) for _, e in results))
        st.download_button("⬇️ Download the grid as PNG", services.memo(gkey, grid), file_name=f"xai-{digest[:8]}.png",
                           mime="image/png", key="download_grid")
        report_button.explanation_downloads(ctx, image, digest, results, alpha, cmap,
                                            {"class" if classifier else "target": name, "image edit": edit_label or "none"})
        if not classifier:
            score = f" ({target_view.score_text(results[0][1])})"
        st.caption(f"Explaining **{escape.markdown(name)}**{score} with {escape.markdown(model.title)}.")
        with st.expander("🔗 Copy a link to this view"):
            st.code(links.share_url(), language=None)
            st.caption("Opens this page with the same model, image, class, explainers, parameters and seed (an image "
                       "edit is not part of the link). An uploaded image is named by a random token made for your upload: "
                       "only people you give this link to can open it; after a server restart, upload it again.")
