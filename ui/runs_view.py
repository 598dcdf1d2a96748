"""Helpers of the Runs page: the runs root, opening a run (cached), filters, a row's maps, SpRAy, the Explain link,
and the form that starts a run as a background job. No torch here: maps come back as numpy arrays."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import plotly.express as px
import streamlit as st

import xai_core as xc
from xai_core import batch, render
from xai_core.batch import results
from xai_core.batch.inputs import INPUTS_REFUSAL
from xai_core.lab.spray import spray
from xai_core.metrics import get_metric
from xai_core.untrusted.paths import relative, scrub

from . import links

RUNS_ROOT = os.environ.get("XAI_RUNS_ROOT", "runs")
INPUTS_ROOT = os.environ.get("XAI_INPUTS_ROOT", "data")
SHOWN = ["item", "label_name", "prediction_name", "probability", "correct", "explainer", "seed", "entropy"]


def runs_root() -> Path:
    return Path(RUNS_ROOT).resolve()


def run_name(path: str | Path) -> str:
    """A run folder as the page names it: relative to the runs root, never the server's path."""
    return relative(path, runs_root())


@st.cache_resource(max_entries=4, show_spinner="Opening the run…")
def _open(path: str, stamp: float) -> results.Run:
    return results.open_run(path)


def open_run(text: str) -> results.Run:
    """The run at ``text`` inside the runs root (refused outside it), reopened when its run.json changes."""
    path = results.resolve_under(runs_root(), text)
    meta = path / "run.json"
    return _open(str(path), meta.stat().st_mtime if meta.is_file() else 0.0)


def filtered(run: results.Run, classes: list[str], correct: str, explainers: list[str], metric: str | None,
             span: tuple[float, float] | None) -> pd.DataFrame:
    t = run.table
    cls = t["label_name"].fillna(t["prediction_name"])
    keep = cls.isin(classes) if classes else pd.Series(True, index=t.index)
    if correct == "unknown":  # no label: whether the prediction is right is not known (never counted as wrong)
        keep &= t["correct"].isna()
    elif correct in ("correct", "wrong"):
        keep &= (t["correct"] == (correct == "correct")).fillna(False).astype(bool)
    if explainers:
        keep &= t["explainer"].isin(explainers)
    if metric and span is not None:
        keep &= t[metric].between(*span) | t[metric].isna()
    return t[keep]


def correct_options(run: results.Run) -> list[str]:
    """The Prediction filter's choices: correct/wrong only where some image has a label, unknown where some have none
    and others do."""
    known = run.table["correct"].notna()
    if not known.any():
        return ["all"]  # nothing labelled: every row is unknown, there is nothing to filter
    return ["all", "correct", "wrong", *(["unknown"] if not known.all() else [])]


def columns(run: results.Run) -> dict[str, object]:
    """Column names and formats for st.dataframe: every metric under its header with a direction."""
    cfg = {m: st.column_config.NumberColumn(get_metric(m).column, format="%.3f") for m in run.metrics}
    cfg.update(probability=st.column_config.NumberColumn("p(top-1)", format="%.3f"),
               entropy=st.column_config.NumberColumn("entropy", format="%.3f"))
    return cfg


def item_panels(run: results.Run, item: str) -> None:
    """The item's thumbnail and every map of it (one per explainer and seed)."""
    rows = run.table[run.table["item"] == item]
    try:
        thumb = run.thumbnail(rows.iloc[0])
    except xc.XaiError as e:  # a damaged run folder: one sentence, the maps are not drawn without their image
        st.error(str(e))
        return
    cols = st.columns(min(4, len(rows) + 1))
    if thumb is not None:
        cols[0].image(thumb, caption=item, width="stretch")
    for i, (_, row) in enumerate(rows.iterrows(), 1):
        try:
            m = run.map_of(row)
        except xc.XaiError as e:
            st.error(str(e))
            return
        col = cols[i % len(cols)]
        if m is None or thumb is None:
            col.warning(f"{row['explainer']}: {scrub(str(row['error'])) if pd.notna(row['error']) else 'no map'}")
            continue
        signed = xc.get_explainer(row["explainer"]).signed
        small = cv2.resize(m, (thumb.shape[1], thumb.shape[0]), interpolation=cv2.INTER_LINEAR)
        facts = " · ".join(f"{get_metric(k).column} {row[k]:.3f}" for k in run.metrics if pd.notna(row[k]))
        col.image(render.overlay(thumb, small, signed), width="stretch",
                  caption=f"{row['explainer']} (seed {row['seed']}) → {row['target_name']}" + (f" · {facts}" if facts else ""))


