"""The Evaluate page's run, streamed: each method is explained (or taken from the store) just before its map is scored,
and the ranking table and the curves of the maps scored so far are redrawn in place as each map is done
(:func:`xai_core.metrics.evaluate_stream`; its last report is :func:`xai_core.metrics.evaluate`'s, so a streamed run
gives the same numbers). The finished report is stored under the page's key: reruns are instant. The last partial
report is kept too, and shown after a Stop.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import streamlit as st

import xai_core as xc
from xai_core import metrics

from . import evaluation as ev
from . import services, widgets
from .live import Throttle


@dataclass(frozen=True)
class Run:
    """What the page evaluates: ``requests`` by explainer id (``titles`` names them), the reference maps, and the
    metrics' settings; ``region``/``local``: the object region and the localisation metrics scored against it."""

    key: tuple
    requests: dict[str, xc.ExplainRequest]
    titles: dict[str, str]
    refs: dict[str, np.ndarray]
    target: int | None
    model_ids: list[str]
    params: dict[str, dict]
    seed: int
    region: np.ndarray | None
    local: list[str]


def _partial_key(key: tuple) -> tuple:
    return ("evaluate-partial", *key)


def evaluate(ctx: Any, image: np.ndarray, run: Run, slot: Any, area: Any) -> tuple[dict[str, np.ndarray], metrics.Report]:
    """The explainers' maps (title → map) and the report with its region metrics: the stored report, else computed
    map by map with progress bars in ``slot`` and the partial ranking and curves drawn in ``area``. An explainer that
    fails shows one error and is left out."""
    found: dict[str, np.ndarray] = {}
    current = [""]

    def arriving() -> Iterator[tuple[str, np.ndarray]]:
        for m, request in run.requests.items():
            title = run.titles[m]
            bar = widgets.LazyProgress(slot, f"Explaining with {title}")
            try:
                found[title] = services.explanation(ctx.model_key, ctx.digest, ctx.workbench, image, request,
                                                    progress=bar).map
            except xc.XaiError as err:
                st.error(f"**{title}**: {err}")
                continue
            finally:
                bar.clear()
            current[0] = title
            yield title, found[title]
        for name, m in run.refs.items():
            current[0] = name
            yield name, m

    hit = services.store().get(("evaluate", *run.key))
    if hit is not None:
        for _ in arriving():  # the maps, from the store
            pass
        return found, _with_region(hit, run, found)
    total = len(run.requests) + len(run.refs)
    bar = widgets.LazyProgress(slot, "Evaluating")
    throttle = Throttle()
    report = None
    stream = metrics.evaluate_stream(ctx.workbench, image, arriving(), run.target, metrics=run.model_ids,
                                     params=run.params, seed=run.seed, count=total,
                                     progress=lambda f, text: bar(f, f"{current[0]}: {text}"),
                                     requests={run.titles[m]: r for m, r in run.requests.items()})
    with closing(stream) as reports:
        for report in reports:
            services.store().put(_partial_key(run.key), (report, total))
            if len(report.maps) < total:
                throttle.draw(lambda n, r=report: show_partial(area, _with_region(r, run, found), set(run.refs), total, n))
    bar.clear()
    assert report is not None  # the stream always yields, if only an empty report
    services.store().put(("evaluate", *run.key), report)
    services.store().put(_partial_key(run.key), None)  # finished: the partial is no longer needed
    return found, _with_region(report, run, found)


def _with_region(report: metrics.Report, run: Run, found: dict[str, np.ndarray]) -> metrics.Report:
    """``report`` with the localisation metrics against the page's region (cheap, never stored: moving the box never
    recomputes the curves)."""
    if run.region is None:
        return report
    return report.with_region({**found, **run.refs}, run.region, run.local, run.params)


def show_stopped(key: tuple, references: set[str]) -> None:
    """After a Stop: the last partial report of ``key``, if any, marked as stopped."""
    kept = services.store().get(_partial_key(key))
    if kept is not None:
        report, total = kept
        show_partial(st.container(), report, references, total, 0, stopped=True)


def show_partial(area: Any, report: metrics.Report, references: set[str], total: int, n: int,
                 stopped: bool = False) -> None:
    """The ranking of the maps scored so far and their curves of the first curve metric, in ``area``; ``n`` makes the
    chart's key unique across redraws within one run."""
    with area.container():
        st.subheader(f"Ranking for “{report.class_name}”")
        state = "stopped after" if stopped else "⏳ scored so far:"
        st.caption(f"{state} {len(report.maps)} of {total} maps ({report.passes} perturbed inputs in "
                   f"{report.seconds:.1f} s) · the table and the curves fill in as each map is scored.")
        if not report.maps:
            return
        value_cols = [metrics.get_metric(m).column for m in report.metrics]
        table = pd.DataFrame(ev.ranking(report, references))[["map", "kind", "mean rank", *value_cols]]
        fmt = {c: st.column_config.NumberColumn(format="%.3f") for c in value_cols}  # a plain table: a Styler is slower to draw
        st.dataframe(table, hide_index=True, width="stretch",
                     column_config={**fmt, "mean rank": st.column_config.NumberColumn(format="%.1f")})
        first = next((m for m in report.metrics if (report.maps[0], m) in report.curves), None)
        if first is not None:  # one figure while streaming (each costs ~10 ms to draw); all of them at the end
            st.plotly_chart(ev.curve_figure(report, first, references), width="stretch", key=f"live_curve:{n}",
                            config={"displayModeBar": False})
