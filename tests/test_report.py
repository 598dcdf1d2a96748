"""The HTML report is one self-contained file (nothing fetched, text escaped) and the .npz keeps the raw maps."""

from __future__ import annotations

import io
import json
import re
from types import SimpleNamespace

import numpy as np
from PIL import Image

import xai_core as xc
from xai_core import report

FAKE_JS = "window.Plotly={newPlot:function(){}};"


def _data(tiny) -> report.ReportData:
    image = (np.random.default_rng(1).random((32, 40, 3)) * 255).astype(np.uint8)
    es = [xc.Workbench(tiny).explain(image, xc.ExplainRequest.make(m, 2, seed=5)) for m in ("gradcam", "gradient")]
    return report.explanation_report(tiny, image, "<b>cat</b>.png", es, settings={"class": "two"})


def test_report_embeds_every_picture_and_loads_nothing(tiny):
    data = _data(tiny)
    data.charts = [report.Chart("Deletion", "fraction", "p", [report.Series("evil </script><script>alert(1)", [0, 1], [1, 0])])]
    html = report.build_html(data, FAKE_JS)
    assert html.count('src="data:image/png;base64,') == len(data.pictures) == 3
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)  # no external resource
    assert FAKE_JS in html and 'Plotly.newPlot("chart0"' in html
    assert "<script>alert(1)" not in html and "&lt;b&gt;cat&lt;/b&gt;.png" in html
    for needle in ("Settings", "Seeds", "Model", "Versions", "torch", tiny.fingerprint(), "Gradient (saliency)", data.created):
        assert needle in html
    assert '"seed": 5' not in html and ">5<" in html  # each explainer's seed is listed


def test_report_without_charts_does_not_inline_plotly(tiny):
    assert FAKE_JS not in report.build_html(_data(tiny), FAKE_JS)


def test_curve_charts_group_by_metric():
    c = SimpleNamespace(xs=np.array([0, 0.5, 1]), probs=np.array([0.9, 0.4, 0.1]), value=0.45, x_label="fraction")
    charts = report.curve_charts({("A", "deletion"): c, ("B", "deletion"): c, ("A", "insertion"): c})
    assert [ch.title for ch in charts] == ["deletion", "insertion"]
    assert [s.name for s in charts[0].series] == ["A (0.45)", "B (0.45)"] and charts[0].series[0].y == [0.9, 0.4, 0.1]


def test_npz_round_trip_keeps_float32_maps_and_meta():
    maps = {"Grad-CAM": np.arange(6, dtype=np.float64).reshape(2, 3), "meta": np.ones((2, 3)), "??": np.zeros((1, 1))}
    z = np.load(io.BytesIO(report.maps_npz(maps, {"seed": 3})))
    assert sorted(z.files) == ["Grad_CAM", "map_2", "meta", "meta_1"]
    assert z["Grad_CAM"].dtype == np.float32 and np.array_equal(z["Grad_CAM"], maps["Grad-CAM"])
    assert json.loads(str(z["meta"])) == {"seed": 3}


def test_versions_name_the_libraries():
    v = report.versions()
    assert {"python", "torch", "numpy"} <= set(v)


def test_evaluation_report_records_the_box_or_mask_it_scored_against():
    """The Evaluate report states the box in image pixels (x1, y1 exclusive) and its share, or the mask's share and
    bounding box, with a picture of the region; with no region it says the localisation scores were not computed."""
    from xai_core import metrics

    image = (np.random.default_rng(2).random((30, 40, 3)) * 255).astype(np.uint8)
    base = report.ReportData("Evaluation", {"id": "tiny"}, [])
    settings, pictures = report.region_record(image, metrics.box_region((30, 40), (30, 6, 10, 21)), "box")  # dragged
    html = report.build_html(report.ReportData(base.title, base.model, pictures, settings=settings))
    assert "box (x0, y0, x1, y1), image pixels" in html and "(10, 6, 30, 21)" in html  # 20 × 15 pixels
    assert "25.0% of the 40×30 image (300 pixels)" in html and len(pictures) == 1
    mask = np.zeros((30, 40), bool)
    mask[2:5, 3:9] = True
    mask[10, 20] = True
    settings, pictures = report.region_record(image, mask, "mask")
    assert settings["object region"] == "uploaded mask" and settings["mask bounding box (x0, y0, x1, y1), image pixels"] \
        == "(3, 2, 21, 11)" and settings["mask share of the image"].startswith(f"{19 / 1200:.1%} ")
    assert "dimmed outside" in pictures[0].caption
    settings, pictures = report.region_record(image, None, "box")
    assert "not scored" in settings["object region"] and not pictures


def test_concept_report_carries_names_escaped_shares_crops_and_correction_tables(tiny):
    """The Concepts page's report: one strip of crops per concept titled by its (hostile) name, the names and shares
    in a table, the P-ClArC/A-ClArC and TCAV tables given, the class, layer and importance method; offline, escaped."""
    rng = np.random.default_rng(3)
    crops = [[(rng.random((72, 72, 3)) * 255).astype(np.uint8) for _ in range(k)] for k in (6, 2)]
    crops[1].append(np.zeros((40, 30, 3), np.uint8))  # another size: padded on white, never an error
    entries = [report.ConceptEntry("the corner tag", 0.61, 2.5, crops[0]),
               report.ConceptEntry("<script>alert(1)</script>\u202e", -0.39, -1.6, crops[1]),
               report.ConceptEntry("no crops", 0.0, 0.0, [])]
    clarc = [{"number": "accuracy on horses without the tag", "before": "0%", "after P-ClArC": "81%", "change": "+81 pts"}]
    tcav = [{"class": "horse", "layer": "features.9", "TCAV score": 0.9, "p-value": 0.003, "significant": True}]
    data = report.concept_report(tiny, "<b>horse</b>", "features.9", "gradient × input on the concept coefficients",
                                 entries, tables=[("P-ClArC: before and after removing the corner tag", clarc),
                                                  ("TCAV", tcav)], settings={"images": "60 images"})
    assert [p.title for p in data.pictures] == ["the corner tag", entries[1].name]  # one per concept with crops
    im = Image.open(io.BytesIO(data.pictures[0].png))
    assert im.size == (6 * (72 + 2), 72)  # six crops side by side, 2 px apart
    assert Image.open(io.BytesIO(data.pictures[1].png)).size == (2 * 74 + 32, 72)
    html = report.build_html(data, FAKE_JS)
    assert html.count('src="data:image/png;base64,') == 2 and not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)
    assert "<script>alert(1)" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&lt;b&gt;horse&lt;/b&gt;" in html and "<b>horse</b>" not in html
    for needle in ("Concepts", "+61.0%", "-39.0%", "importance share +61%", "features.9", "gradient × input",
                   "P-ClArC: before and after removing the corner tag", "+81 pts", "TCAV", "0.003", "60 images",
                   tiny.fingerprint()):
        assert needle in html, needle
    assert FAKE_JS not in html  # no charts: plotly.js is not inlined
