"""Downloads that leave the app: a self-contained HTML report (``xai_core.report``) and the raw maps as ``.npz``.

:func:`report_download` is the helper any page calls with a :class:`xai_core.report.ReportData` (the Evaluate
page: ``charts=report.curve_charts(result.curves)``, ``tables=[("Scores", result.rows())]``)."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import plotly.offline
import streamlit as st

import xai_core as xc
from xai_core import report

from . import services


@lru_cache(maxsize=1)
def plotly_js() -> str:
    """plotly.js from the installed plotly package (inlined in reports: they work offline)."""
    return plotly.offline.get_plotlyjs()


def report_download(data: report.ReportData, key: str, file_name: str, memo_key: tuple | None = None) -> None:
    """A download button for ``data`` as one HTML file (built once per ``memo_key`` when given)."""
    def build() -> bytes:
        return report.build_html(data, plotly_js()).encode("utf-8")

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
                        ("explain", ctx.model_key, digest, ctx.options.result_key, keys, alpha, cmap))
    meta = {"model": ctx.model_key, "image": ctx.image_name, "digest": digest,
            "maps": {e.title: {"method": e.method, "target": e.target, "params": e.params,
                               "seed": e.request.seed if e.request else 0} for e in explanations}}
    npz = services.memo(("npz", ctx.model_key, digest, ctx.options.result_key, keys),
                        lambda: report.maps_npz({e.title: np.asarray(e.map) for e in explanations}, meta))
    b.download_button("⬇️ Raw maps (.npz)", npz, file_name=f"xai-maps-{digest[:8]}.npz",
                      mime="application/octet-stream", key="download_npz",
                      help="float32 maps at the image's size, one array per explainer, and their settings in 'meta'.")
