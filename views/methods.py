"""Methods page: the catalogue of explainers, built from registry metadata (for lecturers and students)."""

import streamlit as st

import xai_core as xc
from ui import sidebar

sidebar.render()

st.title("Methods")
st.caption("Every explainer in XAI Explorer, with its family, taxonomy, cost and the paper it comes from. "
           "This page is generated from the registry: a new method appears here by itself.")

specs = xc.list_explainers()
st.dataframe(
    [{"Method": s.title, "Family": s.family, "Signed": "yes" if s.signed else "no", "Cost": s.cost,
      "Taxonomy": ", ".join(s.taxonomy), "Stochastic": "yes" if s.stochastic else "no"} for s in specs],
    hide_index=True, width="stretch")

for s in specs:
    with st.expander(f"**{s.title}** · {s.family}"):
        st.markdown(s.summary)
        st.markdown(f"📄 {s.reference}")
        if s.params:
            st.markdown("Parameters: " + "; ".join(
                f"*{p.label}* (default `{p.default or 'model default'}`) — {p.help}" for p in s.params))
