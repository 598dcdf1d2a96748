"""TCAV on the Concepts page (Kim et al., 'Interpretability Beyond Feature Attribution: Quantitative Testing with
Concept Activation Vectors', ICML 2018): the visitor's own concept images (an uploaded zip, read by the upload
boundary) against several random sets, one CAV per random set, the class's TCAV score at the layer (the share of the
class's images whose logit grows along the CAV), and the paper's two-sided t-test against random-vs-random runs. A
background job (progress, Stop); results are kept in the process-wide store keyed on content and, for the report,
in the session."""

from __future__ import annotations

import dataclasses
import html
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from xai_core import concepts

from . import concepts_data as data
from . import concepts_view, escape, jobs, services
from .concepts_data import ConceptSet, Progress, is_lab
from .state import Context

JOB = "concepts_tcav_job"
RESULTS = "xai_tcav_results"  # {signature: TcavRun}: this session's finished runs, for the table and the report
MIN_IMAGES = concepts.MIN_IMAGES  # per concept or random set (the library's rule; its sentence says so when short)
MAX_INPUTS, MAX_RANDOM, KEEP = 100, 50, 16
MB = 1024 * 1024
CAV_TITLES = {"logistic": "Linear classifier (TCAV)", "fastcav": "Mean difference (FastCAV)"}


@dataclass(frozen=True)
class TcavRun:
    """A finished TCAV run and what it was run on (names for the page and the report)."""

    sig: tuple
    class_name: str
    concept_title: str
    random_title: str
    result: concepts.TcavResult

    def row(self) -> dict[str, Any]:
        r = self.result
        return {"class": self.class_name, "layer": r.layer, "concept images": self.concept_title,
                "TCAV score": round(r.score, 3), "random vs random": round(float(np.mean(r.random_scores)), 3),
                "CAV": r.cav_method, "runs": len(r.scores), "p-value": float(f"{r.p_value:.3g}"),
                "significant": r.significant}


def _job(ctx: Context, inputs: ConceptSet, concept: ConceptSet, randoms: list[ConceptSet], target: int, layer: str,
         sig: tuple, method: str = "logistic") -> Callable[[Progress], TcavRun]:
    wb, store, model = ctx.workbench, services.store(), ctx.model
    names = (model.label(target), concept.title,
             "the horse-watermark set" if is_lab(ctx) else "random crops of the bundled samples")

    def run(progress: Progress) -> TcavRun:
        hit = store.get(sig)
        if isinstance(hit, TcavRun):
            return hit
        progress(0.02, "the class's images")
        x = inputs.inputs(model)
        progress(0.1, "the concept's images")
        c = concept.inputs(model)
        rs = []
        for i, r in enumerate(randoms):
            progress(0.15 + 0.25 * i / len(randoms), f"random set {i + 1}/{len(randoms)}")
            rs.append(r.inputs(model))
        progress(0.4, f"{len(rs)} concept CAVs and {len(rs)} random-vs-random CAVs, then the t-test")
        result = TcavRun(sig, *names, concepts.tcav(wb, x, target, c, rs, layer=layer, cav_method=method,
                                                    progress=lambda f, text: progress(0.4 + 0.6 * f, text)))
        store.put(sig, result)
        return result

    return run


def _concept_set(ctx: Context) -> ConceptSet | None:
    return concepts_view.zip_picker(ctx, "Zip of the concept's images", "concepts_tcav_zip",
                                    f"Images that show the concept (stripes, a watermark, a texture), any folder depth, "
                                    f"at least {MIN_IMAGES}", f"Upload a zip of at least {MIN_IMAGES} images that show a "
                                    "concept to test it.")


