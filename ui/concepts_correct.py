"""Correcting a concept on the Concepts page (Anders et al., 'Finding and removing Clever Hans', Information Fusion
2022): P-ClArC projects the concept's direction out of the layer on every forward (any model; no retraining) and, for
the lab CNN only, A-ClArC fine-tunes a *copy* with the concept (the artifact) added to every image so it no longer
separates the classes. Both run as background jobs (progress, Stop) and their before/after tables are kept in the
process-wide store keyed on content (the discovery's signature, the concept)."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import streamlit as st

from xai_core import concepts, images
from xai_core.lab import imagenet_w

from . import escape, jobs, services
from .concepts_data import Found, Progress, is_lab
from .concepts_names import name_of
from .state import Context

CLARC_JOB, ACLARC_JOB = "concepts_clarc_job", "concepts_aclarc_job"
CLARC_N = 300  # images per part of the lab's shortcut report (3 parts); 600 (the lab page's) takes ~7 s on 2 cores
ACLARC_N = 300  # images per part of the lab's numbers, measured on 3 models (before, after, after with the tag pasted)
ACLARC_TRAIN_N, ACLARC_EPOCHS = 3000, 4  # the library's measured recipe (~30-50 s on 2 cores); tests make it smaller
Rows = list[dict[str, str]]


def clarc_sig(ctx: Context, found: Found, index: int) -> tuple:
    return ("clarc", *found.sig, index, "" if is_lab(ctx) else ctx.digest)


def aclarc_sig(found: Found, index: int) -> tuple:
    return ("aclarc", *found.sig, index, ACLARC_N, ACLARC_TRAIN_N, ACLARC_EPOCHS)


def _pct(v: float) -> str:
    return "n/a" if math.isnan(v) else f"{v:.0%}"


def carton_rows(wb: Any, samples: dict[str, Any], layer: str, direction: Any) -> Rows:
    """ImageNet-W (Li et al., CVPR 2023) on the samples, before and with ``direction`` projected out at ``layer``: how
    much the watermark multiplies p(carton) (median over the samples) and on how many samples it raises it."""
    before = imagenet_w.carton_shift(wb, samples)
    with concepts.projected(wb, layer, direction):
        after = imagenet_w.carton_shift(wb, samples)
    rise = [float(np.median([s.ratio for s in shifts])) for shifts in (before, after)]
    count = [sum(s.ratio > 1 for s in shifts) for shifts in (before, after)]
    return [{"number": f"ImageNet-W: p(carton) × with the watermark (median of {len(samples)} samples)",
             "before": f"×{rise[0]:.2g}", "after P-ClArC": f"×{rise[1]:.2g}", "change": ""},
            {"number": "ImageNet-W: samples whose p(carton) the watermark raises", "before": f"{count[0]}/{len(samples)}",
             "after P-ClArC": f"{count[1]}/{len(samples)}", "change": ""}]


def _pts(before: float, after: float) -> str:
    return "" if math.isnan(before) or math.isnan(after) else f"{(after - before) * 100:+.0f} pts"


def clarc_job(ctx: Context, found: Found, index: int, sig: tuple) -> Callable[[Progress], tuple[tuple, Rows]]:
    """P-ClArC for concept ``index``: the lab CNN's shortcut numbers, or p(class) on the current image, before/after."""
    wb, store, image, lab_model = ctx.workbench, services.store(), ctx.image, is_lab(ctx)
    concept = next(c for c in found.discovery.concepts if c.index == index)
    layer, target = found.discovery.layer, found.discovery.target
    samples = {} if lab_model else {name: services.sample(name)[0] for name in images.sample_names()}

    def run(progress: Progress) -> tuple[tuple, Rows]:
        hit = store.get(sig)
        if hit is not None:
            return hit
        progress(0.1, "measuring the model as it is and with the concept removed")
        if lab_model:
            ba = concepts.before_after(wb, layer, concept.direction, n=CLARC_N)
            rows = [{"number": k, "before": _pct(ba.before[k]), "after P-ClArC": _pct(ba.after[k]),
                     "change": _pts(ba.before[k], ba.after[k])} for k in ba.before]
        else:
            before = wb.probabilities(image)
            with concepts.projected(wb, layer, concept.direction):
                after = wb.probabilities(image)
            label = wb.model.label
            rows = [{"number": f"p({label(target)}) on this image", "before": f"{before[target]:.1%}",
                     "after P-ClArC": f"{after[target]:.1%}", "change": f"{(after[target] - before[target]) * 100:+.1f} pts"},
                    {"number": "top-1 class on this image", "before": label(int(before.argmax())),
                     "after P-ClArC": label(int(after.argmax())), "change": ""}]
            if wb.model.num_classes == 1000:  # an ImageNet-1k model: the ImageNet-W watermark's carton rise too
                progress(0.5, "the ImageNet-W watermark on the samples, before and with the concept removed")
                rows += carton_rows(wb, samples, layer, concept.direction)
        result = (sig, rows)
        store.put(sig, result)
        return result

    return run


