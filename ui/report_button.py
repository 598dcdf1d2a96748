"""Downloads that leave the app: a self-contained HTML report (``xai_core.report``) and the raw maps as ``.npz``.

:func:`report_download` is the helper any page calls with a :class:`xai_core.report.ReportData` (the Evaluate
page: ``charts=report.curve_charts(result.curves)``, ``tables=[("Scores", result.rows())]``)."""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache

import numpy as np
import plotly.offline
import streamlit as st

import xai_core as xc
from xai_core import render, report

from . import services


@lru_cache(maxsize=1)
def plotly_js() -> str:
    """plotly.js from the installed plotly package (inlined in reports: they work offline)."""
    return plotly.offline.get_plotlyjs()


def report_download(data: report.ReportData | Callable[[], report.ReportData], key: str, file_name: str,
                    memo_key: tuple | None = None) -> None:
    """A download button for ``data`` (or what ``data()`` returns) as one HTML file, built once per ``memo_key``."""
    def build() -> bytes:
        return report.build_html(data() if callable(data) else data, plotly_js()).encode("utf-8")

    html = services.memo(("report", *memo_key), build) if memo_key else build()
    st.download_button("⬇️ Report (HTML, works offline)", html, file_name=file_name, mime="text/html", key=key,
                       help="One file: pictures, curves, settings, model provenance, versions, date and seeds.")


def explanation_downloads(ctx, image: np.ndarray, digest: str, results: list[tuple[str, xc.Explanation]],  # noqa: ANN001
                          alpha: float, cmap: str, settings: dict) -> None:
    """The Explain page's report and raw-map downloads, side by side."""
    explanations = [e for _, e in results]
    keys = tuple(e.request.key for e in explanations if e.request is not None)
    data = report.explanation_report(ctx.model, image, ctx.image_name, explanations, alpha=alpha, cmap=cmap,
                                     settings=settings)
    a, b = st.columns(2)
    with a:
        report_download(data, "download_report", f"xai-report-{digest[:8]}.html",
                        ("explain", ctx.model_key, digest, ctx.options.result_key, keys, alpha, cmap,
                         tuple(e.refinement.stopped if e.refinement else "" for e in explanations)))
    meta = {"model": ctx.model_key, "image": ctx.image_name, "digest": digest,
            "maps": {e.title: {"method": e.method, "target": e.target, "params": e.params,
                               "seed": e.request.seed if e.request else 0,
                               **({"refinement": e.refinement.stopped or e.refinement.text,
                                   "uncertainty": e.refinement.uncertainty} if e.refinement else {})}
                     for e in explanations}}
    stops = tuple(e.refinement.stopped if e.refinement else "" for e in explanations)
    npz = services.memo(("npz", ctx.model_key, digest, ctx.options.result_key, keys, stops),
                        lambda: report.maps_npz({e.title: np.asarray(e.map) for e in explanations}, meta,
                                                {e.title: e.uncertainty for e in explanations}))
    b.download_button("⬇️ Raw maps (.npz)", npz, file_name=f"xai-maps-{digest[:8]}.npz",
                      mime="application/octet-stream", key="download_npz",
                      help="float32 maps at the image's size, one array per explainer (and '<name>__uncertainty' for "
                           "maps that carry one), and their settings in 'meta'.")


def evaluation_download(ctx, image: np.ndarray, maps: dict[str, np.ndarray], result, memo_key: tuple,  # noqa: ANN001
                        region: np.ndarray | None = None, region_kind: str = "box") -> None:
    """The Evaluate page's report: the image, each map over it, the curves, the ranking table and the object region
    (box or mask) the localisation scores were computed against."""
    def data() -> report.ReportData:
        scored, region_pictures = report.region_record(image, region, region_kind)
        pictures = [report.Picture(ctx.image_name, render.to_png(image), "the image evaluated"), *region_pictures]
        pictures += [report.Picture(name, render.to_png(render.overlay(image, m, signed=False))) for name, m in maps.items()]
        return report.ReportData(f"Evaluation of the explanations of “{result.class_name}”", report.provenance(ctx.model),
                                 pictures, charts=report.curve_charts(result.curves), tables=[("Scores", result.rows())],
                                 settings={"image": ctx.image_name, "class": result.class_name, "maps": ", ".join(maps),
                                           **scored})

    report_download(data, "eval_report", f"xai-evaluation-{ctx.digest[:8]}.html", ("evaluate", *memo_key))


def sanity_download(ctx, grid_png: bytes, result, memo_key: tuple) -> None:  # noqa: ANN001
    """The Sanity page's report: the grid of maps as the weights are destroyed, and the verdict per map."""
    rows = [{"map": name, "verdict": result.verdict(name)} for name in result.maps]
    data = report.ReportData(f"Model randomisation for “{result.class_name}”", report.provenance(ctx.model),
                             [report.Picture("Maps per stage", grid_png, " → ".join(result.stages))],
                             tables=[("Verdicts", rows)], seeds={f"seed {i}": s for i, s in enumerate(result.seeds)},
                             settings={"image": ctx.image_name, "stages": len(result.stages) - 1})
    report_download(data, "sanity_report", f"xai-sanity-{ctx.digest[:8]}.html", ("sanity", *memo_key))
