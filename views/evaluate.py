"""Evaluate page: which heatmap to believe? Faithfulness curves and localisation scores, side by side; the ranking and
the curves fill in as each map is scored (ui.evaluation_stream)."""

import streamlit as st

import xai_core as xc
from ui import (
    escape,
    evaluation_meta,
    evaluation_set,
    evaluation_stream,
    maps,
    report_button,
    services,
    state,
    target_view,
    widgets,
)
from ui import evaluation as ev
from ui.errors import report as report_error
from xai_core import metrics

DEFAULTS = ["gradcam", "integrated_gradients", "gradient"]
ctx = target_view.bound_context(state.current())  # a model without classes: bound to the target picked on Explain
if ctx is None:
    st.stop()
model, image = ctx.model, ctx.image
H, W = image.shape[:2]

st.title("Evaluate the explanations")
st.caption("Are these maps faithful to the model, robust, concise, and do they point at the object? Deletion and "
           "insertion curves, AOPC, the pointing game, IoU and relevance mass by default (ROAD, faithfulness "
           "correlation, infidelity, PIC, sensitivity, Focus and more in the metric settings) — next to a random map, "
           "a centre prior and an edge detector, so every number has something to beat.")

probs = services.predictions(ctx.model_key, ctx.digest, ctx.workbench, image)
choice = st.session_state.get(state.CHOICE, {})
titles = ev.explainer_titles()
one, many = st.tabs(["🖼️ This image", "🗂️ Over a set of images"])

