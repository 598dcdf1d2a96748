"""The Evaluate page's second tab: the metrics over all samples or an uploaded zip, mean ± std per map."""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

import xai_core as xc
from ui import evaluation_meta, services, widgets
from ui.state import Context
from xai_core import batch, metrics

RESULT = "xai_set_result"
SET_METRICS = ["deletion", "insertion", "pointing_game", "relevance_mass"]


def render(ctx: Context, default_explainers: list[str], params: dict[str, dict], titles: dict[str, str],
           metric_params: dict[str, dict]) -> None:
    """The tab; ``metric_params`` are the first tab's metric settings (they apply here too)."""
    st.caption("The metric settings of the first tab apply. Each image is explained for its top-1 class. "
               "Localisation metrics need boxes: the samples have "
               "tight boxes (each under half its image); for a zip, add a CSV of `filename,x0,y0,x1,y1` in pixels, or a "
               "mask `x_mask.png` beside `x.png` (white object on black). "
               f"Up to {metrics.sets.MAX_IMAGES} images, {metrics.sets.MAX_ZIP_BYTES // 2**20} MB. "
               + "Metrics that re-run the explainer cost that many more explanations per image: "
               + ", ".join(f"{m.short or m.title} ({m.passes})" for m in metrics.list_metrics("rerun")) + ".")
    source = st.radio("Images", ["Bundled samples", "Upload a zip"], horizontal=True, key="set_source")
    items, notes = None, []
    if source == "Upload a zip":
        c1, c2 = st.columns(2)
        up = c1.file_uploader("Zip of images", type=["zip"], key="set_zip")
        box_csv = c2.file_uploader("Boxes (optional CSV)", type=["csv", "txt"], key="set_boxes")
        if up is not None:
            try:
                boxes = metrics.parse_boxes(box_csv.getvalue().decode("utf-8", "replace")) if box_csv else {}
                items, notes = _zip(services.bytes_digest(up.getvalue()), up.getvalue(), boxes)
            except xc.XaiError as e:
                st.error(str(e))
    else:
        items = _samples()
    c1, c2 = st.columns(2)
    chosen = c1.multiselect("Explainers", list(titles), default=default_explainers, format_func=titles.get,
                            key="set_explainers")
    chosen_metrics = c2.multiselect("Metrics", [m.id for m in metrics.list_metrics()], default=SET_METRICS,
                                    format_func=lambda i: metrics.get_metric(i).column, key="set_metrics")
    refs = st.toggle("Reference maps", True, key="set_refs")
    for n in notes:
        st.caption(f"ℹ️ {n}")
    if items is None:
        return
    st.caption(f"{len(items)} images, {sum(it.box is not None or it.region is not None for it in items)} with boxes "
               "or masks.")
    if not chosen:
        st.info("Pick at least one explainer.")
    if st.button("▶️ Evaluate the set", type="primary", key="set_run", disabled=not chosen_metrics or not chosen):
        bar = widgets.LazyProgress(st.empty(), "Evaluating the set")
        # the batch runner: the same loop as the CLI and the lab's own data
        rows, fails = batch.evaluate_set(ctx.workbench, items, [(m, params.get(m, {})) for m in chosen],
                                         metrics=chosen_metrics, params=metric_params, references=refs, progress=bar)
        bar.clear()
        st.session_state[RESULT] = ((ctx.model_key, ctx.options.result_key), rows, fails)
    result = st.session_state.get(RESULT)
    if result and result[0] == (ctx.model_key, ctx.options.result_key):
        _show(result[1], result[2])
    # MetaQuantus-style check of the metrics themselves on this set (its own job; greys out the ones that fail)
    evaluation_meta.panel(ctx, items, chosen, chosen_metrics, params, metric_params, references=refs)


def _show(rows: list[dict[str, Any]], fails: list[str]) -> None:
    for f in fails:
        st.warning(f)
    if not rows:
        return
    st.subheader("Mean ± std per map")
    st.dataframe(pd.DataFrame(metrics.summarise(rows)), hide_index=True, width="stretch")
    with st.expander(f"Per image ({len(rows)} rows)"):
        st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")
    st.download_button("⬇️ Download per-image results (CSV)", metrics.rows_csv(rows), file_name="evaluation-set.csv",
                       mime="text/csv", key="set_csv")


@st.cache_data(show_spinner="Reading the zip…", max_entries=4)
def _zip(digest: str, _data: bytes, boxes: dict) -> tuple[list[metrics.Item], list[str]]:
    return metrics.read_zip(_data, boxes)


@st.cache_data(show_spinner=False)
def _samples() -> list[metrics.Item]:
    return metrics.sample_items()
