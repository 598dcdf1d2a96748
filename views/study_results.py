"""Study results (issue 25): for the designer only (the study's code and designer key): accuracy and response time
per condition with bootstrap intervals, the effect of each condition against the baseline with a test suited to the
design, per-item difficulty, attention-check exclusions, balance; CSV, Parquet and HTML report downloads."""

import pandas as pd
import streamlit as st

from ui import escape, study_access
from ui import study_results_view as srv
from xai_core.study import analysis, storage

st.title("Study results")
opened = study_access.designer("sr")
if opened is None:
    st.info("Enter a study's code and designer key (shown when it was published on the *Design a study* page).")
    st.stop()
d = opened.design
df = storage.responses(opened.code)
people = storage.participants(opened.code)
st.subheader(escape.markdown(d.name, 80))
r = analysis.analyse(df, d.layout, d.conditions, d.max_failed_checks, seed=d.seed)
m1, m2, m3, m4 = st.columns(4)
m1.metric("Joined", len(people))
m2.metric("Finished", sum(f for _, _, f in people))
m3.metric("Excluded (attention checks)", len(r.excluded))
m4.metric("Responses", len(df))
if st.button("🔄 Refresh", key="sr_refresh"):
    st.rerun()

st.subheader("Per condition")
st.table(pd.DataFrame(srv.condition_rows(r, d)).set_index("condition"))
st.caption(srv.statement(d))
st.subheader("Compared with the baseline")
if r.comparisons:
    st.table(pd.DataFrame(srv.comparison_rows(r)).set_index("comparison"))
if r.excluded:
    st.caption("Excluded after failed attention checks: " + ", ".join(r.excluded))
balance = srv.balance_rows(d, people, df)
st.caption("Balance: " + " · ".join(" ".join(v for v in row.values()) for row in balance))

st.subheader("Per item")
st.caption("How hard each item was: the share of correct answers per item and condition, hardest first.")
items = pd.DataFrame(r.items, columns=["item", "condition", "responses", "accuracy"]).sort_values("accuracy")
st.dataframe(items, hide_index=True, key="sr_items", column_config={"accuracy": st.column_config.NumberColumn(format="%.3f")})
srv.downloads(opened.code, d, df, r, balance)