with one:
    left, right = st.columns([1, 1], gap="large")
    box_key = f"eval_box:{ctx.digest}"
    default_box = metrics.SAMPLE_BOXES.get(ctx.image_name, (W // 4, H // 4, 3 * W // 4, 3 * H // 4))
    box = st.session_state.setdefault(box_key, tuple(int(v) for v in default_box))
    with right:
        target = state.target_box(ctx, probs, "Class to evaluate", "eval_target")
        chosen = st.multiselect("Explainers", list(titles), default=choice.get("explainers", DEFAULTS),
                                format_func=titles.get, key="eval_explainers",
                                help="Settings come from the Explain page, where the maps are cached.")
        with_ref = ", ".join(m.short or m.title for m in metrics.list_metrics() if metrics.reference_param(m))
        reference = st.selectbox(f"Perturbed pixels become ({with_ref})", list(metrics.REFERENCES), key="eval_reference",
                                 help="What deleted or perturbed pixels are replaced with: black, the image's mean "
                                      "colour, a blurred copy, or one seeded uniform-noise image. The ranking of "
                                      "methods can change with it; the stability line below says whether it does.")
        c1, c2 = st.columns(2)
        use_refs = c1.toggle("Reference maps", True, key="eval_refs", help="Random map, centre Gaussian, Sobel edges.")
        mode = c2.radio("Object region", ["Box", "Mask", "None"], horizontal=True, key="eval_region")
        region = None
        if mode == "Box":
            cols = st.columns(4)
            for i, n in enumerate(("x0", "y0", "x1", "y1")):
                st.session_state.setdefault(f"{box_key}:{n}", int(box[i]))
            vals = [cols[i].number_input(n, 0, W if i % 2 == 0 else H, key=f"{box_key}:{n}")
                    for i, n in enumerate(("x0", "y0", "x1", "y1"))]
            box = st.session_state[box_key] = tuple(int(v) for v in vals)
            share = metrics.box_share((H, W), box) if vals[2] > vals[0] and vals[3] > vals[1] else 0.0
            if share > 0.5:
                st.warning(f"The box covers {share:.0%} of the image: a random map then often scores a pointing-game "
                           "hit and most of the relevance mass, so the box cannot tell methods apart. Draw a tighter "
                           "box around the object (or its most telling part).", icon="📦")
        elif mode == "Mask":
            up = st.file_uploader("Binary mask (white = object)", type=["png", "jpg", "jpeg", "bmp", "gif", "webp"],
                                  key="eval_mask")
            if up is not None:
                try:
                    region = metrics.mask_region(xc.images.decode_image(up.getvalue()).array, (H, W))
                except Exception as e:  # noqa: BLE001 - any failure of an upload is one sentence
                    report_error(e, "Reading the mask")
        with st.expander("⚙️ Metric settings"):
            chosen_metrics = st.multiselect("Metrics", [m.id for m in metrics.list_metrics()],
                                            default=[m.id for m in metrics.list_metrics() if m.default],
                                            key="eval_metrics", format_func=lambda i: metrics.get_metric(i).column)
            mparams = {}
            for m in metrics.list_metrics():
                if m.id in chosen_metrics:
                    st.markdown(f"**{m.title}** · {m.summary} · needs {m.requires} · {m.passes} per map")
                    ref_param = metrics.reference_param(m)  # set above, visibly, for all of them at once
                    mparams[m.id] = {p.name: reference if p.name == ref_param else
                                     widgets.param_widget(p, f"metric:{m.id}:{p.name}", model) for p in m.params}
            seed = int(st.number_input("Seed", 0, 2**31 - 1, 0, key="eval_seed"))
    with left:
        if mode == "Box":
            fig_key = f"boxfig:{ctx.digest}"
            st.plotly_chart(ev.box_figure(image, box), key=fig_key, selection_mode="box", config={"displayModeBar": False},
                            on_select=lambda: ev.take_drawn_box(st.session_state[fig_key], image, box_key))
            region = metrics.box_region((H, W), box)
        else:
            st.image(image, caption=escape.markdown(ctx.image_name), width="stretch")

    if not chosen and not use_refs:
        st.info("Pick at least one explainer, or switch the reference maps on.")
        st.stop()
    params = choice.get("params", {})
    seed_x = choice.get("seed", 0)
    requests = {m: xc.ExplainRequest.make(m, target, params.get(m, {}), seed_x) for m in chosen}
    model_ids = [m for m in chosen_metrics if metrics.get_metric(m).kind != "localisation"]
    key = (ctx.model_key, ctx.digest, ctx.options.result_key, target, tuple(r.key for r in requests.values()),
           use_refs, tuple(model_ids), tuple((k, tuple(sorted(v.items()))) for k, v in mparams.items()), seed)
    refs = ev.references_for(ctx.digest, image, seed) if use_refs else {}
    stop_slot = st.empty()
    if not maps.stop_control(key, [] if ev.is_cached(key) else ["the evaluation"], stop_slot):
        evaluation_stream.show_stopped(key, set(refs))
        st.stop()
    slot, area = st.empty(), st.empty()  # progress bars; the ranking and curves, redrawn as each map is scored
    run = evaluation_stream.Run(key, requests, titles, refs, target, model_ids, mparams, seed, region,
                                [m for m in chosen_metrics if m not in model_ids])
    try:
        found, report = evaluation_stream.evaluate(ctx, image, run, slot, area)
    except xc.XaiError as err:
        st.error(str(err))
        st.stop()
    stop_slot.empty()
    with area.container():
        ev.show_report(report, set(refs), image_name=ctx.image_name, meta=evaluation_meta.latest(ctx))
    region_key = services.bytes_digest(region.tobytes()) if region is not None else None
    report_button.evaluation_download(ctx, image, {**found, **refs}, report, (*key, region_key), region=region,
                                      region_kind=mode.lower())
    ev.show_stability(ctx, key, image, found, target, model_ids, mparams, seed, slot)

with many:
    if model.target_kind:
        st.info(f"Over a set, every image is explained for its own class; {escape.markdown(model.title)} has none. "
                "Evaluate its target on this image in the first tab.")
        st.stop()
    evaluation_set.render(ctx, choice.get("explainers", DEFAULTS), choice.get("params", {}), titles, mparams)
