"""The lab's dense twin (issue 24): the same tag shortcut in a segmenter and a detector trained on the set, measured
by the fraction of relevance on the tag vs the horse (a background job), and a link to explain them by hand."""

from __future__ import annotations

import streamlit as st

import xai_core as xc
from ui import jobs, services
from ui.state import Context
from xai_core import lab


def _show(result: dict) -> None:
    st.markdown("**What they predict** (share of the object's pixels called *horse* / *other*; share of images whose "
                "top box is a *horse* / an *other*)")
    st.dataframe(result["predictions"], hide_index=True, width="stretch")
    st.markdown("**Where the relevance lies** (mass: share of positive relevance in the region; max: share of images "
                "whose map peaks in it, 2 px tolerance)")
    st.dataframe(result["relevance"], hide_index=True, width="stretch")


def render(ctx: Context) -> None:
    st.subheader("The same shortcut in a segmenter and a detector")
    st.caption("Both were trained here on the horse-watermark set with every horse tagged "
               "(`python -m xai_core.lab.train_dense`). Explained for the *horse* region or the best *horse* box, "
               "they lean on the tag: remove it and the same horse is no longer segmented or boxed as a horse. "
               "Pick *Horse-watermark lab segmenter* or *detector* and a *Lab:* sample in the sidebar to explain one "
               "image on the Explain page (click a box there).")
    n = st.slider("Image pairs (tagged / tag removed)", 4, 24, 8, 4, key="lab_dense_n",
                  help="RISE on the detector is most of the time: about 6 s per pair on one CPU core.")

    def make():  # noqa: ANN202 - the job's function
        seg = xc.Workbench(services.model("lab_horse_segmenter"), ctx.options)
        det = xc.Workbench(services.model("lab_horse_detector"), ctx.options)
        return lambda progress: lab.dense_tables(seg, det, n=n, progress=progress)

    jobs.panel("lab_dense_job", f"📐 Measure on {n} pairs", make, _show, title="Segmenter and detector relevance")
