"""Methods page: the catalogue of explainers, built from registry metadata (for lecturers and students)."""

import math

import streamlit as st

import xai_core as xc
from xai_core import metrics
from xai_core.catalogue import ANALYSES, QUANTUS, SIMILARITY

st.title("Methods")
st.caption("Every explainer, metric and analysis in XAI Explorer, with the paper it comes from. The explainer and "
           "metric tables are generated from their registries: a new method appears here by itself.")
explainers, scores, analyses = st.tabs(["Explainers", "Metrics", "Sanity checks, dataset debugging and concepts"])

specs = xc.list_explainers()
explainers.dataframe(
    [{"Method": s.title, "Family": s.family, "Signed": "yes" if s.signed else "no", "Cost": s.cost.text(),
      "Passes per image (defaults, 224 px)": s.passes() if math.isfinite(s.passes()) else None,
      "Taxonomy": ", ".join(s.taxonomy), "Stochastic": "yes" if s.stochastic else "no"} for s in specs],
    hide_index=True, width="stretch",
    column_config={"Passes per image (defaults, 224 px)": st.column_config.NumberColumn(
        format="%d", help="Forward + backward passes per image with the default parameters, from the registry's cost "
                          "data; empty where the model decides (Score-CAM: one per channel of the layer).")})

for s in specs:
    with explainers.expander(f"**{s.title}** · {s.family}"):
        st.markdown(s.summary)
        st.markdown(f"📄 {s.reference}")
        st.markdown(f"Cost: {s.cost.text()}" + ("; the class and its probability come from its own first "
                                                "forward pass" if s.reports_logits else ""))
        if s.diagnostics:
            st.markdown("Reports: " + ", ".join(d.title for d in s.diagnostics))
        if s.params:
            st.markdown("Parameters: " + "; ".join(
                f"*{p.label}* (default `{p.default or 'model default'}`) — {p.help}" for p in s.params))

for m in metrics.list_metrics():
    with scores.expander(f"**{m.title}** · {m.kind}, {m.better} is better"):
        st.markdown(m.summary)
        st.markdown(f"Needs {m.requires} · cost per map: {m.passes} · " + ("on by default" if m.default else
                                                                    "pick it in Evaluate's metric settings"))
        st.markdown(f"📄 {m.reference}")
        if m.id in QUANTUS:
            st.markdown(f"**vs Quantus 0.6:** {QUANTUS[m.id]}")

analyses.markdown(f"**How the sanity checks compare maps.** {SIMILARITY}")
analyses.dataframe([{"Analysis": a.title, "Page": a.page, "Taxonomy": ", ".join(a.taxonomy) or "—",
                     "What it does": a.summary} for a in ANALYSES],
                   hide_index=True, width="stretch")
for a in ANALYSES:
    analyses.markdown(f"**{a.title}** — 📄 {a.reference}")
