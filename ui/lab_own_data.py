"""The lab on your own data: a class-folder zip and the sidebar's model — maps, accuracy, localisation, SpRAy."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import streamlit as st

import xai_core as xc
from ui import jobs, services, widgets
from ui.figures import overlay_small
from ui.lab_horse import spray_clusters
from ui.state import Context
from xai_core.lab import folders, own_data

MAX_PASSES = 100  # passes per image: up to 300 images with any model, your own included
JOB = "own_data_job"


@st.cache_data(show_spinner="Reading the zip…", max_entries=4)
def _read(digest: str, _data: bytes) -> folders.FolderSet:
    return folders.read_class_zip(_data)


@st.cache_data(show_spinner=False)
def _example() -> bytes:
    return folders.example_zip()


def render(ctx: Context) -> None:
    st.caption(f"Upload a zip with {folders.LAYOUT}. Optional ground truth for localisation: a mask next to an image "
               "(`001_mask.png`, white object on black) or a `boxes.csv` of `filename,x0,y0,x1,y1`. Up to "
               f"{folders.MAX_IMAGES} images, {folders.MAX_ZIP_BYTES // 2**20} MB per zip and "
               f"{folders.MAX_FILE_BYTES // 2**20} MB per image; images are kept at {folders.MAX_SIDE} px. "
               "The model is the one picked in the sidebar (your own checkpoint included).")
    c1, c2 = st.columns([3, 2])
    up = c1.file_uploader("Zip of class folders", type=["zip"], key="own_zip")
    use_example = c2.toggle("Use the example zip (80 lab images with masks)", key="own_example", disabled=up is not None)
    c2.download_button("⬇️ Download the example zip", _example(), file_name="horse-watermark-example.zip",
                       mime="application/zip", key="own_example_dl")
    if use_example and up is None and ctx.model.id != "lab_horse_cnn":
        c2.caption("The example is made for the lab CNN: pick *Horse-watermark lab CNN* as the model in the sidebar "
                   "to see its shortcut.")
    data = up.getvalue() if up is not None else _example() if use_example else None
    if data is None:
        return
    digest = services.bytes_digest(data)
    try:
        fs = _read(digest, data)
    except xc.XaiError as e:
        st.error(str(e))
        return
    _summary(ctx, fs)
    methods = widgets.methods_within(MAX_PASSES, model=ctx.model)
    method = st.selectbox("Explainer", methods, index=methods.index(widgets.one_per_family(methods)[0]), key="own_method",
                          format_func=lambda m: xc.get_explainer(m).title)
    sig = (ctx.model_key, ctx.options.result_key, digest, method)

    def make() -> Callable:
        return lambda progress: (sig, own_data.analyse(ctx.workbench, fs, method, progress=progress))

    jobs.panel(JOB, f"▶️ Explain all {len(fs)} images", make, lambda res: _show(res, sig, fs),
               title="Explaining your data", help="Runs in the background; you can keep using the page meanwhile.")


def _summary(ctx: Context, fs: folders.FolderSet) -> None:
    mapped = own_data.match_classes(fs.classes, ctx.model.labels)
    counts = fs.counts()
    st.dataframe(pd.DataFrame([{"folder": c, "images": counts[c], "with a mask or box": sum(
        fs.regions[i] is not None for i in np.where(fs.labels == k)[0]),
        "model class": ctx.model.label(m) if m is not None else "— (explained for the top-1 class)"}
        for k, (c, m) in enumerate(zip(fs.classes, mapped, strict=True))]), hide_index=True, width="stretch")
    if all(m is None for m in mapped):
        st.info(f"No folder name matches a class of {ctx.model.title}: accuracy cannot be measured, and each image is "
                "explained for the model's top-1 class. Name folders after the model's classes (or their index).")
    for n in fs.notes:
        st.caption(f"ℹ️ {n}")


def _show(result: tuple, sig: tuple, fs: folders.FolderSet) -> None:
    done_sig, rep = result
    if done_sig != sig:
        st.info("These results are for an earlier model, zip or explainer: run again for the current choice.")
        return
    st.subheader("Per class")
    st.dataframe(pd.DataFrame(rep.per_class), hide_index=True, width="stretch", column_config={
        c: st.column_config.NumberColumn(format="%.2f") for c in ("accuracy", "pointing game", "relevance mass")})
    rows = pd.DataFrame(rep.rows)
    with st.expander(f"Per image ({len(rows)} rows)"):
        st.dataframe(rows, hide_index=True, width="stretch")
    st.download_button("⬇️ Download per-image results (CSV)", rows.to_csv(index=False), file_name="your-data.csv",
                       mime="text/csv", key="own_csv")
    st.subheader("SpRAy within a class")
    name = st.selectbox("Class", fs.classes, key="own_spray_class")
    idx = np.where(fs.labels == fs.classes.index(name))[0]
    res = rep.spray[name]
    if isinstance(res, str):
        st.info(res)
    else:
        st.caption("Each cluster is a strategy the model uses for this class; a small cluster whose mean map sits "
                   "off the object (a corner, a border, a logo) is the Clever Hans candidate.")
        spray_clusters(res, [_overlay(fs, rep, i) for i in idx], "own_eig")
    wrong = [i for i in idx if rep.rows[i]["correct"] is False]
    if wrong:
        st.markdown(f"**Misclassified ({len(wrong)})**")
        for c, i in zip(st.columns(8), wrong[:8], strict=False):
            c.image(_overlay(fs, rep, i), caption=f"→ {rep.rows[i]['predicted']}", width="stretch")


def _overlay(fs: folders.FolderSet, rep: own_data.FolderReport, i: int) -> np.ndarray:
    return overlay_small(fs.images[i], rep.maps[i], rep.signed, alpha=0.6, cmap="inferno", side=128)
