"""Evaluations of explanations: faithfulness curves (deletion, insertion, AOPC), faithfulness probes (ROAD,
faithfulness correlation, infidelity, Average Drop/Increase, PIC), robustness and focus by re-running the explainer
(sensitivity-max, Focus), localisation (pointing game, IoU, relevance mass) and complexity of the map (sparseness,
complexity), with reference maps that give the numbers a meaning.

Public API::

    from xai_core import metrics
    report = metrics.evaluate(model, image, {"Grad-CAM": e.map, **metrics.reference_maps(image)},
                              region=metrics.box_region(image.shape[:2], (x0, y0, x1, y1)))
    report.rows()   # one row per map, headers say whether higher or lower is better

Adding a metric is one file in this folder plus the :func:`metric` decorator: every module of this package is
discovered (``pkgutil``) and imported here, which registers it. The decorator checks the function's signature
against its ``kind`` (a :class:`CurveMetric`, :class:`ProbeMetric`, :class:`RerunMetric`, :class:`LocalisationMetric`
or :class:`MapMetric`) and its declared parameters.
"""

import importlib
import pkgutil

DISCOVERED = tuple(importlib.import_module(f"{__name__}.{m.name}") for m in pkgutil.iter_modules(__path__))

# ruff: noqa: E402 - the re-exports below come after discovery on purpose
from .deletion import auc
from .evaluate import Curve, Report, box_region, box_share, evaluate, evaluate_stream, mask_region, rows_csv
from .reference_maps import CENTRE, EDGES, RANDOM, reference_maps
from .registry import (
    METRICS,
    CurveMetric,
    CurveMetricSpec,
    LocalisationMetric,
    LocalisationMetricSpec,
    MapMetric,
    MapMetricSpec,
    MetricSpec,
    Outputs,
    Plan,
    Probe,
    ProbeMetric,
    ProbeMetricSpec,
    Rerun,
    RerunMetric,
    RerunMetricSpec,
    get_curve_metric,
    get_localisation_metric,
    get_metric,
    list_metrics,
    metric,
    order_of,
)
from .sets import SAMPLE_BOXES, Item, parse_boxes, read_zip, sample_items, summarise
from .stability import REFERENCES, Stability, reference_param, reference_stability

__all__ = ["CENTRE", "EDGES", "METRICS", "RANDOM", "REFERENCES", "Curve", "CurveMetric", "CurveMetricSpec", "Item",
           "LocalisationMetric", "LocalisationMetricSpec", "MapMetric", "MapMetricSpec", "MetricSpec", "Outputs", "Plan",
           "Probe", "ProbeMetric", "ProbeMetricSpec", "Report", "Rerun", "RerunMetric", "RerunMetricSpec",
           "SAMPLE_BOXES", "Stability",
           "auc", "box_region", "box_share", "evaluate", "evaluate_stream", "get_curve_metric", "get_localisation_metric",
           "get_metric", "list_metrics", "mask_region", "metric", "order_of", "parse_boxes", "read_zip",
           "reference_maps", "reference_param", "reference_stability", "rows_csv", "sample_items", "summarise"]