def section(ctx: Context, cset: ConceptSet, target: int, layer: str) -> None:
    """The TCAV part of the page: the class is the page's class, its images the set picked above."""
    st.subheader("Test a concept of your own (TCAV)")
    st.caption("TCAV (Kim et al., ICML 2018) learns a concept activation vector (CAV) that separates your concept's "
               "images from random images at the layer, and scores the class by the share of its images whose logit "
               "grows along it. One CAV per random set; the scores are tested against random-vs-random CAVs "
               "(two-sided t-test), so a score that random directions also reach is not called significant.")
    concept = _concept_set(ctx)
    if concept is None:
        return
    runs = st.slider("Random sets (runs)", 3, 10, 5, key="concepts_tcav_runs",
                     help="Each run draws its own random set; more runs make the significance test surer.")
    method = st.radio("CAV", list(CAV_TITLES), format_func=CAV_TITLES.get, horizontal=True, key="concepts_tcav_cav",
                      help="A trained linear classifier (the paper), or FastCAV: the normalised difference of the two "
                           "sets' mean activations (no training; agreed in sign with the classifier on every test set).")
    method = method if method in CAV_TITLES else "logistic"
    size = min(MAX_RANDOM, max(MIN_IMAGES, len(concept.images)))
    few = dataclasses.replace(cset, images=cset.images[:MAX_INPUTS])
    st.caption(f"Concept: {escape.markdown(concept.title)} (TCAV needs at least {MIN_IMAGES}); class "
               f"**{escape.markdown(ctx.model.label(target))}** from {len(few.images)} images of {escape.markdown(cset.title)}; "
               f"{runs} random sets of {size} images from "
               + ("the horse-watermark set." if is_lab(ctx) else "random crops of the bundled samples."))
    sig = ("tcav", services.model_digest(ctx.workbench), ctx.options.result_key, few.key, len(few.images), concept.key,
           layer, target, runs, size, method)
    jobs.panel(JOB, "🧪 Run TCAV", lambda: _job(ctx, few, concept, data.random_sets(ctx, runs, size), target, layer, sig,
                                              method),
               lambda _res: None, title="TCAV", help="Runs in the background; you can keep using the page meanwhile.")
    found = services.store().get(sig)
    if not isinstance(found, TcavRun):  # the store may have dropped it: this session's finished job still has it
        found = getattr(st.session_state.get(JOB), "result", None)
        found = found if isinstance(found, TcavRun) and found.sig == sig else None
    kept = st.session_state.setdefault(RESULTS, {})
    if found is not None:
        kept[sig] = found
        while len(kept) > KEEP:
            kept.pop(next(iter(kept)))
        st.plotly_chart(figure(found), width="stretch", config={"displayModeBar": False}, key="concepts_tcav_bars")
        st.markdown(verdict(found))
    if len(kept) > 1:
        st.markdown("**TCAV scores this session**")
        st.dataframe(pd.DataFrame([r.row() for r in kept.values()]), hide_index=True, width="stretch")


def done() -> list[TcavRun]:
    """This session's finished TCAV runs (for the report)."""
    return [r for r in st.session_state.get(RESULTS, {}).values() if isinstance(r, TcavRun)]


def verdict(run: TcavRun) -> str:
    """One sentence: significant or not, with the score, the null score, the p-value and the runs."""
    r = run.result
    null, name = float(np.mean(r.random_scores)), escape.markdown(run.class_name)
    where = f"for **{name}** at `{r.layer}`"
    if r.significant:
        way = "grows" if r.score > null else "shrinks"
        return (f"**Significant** {where}: TCAV score {r.score:.2f} against {null:.2f} for random directions "
                f"(p = {r.p_value:.2g} < {r.alpha}, two-sided t-test over {len(r.scores)} runs); the class's logit "
                f"{way} along the concept more often than along random directions.")
    return (f"**Not significant** {where}: TCAV score {r.score:.2f} against {null:.2f} for random directions "
            f"(p = {r.p_value:.2g} ≥ {r.alpha}, {len(r.scores)} runs); random directions reach the same score, so it "
            "says nothing about the concept.")


def figure(run: TcavRun) -> go.Figure:
    r = run.result
    sides = [("your concept vs random", list(r.scores), "#c0392b"), ("random vs random", list(r.random_scores), "#7f8c8d")]
    fig = go.Figure()
    for name, scores, colour in sides:
        fig.add_bar(x=[name], y=[float(np.mean(scores))], marker_color=colour, name=name,
                    error_y=dict(type="data", array=[float(np.std(scores))]), text=[f"{np.mean(scores):.2f}"],
                    hovertemplate="%{x}: mean TCAV score %{y:.2f}<extra></extra>")
        fig.add_scatter(x=[name] * len(scores), y=scores, mode="markers", marker=dict(color="#222", size=6),
                        showlegend=False, hovertemplate="one run: %{y:.2f}<extra></extra>")
    fig.update_layout(height=300, margin=dict(l=8, r=8, t=40, b=8), showlegend=False, yaxis=dict(range=[0, 1.05]),
                      title=f"TCAV score of {html.escape(run.class_name)} at {html.escape(r.layer)} "
                            f"(p = {r.p_value:.2g})")
    return fig