def explain_link(run: results.Run, item: str) -> None:
    """Put the item's image in the shared store of uploads and link the Explain page to it with the run's model."""
    row = run.table[run.table["item"] == item].iloc[0]
    try:  # only from inside the inputs root, sized and decoded like an upload
        image = run.source_image(row, INPUTS_ROOT)
    except xc.XaiError:
        try:
            image = run.thumbnail(row)
        except xc.XaiError:
            image = None
        st.caption("The original file is not readable inside the inputs folder: the Explain page gets the stored "
                   "thumbnail.")
    if image is None:
        return
    model = run.meta.get("model", {}).get("id", "")
    url = links.hand_over(image, Path(str(row["path"])).name, model)  # the one hand-off: a tuple under a share token
    if model in xc.list_models():
        st.link_button("🔥 Explain this image with the run's model", url)
    else:
        st.link_button("🔥 Explain this image", url)
        st.caption(f"The run's model ({run.meta.get('model', {}).get('title', model)}) is not in the model picker: "
                   "load it under 'Your own model' in the sidebar.")


def spray_panel(run: results.Run, cls: str, explainer: str) -> None:
    """SpRAy (the lab's code) over the maps of one class and explainer: clusters, mean maps, members."""
    t = run.table
    rows = t[(t["label_name"].fillna(t["prediction_name"]) == cls) & (t["explainer"] == explainer) & (t["map_index"] >= 0)]
    if len(rows) < 4:
        st.info(f"SpRAy needs at least 4 maps; {cls} has {len(rows)} for {explainer}.")
        return
    maps = np.stack([run.map_of(r) for _, r in rows.iterrows()])
    res = spray(maps, max_k=min(8, len(rows) - 1))
    st.markdown(f"**{res.k} strategies** among {len(rows)} maps of *{cls}* (largest eigengap).")
    cols = st.columns(res.k)
    for c in range(res.k):
        members = rows[res.labels == c]
        mean = cv2.resize(res.means[c].astype(np.float32), (96, 96), interpolation=cv2.INTER_NEAREST)
        cols[c].image(render.colorize(mean, False), caption=f"cluster {c + 1}: {len(members)} maps", width="stretch")
        cols[c].caption(", ".join(members["item"].head(8)))
    st.plotly_chart(px.line(y=res.eigenvalues, markers=True, labels={"x": "index", "y": "eigenvalue"},
                            title="Eigenvalues of the graph Laplacian"), key="runs_spray_eig")


def start_form(ctx) -> batch.BatchConfig | None:  # noqa: ANN001 - ui.state.Context
    """The fields of a new run; the config when they are valid (else an error is shown and None returned)."""
    st.caption("Inputs are read from the server's inputs folder and runs written to its runs folder "
               "(XAI_INPUTS_ROOT / XAI_RUNS_ROOT on the server); give names inside them.")
    c1, c2 = st.columns(2)
    src = c1.text_input("Input folder or CSV (inside the inputs root)", key="runs_new_inputs")
    name = c2.text_input("Run name", value="run", key="runs_new_name")
    methods = st.multiselect("Explainers", [s.id for s in xc.list_explainers()], default=["gradcam"], key="runs_new_expl")
    ms = st.multiselect("Metrics", [m.id for m in xc.metrics.list_metrics()], default=list(batch.config.DEFAULT_METRICS),
                        key="runs_new_metrics")
    target = st.radio("Class to explain", ["label", "top1"], horizontal=True, key="runs_new_target")
    if not src:
        return None
    try:
        inputs = results.resolve_under(INPUTS_ROOT, src, INPUTS_REFUSAL)
        out = results.resolve_under(runs_root(), name)
        return batch.BatchConfig(inputs=str(inputs), out=str(out), model=batch.ModelSource(ctx.model_key),
                                 explainers=tuple((m, ()) for m in methods), metrics=tuple(ms), target=target,
                                 inputs_root=str(Path(INPUTS_ROOT).resolve()))
    except xc.XaiError as e:
        st.error(str(e))
        return None
