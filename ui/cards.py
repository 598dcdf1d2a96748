"""The taxonomy table and saliency cards, both from registry metadata (``xai_core.lessons.cards``)."""

from __future__ import annotations

import streamlit as st

import xai_core as xc
from xai_core.lessons import cards


def show(spec: xc.ExplainerSpec) -> None:
    """One saliency card: idea, formula, sensitivities, failure modes, paper, taxonomy and cost."""
    c = cards.card(spec)
    st.markdown(f"**{c.title}** — {c.idea}")
    if c.formula:
        st.latex(c.formula)
    st.markdown(f"*Sensitive to:* {c.sensitive_to}  \n*Known failure modes:* {c.failure_modes}  \n"
                f"*Taxonomy:* {', '.join(c.taxonomy)}  \n*Cost:* {c.cost}  \n📄 {c.reference}")


def taxonomy() -> None:
    specs = xc.list_explainers()
    st.dataframe(cards.taxonomy_rows(specs), hide_index=True, width="stretch",
                 column_config={"Passes per image": st.column_config.NumberColumn(
                     format="%d", help="Forward + backward passes per image at the defaults (224 px), from the "
                                       "registry's cost data; empty where the model decides.")})
    pick = st.selectbox("Saliency card", [s.id for s in specs], key="card_pick",
                        format_func=lambda i: xc.get_explainer(i).title)
    show(xc.get_explainer(pick))
