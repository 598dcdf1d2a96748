"""Explain page: top-5 predictions, pick a class and several explainers, compare heatmaps side by side."""

import streamlit as st

import xai_core as xc
from ui import figures, maps, services, state, widgets
from xai_core import render

DEFAULTS = ["gradcam", "integrated_gradients", "guided_backprop"]
ctx = state.current()
model = ctx.model

st.title("Explain a prediction")
st.caption("What did the model look at? Pick explainers and compare their heatmaps side by side. "
           "Hover a map to read its raw attribution.")

probs = services.predictions(ctx.model_key, ctx.digest, ctx.workbench, ctx.image)
specs = {s.id: s for s in xc.list_explainers()}

left, right = st.columns([3, 2], gap="large")
with left:
    st.plotly_chart(figures.top_k(probs, model.labels), width="stretch", key="topk",
                    config={"displayModeBar": False})
with right:
    target = state.target_box(ctx, probs, "Class to explain (type to search)", "target")
    chosen = st.multiselect("Explainers", sorted(specs, key=lambda i: (specs[i].family, specs[i].title)),
                            default=DEFAULTS, key="explainers", format_func=lambda i: f"{specs[i].title} · {specs[i].family}")
    with st.expander("Display and seed"):
        c1, c2 = st.columns(2)
        alpha = c1.slider("Overlay opacity", 0.0, 1.0, 0.55, 0.05, key="alpha")
        cmap = c2.selectbox("Colour map (unsigned maps)", list(render.COLORMAPS), key="cmap")
        ncols = c1.slider("Maps per row", 1, 5, 3, key="ncols")
        seed = int(c2.number_input("Seed (stochastic methods)", 0, 2**31 - 1, 0, key="seed"))
        st.caption("Signed maps (Input × Gradient, Integrated Gradients, CAM) use blue for negative and red for "
                   "positive evidence.")

if not chosen:
    st.info("Pick at least one explainer above.")
    st.stop()

param_cols = st.columns(min(len(chosen), 4))
params = {}
for i, mid in enumerate(chosen):
    with param_cols[i % len(param_cols)]:
        params[mid] = widgets.params_for(specs[mid], model)

st.session_state[state.CHOICE] = {"explainers": chosen, "params": params, "target": target, "seed": seed,
                                  "digest": ctx.digest}
st.divider()
requests = {m: xc.ExplainRequest.make(m, target, params[m], seed) for m in chosen}
signature = (ctx.model_key, ctx.digest, ctx.options.result_key, tuple(r.key for r in requests.values()))
pending = [specs[m].title for m in chosen if not services.is_cached(ctx.model_key, ctx.digest, ctx.workbench, requests[m])]
stop_slot = st.empty()
may_compute = maps.stop_control(signature, pending, stop_slot)
results: list[tuple[str, xc.Explanation]] = []
cols = st.columns(ncols)
for i, mid in enumerate(chosen):
    spec = specs[mid]
    with cols[i % ncols]:
        if not may_compute and spec.title in pending:
            st.caption(f"**{spec.title}**: stopped")
            continue
        slot = st.empty()
        bar = widgets.LazyProgress(slot, spec.title)
        try:
            e = services.explanation(ctx.model_key, ctx.digest, ctx.workbench, ctx.image, requests[mid], progress=bar)
        except xc.XaiError as err:
            bar.clear()
            st.error(f"**{spec.title}**: {err}")
            continue
        except Exception as err:  # noqa: BLE001 - one failing method must not take the page down
            bar.clear()
            st.error(f"**{spec.title}** failed unexpectedly ({type(err).__name__}: {err}). The other maps are unaffected.")
            continue
        bar.clear()
        key = ("fig", ctx.model_key, ctx.digest, ctx.options.result_key, requests[mid].key, alpha, cmap)
        fig = services.memo(key, lambda e=e, spec=spec: figures.heatmap(ctx.image, e.map, e.signed, alpha=alpha,
                                                                          cmap=cmap, title=spec.title))
        st.plotly_chart(fig, width="stretch", key=f"map:{mid}", config={"displayModeBar": False})
        st.caption(maps.facts(e), help=spec.reference)
        maps.panels(e, ctx.image, key)
        results.append((spec.title, e))

stop_slot.empty()
if results:
    def grid() -> bytes:
        panels = [(f"{t}\n{e.class_name} · {e.seconds:.2f} s",
                   figures.overlay_small(ctx.image, e.map, e.signed, alpha=alpha, cmap=cmap, side=512)) for t, e in results]
        return render.grid_png(figures.fit(ctx.image, 512), panels, cols=min(len(panels) + 1, 4))

    gkey = ("grid", ctx.model_key, ctx.digest, ctx.options.result_key, tuple(e.request.key for _, e in results), alpha, cmap)
    st.download_button("⬇️ Download the grid as PNG", services.memo(gkey, grid), file_name=f"xai-{ctx.digest[:8]}.png",
                       mime="image/png", key="download_grid")
    st.caption(f"Explaining **{model.label(target)}** (p={probs[target]:.1%}) with {model.title}.")
