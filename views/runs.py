"""Runs page: browse a batch run (xai-batch) — filter and sort its table, per-class summaries, an image and its maps,
SpRAy over a class, a link to Explain — or start one as a background job."""

import plotly.express as px
import streamlit as st

import xai_core as xc
from ui import jobs, state
from ui import runs_view as rv
from xai_core import batch
from xai_core.batch import results
from xai_core.untrusted.paths import scrub

ctx = state.current()
st.title("Runs: explanations over a whole dataset")
st.caption("A run explains and scores every image of a folder (`xai-batch`, locally or on Ray). Open one to find "
           "the worst-localised and most uncertain images, compare classes, and look for strategies with SpRAy.")

browse, start = st.tabs(["📂 Open a run", "▶️ Start a run"])

with start:
    config = rv.start_form(ctx)
    if config is not None and ctx.model_key not in xc.list_models():
        st.info("Runs started here use a model from the picker; run `xai-batch --model-file …` for your own model.")
    elif config is not None:
        jobs.panel("runs_job", "Start the run", lambda: lambda progress: batch.run(config, model=ctx.model,
                   progress=progress, show_bar=False), lambda s: st.success(batch.summary_text(s, rv.run_name(config.out))),
                   title="Batch run")

with browse:
    known = results.list_runs(rv.runs_root())
    pick = st.selectbox("Runs found", known, index=None, key="runs_pick", placeholder="choose a run…") if known else None
    typed = st.text_input("…or a run folder (its name inside the runs folder)", key="runs_path")
    chosen = typed or pick
    if not chosen:
        st.info("No run open. Start one in the next tab, or run `xai-batch FOLDER --out $XAI_RUNS_ROOT/NAME` on the "
                "server.")
        st.stop()
    run = rv.open_run(chosen)
    st.caption(f"{run.table['item'].nunique()} images · model {run.model_title} · "
               f"{'finished' if run.finished else 'not finished (resume it with the same command)'}")

    t = run.table
    classes = sorted(t["label_name"].fillna(t["prediction_name"]).dropna().unique())
    f1, f2, f3 = st.columns(3)
    cls = f1.multiselect("Class", classes, key="runs_cls")
    options = rv.correct_options(run)
    if len(options) > 1:
        correct = f2.radio("Prediction", options, horizontal=True, key="runs_correct")
    else:  # nothing labelled: correctness is unknown, not false
        correct = "all"
        f2.caption("No image of this run has a label, so whether a prediction is correct is unknown.")
    expl = f3.multiselect("Explainer", sorted(t["explainer"].unique()), key="runs_expl")
    m1, m2 = st.columns([1, 2])
    metric = m1.selectbox("Filter on a metric", run.metrics, index=None, key="runs_metric",
                          format_func=lambda m: xc.metrics.get_metric(m).column)
    span = None
    if metric and t[metric].notna().any():
        lo, hi = float(t[metric].min()), float(t[metric].max())
        span = m2.slider("Range", lo, max(hi, lo + 1e-6), (lo, max(hi, lo + 1e-6)), key="runs_span")
    order = st.radio("Order", ["table", "worst-localised first", "most uncertain first"], horizontal=True, key="runs_order")
    view = rv.filtered(run, cls, correct, expl, metric, span)
    if order == "worst-localised first":
        view, key = results.worst_first(view, run.metrics)
        st.caption(f"Ranked on {xc.metrics.get_metric(key).column if key in run.metrics else key}.")
    elif order == "most uncertain first":
        view = results.most_uncertain(view)
    shown = view[[c for c in [*rv.SHOWN, *run.metrics, "error"] if c in view]].reset_index(drop=True)
    shown["error"] = shown["error"].map(lambda e: scrub(e) if isinstance(e, str) else e).astype("string")
    st.caption(f"{len(shown)} of {len(t)} rows · click a row to see the image and its maps; click a header to sort.")
    picked = st.dataframe(shown, key="runs_table", on_select="rerun", selection_mode="single-row", hide_index=True,
                          column_config=rv.columns(run), height=320)
    rows = picked.selection.rows if picked is not None else []
    if rows:
        item = shown.iloc[rows[0]]["item"]
        st.subheader(item)
        rv.item_panels(run, item)
        rv.explain_link(run, item)

    st.subheader("Per class")
    summary = results.per_class(t, run.metrics)
    st.dataframe(summary, hide_index=True, key="runs_summary")
    if run.metrics:
        col = st.selectbox("Plot", run.metrics, key="runs_plot_metric", format_func=lambda m: xc.metrics.get_metric(m).column)
        header = xc.metrics.get_metric(col).column
        st.plotly_chart(px.bar(summary, x="class", y=header, color="explainer", barmode="group",
                               title=f"Mean {header} per class"), key="runs_plot")

    st.subheader("SpRAy over a class")
    s1, s2 = st.columns(2)
    s_cls = s1.selectbox("Class", classes, key="runs_spray_cls")
    s_expl = s2.selectbox("Explainer", sorted(t["explainer"].unique()), key="runs_spray_expl")
    if st.button("Cluster the maps", key="runs_spray") and s_cls:
        rv.spray_panel(run, s_cls, s_expl)