def aclarc_rows(result: Any) -> Rows:
    """An :class:`~xai_core.concepts.AclarcResult` as the page's table: each lab number before, after A-ClArC (the
    fine-tuned copy on the images as they are), with the artifact on every input (pasted in input space) and, in
    feature space, with P-ClArC on top."""
    also = getattr(result, "after_projected", None)
    pasted = getattr(result, "after_artifact", None)
    rows = []
    for k, before in result.before.items():
        row = {"number": k, "before": _pct(before), "after A-ClArC": _pct(result.after[k])}
        if isinstance(pasted, dict) and k in pasted:
            row["after, tag on every input"] = _pct(pasted[k])
        if isinstance(also, dict) and k in also:
            row["after A-ClArC + P-ClArC"] = _pct(also[k])
        rows.append({**row, "change": _pts(before, result.after[k])})
    return rows


def aclarc_job(ctx: Context, found: Found, index: int, sig: tuple) -> Callable[[Progress], tuple[tuple, Rows]]:
    """A-ClArC for concept ``index`` on the lab CNN: a fine-tuned copy (the shared model is never changed)."""
    wb, store = ctx.workbench, services.store()
    concept = next(c for c in found.discovery.concepts if c.index == index)

    def run(progress: Progress) -> tuple[tuple, Rows]:
        hit = store.get(sig)
        if hit is not None:
            return hit
        progress(0.02, "finding the artifact in a training-like set (no flags)")

        def tuning(fraction: float, text: str) -> None:
            progress(0.05 + 0.8 * fraction, f"{text} · then the lab's numbers on the model before and after")

        res = concepts.before_after_aclarc(wb, found.discovery.layer, concept.direction, n=ACLARC_N,
                                           train_n=ACLARC_TRAIN_N, epochs=ACLARC_EPOCHS, progress=tuning)
        result = (sig, aclarc_rows(res))
        store.put(sig, result)
        return result

    return run


def _rows_for(sig: tuple, job: Any) -> Rows | None:
    hit = services.store().get(sig)
    if hit is None:
        hit = getattr(job, "result", None)
    return hit[1] if isinstance(hit, tuple) and len(hit) == 2 and hit[0] == sig else None


def done(ctx: Context, found: Found) -> list[tuple[str, Rows]]:
    """Every correction of ``found``'s concepts that has run (in the store), as (title, rows): for reports."""
    out = []
    for c in found.discovery.concepts:
        for title, sig in (("P-ClArC", clarc_sig(ctx, found, c.index)), ("A-ClArC", aclarc_sig(found, c.index))):
            rows = _rows_for(sig, None)
            if rows is not None:
                out.append((f"{title}: before and after removing {name_of(found, c.index)}", rows))
    return out


def section(ctx: Context, found: Found) -> None:
    lab_model = is_lab(ctx)
    st.subheader("Correct it: remove a concept (P-ClArC" + (", A-ClArC)" if lab_model else ")"))
    st.caption("P-ClArC (Anders et al. 2022) projects the concept's direction out of the layer's activations on every "
               "forward pass: no retraining, everything else at the layer is kept. "
               + ("A-ClArC fine-tunes a copy of the lab CNN (about half a minute; the shared model is never changed): "
                  "the artifact is located in pixels from the concept alone (no flags) and pasted onto every training "
                  "image of every class, so it no longer tells the classes apart. The numbers are the lab's report on "
                  "fresh horse-watermark images." if lab_model
                  else "The numbers are the class's probability on the current image."))
    indices = [c.index for c in found.discovery.concepts]
    # a stable label (Streamlit identifies a selectbox's value by its label: a renamed concept would lose the pick)
    index = st.selectbox("Concept to remove", indices, key="concepts_clarc_pick", format_func=lambda i: f"concept {i + 1}")
    if index not in indices:  # a stale session value from an earlier discovery
        index = indices[0]
    name = name_of(found, index)
    if name != f"concept {index + 1}":
        st.caption(f"Concept {index + 1} is *{escape.markdown(name)}*.")
    sig, asig = clarc_sig(ctx, found, index), aclarc_sig(found, index)
    left, right = st.columns(2) if lab_model else (st.container(), None)
    with left:
        jobs.panel(CLARC_JOB, "🧹 Remove it (P-ClArC)", lambda: clarc_job(ctx, found, index, sig), lambda _res: None,
                   title="P-ClArC", help="Runs in the background; the model's other users wait only for its forward passes.")
    if right is not None:
        with right:
            jobs.panel(ACLARC_JOB, "🛠️ Fine-tune it away (A-ClArC)", lambda: aclarc_job(ctx, found, index, asig),
                       lambda _res: None, title="A-ClArC",
                       help="Fine-tunes a copy of the lab CNN in the background and measures it before and after.")
    for how, rows in (("", _rows_for(sig, st.session_state.get(CLARC_JOB))),
                      (" by fine-tuning (A-ClArC)", _rows_for(asig, st.session_state.get(ACLARC_JOB)) if lab_model else None)):
        if rows is not None:
            st.markdown(f"**Before and after removing {escape.markdown(name)}{how}**")
            st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")
