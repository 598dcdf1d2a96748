"""One map of the Explain page, any-time: a refining explainer's map is redrawn in place as it sharpens.

While a refining explainer runs (:meth:`xai_core.Workbench.explain_stream`), each refinement replaces the picture in
the map's own placeholder — no rerun of the page — with a line saying what it is made of ("400 of 2,000 masks");
the finished map becomes the hoverable figure. With "Stop when stable" (on by default) the stream ends once
:data:`RULE` holds, and the figure says so; the page's Stop button keeps the last refinement, marked as stopped by
the user. Results are stored under the request's key and the stop setting, so reruns are instant (a map that ran to
the end is the one-shot map: it is also stored under the request's own key, which other pages use).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import streamlit as st

import xai_core as xc
from xai_core import anytime

from . import anytime_figures, figures, maps, present, services, widgets
from .state import Context

RULE = anytime.StopRule()


@dataclass(frozen=True)
class Look:
    """How the page draws maps."""

    alpha: float
    cmap: str
    ncols: int
    presenting: bool
    auto_stop: bool
    uncertainty: bool


def store_key(ctx: Context, digest: str, request: xc.ExplainRequest, auto_stop: bool) -> tuple:
    """The store key of a map on this page: the one-shot key, and for a refining explainer the stop setting."""
    key = services.explanation_key(ctx.model_key, digest, ctx.options, request)
    return (*key, "anytime", RULE.key if auto_stop else "to the end") if request.spec.refines else key


def is_cached(ctx: Context, digest: str, request: xc.ExplainRequest, auto_stop: bool) -> bool:
    return services.store().get(store_key(ctx, digest, request, auto_stop)) is not None


def compute(ctx: Context, image: np.ndarray, request: xc.ExplainRequest, key: tuple, look: Look, slot, bar) -> xc.Explanation:  # noqa: ANN001
    """The stored map, else computed: streamed into ``slot`` for a refining explainer (each refinement also kept as
    the partial a Stop shows), in one go for the others."""
    hit = services.store().get(key)
    if hit is not None:
        return hit
    if not request.spec.refines:
        hit = ctx.workbench.explain(image, request, progress=bar)
        services.store().put(key, hit)
        return hit
    out = None
    with anytime.closed(ctx.workbench.explain_stream(image, request, stop=RULE if look.auto_stop else None,
                                                     progress=bar)) as stream:
        for out in stream:
            services.store().put(("partial", *key), out)
            ref = out.refinement
            if ref is not None and not ref.complete and not ref.stopped:
                slot.image(anytime_figures.preview(image, out, alpha=look.alpha, cmap=look.cmap,
                                                   uncertainty=look.uncertainty),
                           caption=f"{out.title}: {ref.text} so far", width="stretch")
    if out is None:
        raise xc.ExplainerError(f"{request.spec.title} gave no map.")
    services.store().put(key, out)
    if out.refinement is not None and out.refinement.complete:  # the one-shot map itself: other pages reuse it
        services.store().put(key[:-2], out)
    return out


def caption(e: xc.Explanation, uncertainty: bool) -> str:
    """The facts line, what the map is made of when it stopped early, and what its uncertainty is when shown."""
    ref = e.refinement
    parts = [maps.facts(e)]
    if ref is not None and (ref.stopped or not ref.complete):
        parts.append(ref.stopped or ref.text)
    if uncertainty:
        parts.append(f"uncertainty: {ref.uncertainty}. {anytime_figures.LEGEND}" if e.uncertainty is not None and ref
                     else "no uncertainty estimate for this map")
    return " · ".join(parts)


def draw(ctx: Context, digest: str, image: np.ndarray, request: xc.ExplainRequest, look: Look, *,
         stopped: bool) -> xc.Explanation | None:
    """One map's column (figure and caption); None when it has no map (stopped before any, or failed)."""
    spec = request.spec
    key = store_key(ctx, digest, request, look.auto_stop)
    slot = st.empty()
    if stopped:
        e = services.store().get(("partial", *key))
        if e is None or e.refinement is None:
            slot.caption(f"**{spec.title}**: stopped")
            return None
        e = replace(e, refinement=replace(e.refinement, stopped=f"stopped by you at {e.refinement.text}"))
    else:
        bar = widgets.LazyProgress(st.empty(), spec.title)
        try:
            e = compute(ctx, image, request, key, look, slot, bar)
        except xc.XaiError as err:
            bar.clear()
            slot.error(f"**{spec.title}**: {err}")
            return None
        except Exception as err:  # noqa: BLE001 - one failing method must not take the page down
            bar.clear()
            slot.error(f"**{spec.title}** failed unexpectedly ({type(err).__name__}: {err}). The other maps are unaffected.")
            return None
        bar.clear()
    fkey = ("fig", *key, look.alpha, look.cmap, stopped)
    fig = services.memo(fkey, lambda: figures.heatmap(image, e.map, e.signed, alpha=look.alpha, cmap=look.cmap,
                                                      title=anytime_figures.title(e, stopped)))
    if look.uncertainty:
        fig = services.memo((*fkey, "uncertainty"), lambda: anytime_figures.with_uncertainty(fig, e, image))
    slot.plotly_chart(present.enlarge(fig, image.shape, look.ncols) if look.presenting else fig, width="stretch",
                      key=f"map:{spec.id}", config={"displayModeBar": False})
    st.caption(caption(e, look.uncertainty), help=spec.reference)
    return e
