"""Lesson 6 on the Learn page: local vs global, on the lab CNN (a Grad-CAM map of one tagged horse next to the top
discovered concept's crops across the set)."""

from __future__ import annotations

import cv2
import streamlit as st

from xai_core import render
from xai_core.lessons import local_global

from . import services

LAB_ID = "lab_horse_cnn"
SIDE = 72


def local_vs_global(ctx) -> None:  # noqa: ANN001
    st.markdown("A **local** map answers *where* the model looked in **one** image. A **concept** is **global**: a "
                "direction in a layer's activations that recurs across **many** images of the class, shown by the "
                "crops where it is strongest. This lesson uses the debugging lab's CNN, trained on horses that mostly "
                "carry a copyright tag, whatever model is picked in the sidebar.")
    c1, c2, c3 = st.columns(3)
    n = c1.slider("Images generated (about half are horses)", 60, 300, 120, 20, key="l6_n")
    rank = c2.slider("Concepts to discover", 2, 8, 5, key="l6_rank")
    which = c3.number_input("Which tagged horse", 0, 20, 0, key="l6_which")
    wb = ctx.workbench.with_model(services.model(LAB_ID))  # this session's run options, the lab CNN
    key = ("l6", services.model_digest(wb), ctx.options.result_key, n, rank, int(which))
    r = services.memo(key, lambda: local_global.local_vs_global(wb, n=n, rank=rank, which=int(which)))
    left, right = st.columns([1, 2])
    left.image(render.overlay(r.image, r.gradcam, False), width=220,
               caption=f"Grad-CAM of 'horse' on one tagged horse: {r.map_in_tag:.0%} of the map lies on the tag")
    right.image([cv2.resize(c, (SIDE, SIDE), interpolation=cv2.INTER_NEAREST) for c in r.crops], width=SIDE)
    right.caption(f"The top concept at `{r.layer}` across the set's {r.horses} horses (importance share "
                  f"{r.share:+.0%}): {r.on_tag} of its top {len(r.crops)} crops lie on a tag.")
    st.markdown("The map says *where*, in one image: it cannot say whether the model uses that spot for every horse, "
                "nor what it sees there (the tag's text? the corner's brightness?). The concept says *what*, across "
                "many images: the same pattern, cut out of different horses, and how much it adds to 'horse'. Find "
                "all of a class's concepts, name them and remove one on the Concepts page.")
