"""A self-contained HTML report of a result (one file, works offline) and the raw maps as ``.npz``.

Everything is inside the file: pictures as base64 PNG, curves as Plotly figures drawn by the plotly.js source the
caller passes in (this library does not depend on plotly: ``ui/report_button.py`` reads it from the plotly
package), the settings, the model's provenance, library versions, the date and the seeds. Text is escaped; the
page loads nothing from the network.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import io
import json
import platform
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

import numpy as np

from .models.spec import ModelSpec
from .render import overlay, to_png
from .request import Explanation
from .untrusted.paths import scrub

PACKAGES = ("torch", "torchvision", "numpy", "opencv-python-headless", "scikit-image", "streamlit", "plotly")


@dataclass
class Picture:
    title: str
    png: bytes
    caption: str = ""


@dataclass
class Series:
    name: str
    x: list[float]
    y: list[float]


@dataclass
class Chart:
    title: str
    x_label: str
    y_label: str
    series: list[Series]


@dataclass
class ReportData:
    """What a report shows; build one with :func:`explanation_report` or fill it in (Evaluate, Sanity pages)."""

    title: str
    model: dict[str, str]
    pictures: list[Picture]
    charts: list[Chart] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)
    seeds: dict[str, int] = field(default_factory=dict)
    tables: list[tuple[str, list[dict[str, Any]]]] = field(default_factory=list)
    created: str = field(default_factory=lambda: dt.datetime.now(dt.UTC).isoformat(timespec="seconds"))


def versions() -> dict[str, str]:
    """Python and the installed versions of the libraries that make the numbers and the page."""
    out = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def provenance(model: ModelSpec) -> dict[str, str]:
    """Where the model comes from and which weights exactly (content fingerprint); a server path in it (the hub
    cache, the wheel's folder) is reduced to its file name: reports are handed to visitors."""
    return {"id": model.id, "title": scrub(model.title), "provenance": scrub(model.provenance or "not recorded"),
            "weights fingerprint": model.fingerprint(), "classes": str(model.num_classes),
            "input size": f"{model.input_size[1]}×{model.input_size[0]}"}


def explanation_report(model: ModelSpec, image: np.ndarray, image_name: str, explanations: list[Explanation], *,
                       alpha: float = 0.55, cmap: str = "inferno", settings: dict[str, Any] | None = None) -> ReportData:
    """A report of the Explain page: the image, each map's overlay and its settings and seed; for a refining
    explainer's map also its uncertainty (a picture, what it is, its range) and what the map is made of."""
    pictures = [Picture(f"Input: {image_name}", to_png(image))]
    seeds, params, refined = {}, {}, {}
    for e in explanations:
        pictures.append(Picture(e.title, to_png(overlay(image, e.map, e.signed, alpha=alpha, cmap=cmap)),
                                f"class {e.class_name} (#{e.target}), p = {e.probability:.1%}, {e.seconds:.2f} s, "
                                f"{'signed' if e.signed else 'unsigned'}, raw range "
                                f"[{float(e.map.min()):.3g}, {float(e.map.max()):.3g}]"))
        seeds[e.title] = e.request.seed if e.request is not None else 0
        params[e.title] = e.params
        if e.refinement is not None:
            refined[e.title] = e.refinement.stopped or e.refinement.text
        if e.uncertainty is not None and e.refinement is not None:
            pictures.append(Picture(f"{e.title}: uncertainty", to_png(overlay(image, e.uncertainty, False, alpha=alpha)),
                                    f"{e.refinement.uncertainty}; per pixel, in the map's units: mean "
                                    f"{float(e.uncertainty.mean()):.3g}, max {float(e.uncertainty.max()):.3g}"))
    extra = {"refinement": refined} if refined else {}
    return ReportData(f"Explanations of {image_name}", provenance(model), pictures,
                      settings={"image": image_name, "overlay opacity": alpha, "colour map": cmap,
                                "parameters": params, **extra, **(settings or {})}, seeds=seeds)


@dataclass
class ConceptEntry:
    """One concept in a report: its name (a visitor's text: escaped where shown), importance share and importance,
    and its reference crops (RGB uint8)."""

    name: str
    share: float
    importance: float
    crops: list[np.ndarray]


def _strip(crops: list[np.ndarray], gap: int = 2) -> np.ndarray:
    """Crops side by side on white, top-aligned, ``gap`` pixels apart."""
    h = max(c.shape[0] for c in crops)
    parts = [np.pad(np.asarray(c, np.uint8), ((0, h - c.shape[0]), (0, gap), (0, 0)), constant_values=255) for c in crops]
    return np.concatenate(parts, axis=1)


def concept_report(model: ModelSpec, class_name: str, layer: str, method: str, entries: list[ConceptEntry], *,
                   tables: list[tuple[str, list[dict[str, Any]]]] | None = None,
                   settings: dict[str, Any] | None = None) -> ReportData:
    """A report of a class's concepts at a layer (the Concepts page): one picture per concept (its crops, titled by
    its name), the table of names and importance shares, then ``tables`` (P-ClArC/A-ClArC before and after, TCAV)."""
    pictures = [Picture(e.name, to_png(_strip(e.crops)), f"importance share {e.share:+.0%}; where it is strongest "
                        f"({len(e.crops)} crops)") for e in entries if e.crops]
    rows = [{"concept": e.name, "importance share": f"{e.share:+.1%}", "importance": e.importance} for e in entries]
    return ReportData(f"Concepts of “{class_name}” at {layer}", provenance(model), pictures,
                      tables=[("Concepts", rows), *(tables or [])],
                      settings={"class": class_name, "layer": layer, "importance": method, **(settings or {})})


def study_report(name: str, design: dict[str, Any], tables: list[tuple[str, list[dict[str, Any]]]], *,
                 model: dict[str, str] | None = None, seed: int = 0) -> ReportData:
    """A human study's report (the Study results page, ``xai_core.study``): the design as its settings (task,
    conditions, layout, items, attention checks and the exclusion rule, the tests used), then ``tables`` (per
    condition, comparisons, per item, balance). Participants appear by join order only; free-text answers are left
    out. ``name`` and every cell are a designer's or participant's text: escaped like the rest of the report."""
    return ReportData(f"Human study: {name}", model or {"model": str(design.get("model", "not recorded"))}, [],
                      tables=tables, settings=design, seeds={"assignment, items and bootstrap": seed})


def curve_charts(curves: dict[tuple[str, str], Any], y_label: str = "class probability") -> list[Chart]:
    """Charts from a metrics report's ``curves`` ((map, metric) -> curve with ``xs``, ``probs``, ``value``,
    ``x_label``): one chart per metric, one line per map, the metric's value in the legend. For the Evaluate page:
    ``ReportData(..., charts=curve_charts(report.curves), tables=[("Scores", report.rows())])``."""
    charts: dict[str, Chart] = {}
    for (name, metric), c in curves.items():
        chart = charts.setdefault(metric, Chart(metric, c.x_label, y_label, []))
        chart.series.append(Series(f"{name} ({c.value:.3g})", list(np.asarray(c.xs, float)), list(np.asarray(c.probs, float))))
    return list(charts.values())


def region_record(image: np.ndarray, region: np.ndarray | None, kind: str) -> tuple[dict[str, str], list[Picture]]:
    """What the localisation metrics scored against, for a report: the settings lines (a box as x0, y0, x1, y1 in
    image pixels, x1/y1 exclusive, and its share of the image; a mask's share and bounding box) and a picture of the
    region over the image. ``kind`` is 'box' or 'mask'; no region: says the localisation metrics were not scored."""
    if region is None or not region.any():
        return {"object region": "none (pointing game, IoU and relevance mass not scored)"}, []
    h, w = region.shape
    rows, cols = np.flatnonzero(region.any(1)), np.flatnonzero(region.any(0))
    x0, y0, x1, y1 = int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1
    share = f"{region.mean():.1%} of the {w}×{h} image ({int(region.sum())} pixels)"
    if kind == "box":
        out = {"object region": "box", "box (x0, y0, x1, y1), image pixels": f"({x0}, {y0}, {x1}, {y1})",
               "box share of the image": share}
    else:
        out = {"object region": "uploaded mask", "mask share of the image": share,
               "mask bounding box (x0, y0, x1, y1), image pixels": f"({x0}, {y0}, {x1}, {y1})"}
    shown = (np.asarray(image, np.float32) * np.where(region[..., None], 1.0, 0.35)).astype(np.uint8)
    return out, [Picture(f"Object region ({out['object region']})", to_png(shown), "scored against; dimmed outside")]


def _uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _script_json(value: Any) -> str:
    """JSON safe inside a <script> element (every '<' written as its JSON escape)."""
    return json.dumps(value, allow_nan=False).replace("<", "\\u003c")


def _chart(i: int, c: Chart) -> str:
    data = [{"type": "scatter", "mode": "lines", "name": s.name, "x": [float(v) for v in s.x],
             "y": [float(v) for v in s.y]} for s in c.series]
    layout = {"title": {"text": c.title}, "xaxis": {"title": {"text": c.x_label}},
              "yaxis": {"title": {"text": c.y_label}}, "height": 360, "margin": {"l": 60, "r": 20, "t": 50, "b": 50}}
    return (f'<div class="chart" id="chart{i}"></div><script>Plotly.newPlot("chart{i}", {_script_json(data)}, '
            f'{_script_json(layout)}, {{"displaylogo": false, "responsive": true}});</script>')


def _dl(d: dict[str, Any]) -> str:
    e = html.escape
    return "<dl>" + "".join(f"<dt>{e(str(k))}</dt><dd>{e(json.dumps(v, default=str) if isinstance(v, (dict, list)) else str(v))}"
                            "</dd>" for k, v in d.items()) + "</dl>"


def _table(title: str, rows: list[dict[str, Any]]) -> str:
    e = html.escape
    if not rows:
        return ""
    cols = list(rows[0])
    head = "".join(f"<th>{e(str(c))}</th>" for c in cols)
    body = "".join("<tr>" + "".join(f"<td>{e(_cell(r.get(c)))}</td>" for c in cols) + "</tr>" for r in rows)
    return f"<h2>{e(title)}</h2><table><tr>{head}</tr>{body}</table>"


def _cell(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


CSS = ("body{font-family:system-ui,sans-serif;margin:24px;color:#222}figure{display:inline-block;margin:8px;"
       "vertical-align:top;max-width:340px}figure img{max-width:340px;border:1px solid #ddd}figcaption{font-size:13px}"
       "dl{display:grid;grid-template-columns:max-content auto;gap:2px 16px;font-size:14px}dt{font-weight:600}"
       "dd{margin:0;word-break:break-all}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:3px 8px}"
       ".chart{max-width:800px}")


def build_html(data: ReportData, plotly_js: str = "") -> str:
    """The report as one HTML document. ``plotly_js`` (the library's source) is inlined when there are charts."""
    e = html.escape
    figs = "".join(f'<figure><img alt="{e(p.title)}" src="{_uri(p.png)}"><figcaption><b>{e(p.title)}</b><br>'
                   f"{e(p.caption)}</figcaption></figure>" for p in data.pictures)
    charts = "".join(_chart(i, c) for i, c in enumerate(data.charts))
    safe_js = plotly_js.replace("</script", "<\\/script")
    lib = f"<script>{safe_js}</script>" if data.charts else ""
    tables = "".join(_table(t, rows) for t, rows in data.tables)
    return ("<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
            "<meta http-equiv='Content-Security-Policy' content=\"default-src 'none'; img-src data:; "
            "style-src 'unsafe-inline'; script-src 'unsafe-inline' 'unsafe-eval'\">"
            f"<title>{e(data.title)}</title><style>{CSS}</style>{lib}</head><body>"
            f"<h1>{e(data.title)}</h1><p>Made with XAI Explorer on {e(data.created)}.</p>"
            f"<section>{figs}</section>" + (f"<h2>Curves</h2>{charts}" if charts else "") + tables +
            f"<h2>Settings</h2>{_dl(data.settings)}<h2>Seeds</h2>{_dl(data.seeds or {'(none)': '-'})}"
            f"<h2>Model</h2>{_dl(data.model)}<h2>Versions</h2>{_dl(versions())}</body></html>")


def maps_npz(maps: dict[str, np.ndarray], meta: dict[str, Any] | None = None,
             uncertainty: dict[str, np.ndarray] | None = None) -> bytes:
    """Raw maps (float32, the image's size) in one compressed ``.npz``; ``meta`` goes in as JSON text (``meta``).
    ``uncertainty`` (keyed like ``maps``): a map's per-pixel uncertainty, stored as ``<map's array>__uncertainty``."""
    buf = io.BytesIO()
    arrays: dict[str, np.ndarray] = {}
    for i, (k, v) in enumerate(maps.items()):
        name = _npz_name(k, i)
        name = name if name not in arrays and name not in ("meta", "allow_pickle") else f"{name}_{i}"
        arrays[name] = np.asarray(v, np.float32)
        if uncertainty is not None and uncertainty.get(k) is not None:
            arrays[f"{name}__uncertainty"] = np.asarray(uncertainty[k], np.float32)
    # numpy's stub types **kwds as if a key could be its allow_pickle flag; the names above never are.
    np.savez_compressed(buf, **arrays, meta=np.array(json.dumps(meta or {}, default=str)))  # type: ignore[arg-type]
    return buf.getvalue()


def _npz_name(name: str, i: int) -> str:
    clean = "".join(c if c.isalnum() else "_" for c in name).strip("_")[:60]
    return clean or f"map_{i}"
