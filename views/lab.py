"""Lab page: the 'horse watermark' Clever Hans case end to end, its real-world twin ImageNet-W, and your own data."""

import streamlit as st

from ui import lab_dense, lab_horse, lab_imagenet_w, lab_own_data, state

ctx = state.current()
st.title("Dataset debugging lab: the horse watermark")
st.caption("Lapuschkin et al. (2019) found a PASCAL VOC classifier that recognised *horse* by a copyright tag in "
           "the corner of horse photos. Here the same story runs on your machine: a generated dataset where most "
           "horse images carry a tag, a small CNN trained on it, and the tools that expose the shortcut; then the "
           "same watermark effect in a real ImageNet model, and the same tools on your own data.")
PARTS = {"horse": "🐴 Synthetic horse watermark", "dense": "✂️ Segmenter and detector",
         "imagenet_w": "🌐 ImageNet-W: a real model's watermark", "own": "📂 Your own data"}
part = st.segmented_control("Part", list(PARTS), format_func=PARTS.get, default="horse", key="lab_part",
                            label_visibility="collapsed") or "horse"
if part == "horse":
    lab_horse.render(ctx)
elif part == "dense":
    lab_dense.render(ctx)
elif part == "imagenet_w":
    lab_imagenet_w.render(ctx)
else:
    lab_own_data.render(ctx)
