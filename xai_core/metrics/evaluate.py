"""Run the chosen metrics for several maps of one image: all perturbation curves in one batched pass, all probes in
another, the re-runs of each map's explainer, then the model-free metrics (localisation, map)."""

from __future__ import annotations

import csv
import io
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import cv2
import numpy as np
import torch

from ..errors import Cancelled, ExplainerError
from ..images import load_sample, sample_names
from ..models.spec import ModelSpec
from ..request import ExplainRequest
from ..types import Progress
from ..workbench import Workbench, as_workbench
from .regions import box_region, box_share, mask_region
from .registry import (
    CurveMetricSpec,
    LocalisationMetricSpec,
    MapMetricSpec,
    MetricSpec,
    ProbeMetricSpec,
    RerunMetricSpec,
    get_metric,
    list_metrics,
)
from .scoring import classified_pool, make_rerun, run_plans, run_probes
from .values import Plan

__all__ = ["Curve", "Report", "box_region", "box_share", "evaluate", "localise", "mask_region", "rows_csv"]


@dataclass
class Curve:
    xs: np.ndarray
    probs: np.ndarray
    value: float
    x_label: str


@dataclass
class Report:
    """Metric values per map (``values[map][metric]``), the curves, and how to show a perturbed input."""

    target: int
    class_name: str
    maps: list[str]
    metrics: list[str]
    values: dict[str, dict[str, float]]
    curves: dict[tuple[str, str], Curve]
    seconds: float
    passes: int
    plans: dict[tuple[str, str], Plan] = field(default_factory=dict, repr=False)
    model: ModelSpec | None = field(default=None, repr=False)
    notes: list[str] = field(default_factory=list)  # why a value is missing (NaN), one sentence each

    def image_at(self, map_name: str, metric_id: str, step: int) -> np.ndarray:
        """The model input of curve ``metric_id`` of ``map_name`` at ``step``, as an RGB uint8 image."""
        if self.model is None or (map_name, metric_id) not in self.plans:
            raise ExplainerError(f"This report keeps no perturbed inputs of {metric_id!r} for {map_name!r}.")
        p = self.plans[(map_name, metric_id)]
        k = min(max(int(step), 0), len(p.counts) - 1)
        x = torch.where((p.rank < p.counts[k])[None, None], p.fill, p.start)
        x01 = self.model.denormalise(x)[0].clamp(0, 1)
        return (x01.permute(1, 2, 0).float().cpu().numpy() * 255 + 0.5).astype(np.uint8)

    def rows(self) -> list[dict[str, object]]:
        """One row per map with headers that say which direction is better, e.g. ``Deletion AUC ↓``."""
        return [{"map": name, **{get_metric(m).column: self.values[name].get(m, math.nan) for m in self.metrics}}
                for name in self.maps]

    def csv(self) -> str:
        return rows_csv(self.rows())

    def with_region(self, maps: dict[str, np.ndarray], region: np.ndarray, metric_ids: list[str],
                    params: dict[str, dict] | None = None) -> Report:
        """A copy with the localisation metrics against ``region`` added (cheap: no model calls), so the
        curves need not be recomputed when only the box changes."""
        scores_ = localise({n: maps[n] for n in self.maps}, region, metric_ids, params)
        values = {n: {**self.values[n], **scores_[n]} for n in self.maps}
        return replace(self, values=values, metrics=[*self.metrics, *[m for m in metric_ids if m not in self.metrics]])


def localise(maps: dict[str, np.ndarray], region: np.ndarray, metric_ids: list[str],
             params: dict[str, dict] | None = None) -> dict[str, dict[str, float]]:
    """Localisation metrics of every map against a boolean ``region`` at the maps' resolution."""
    params = params or {}
    specs = [s for s in map(get_metric, metric_ids) if isinstance(s, LocalisationMetricSpec)]
    out: dict[str, dict[str, float]] = {}
    for name, m in maps.items():
        if region.shape != m.shape:
            raise ExplainerError(f"The region is {region.shape[1]}×{region.shape[0]} but the map {name!r} is "
                                 f"{m.shape[1]}×{m.shape[0]}.")
        out[name] = {s.id: s.score(m, region, params.get(s.id)) for s in specs}
    return out


def rows_csv(rows: list[dict[str, object]]) -> str:
    buf = io.StringIO()
    if rows:
        w = csv.DictWriter(buf, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return buf.getvalue()


def evaluate(model: ModelSpec | Workbench, image: np.ndarray, maps: dict[str, np.ndarray], target: int | None = None, *,
             metrics: list[str] | None = None, params: dict[str, dict] | None = None, region: np.ndarray | None = None,
             seed: int = 0, progress: Progress | None = None, requests: dict[str, ExplainRequest] | None = None,
             pool: Sequence[np.ndarray] | None = None) -> Report:
    """Score every map in ``maps`` (name → float map at the image's resolution) on ``metrics`` (default: the metrics
    whose spec says ``default``).

    Curve metrics run as one batched call of the engine over all maps, probe metrics as another (inference mode, OOM
    back-off, progress, stoppable); rerun metrics explain new inputs with ``requests[name]``, the request that made
    map ``name`` (a map without one, e.g. a reference map, gets NaN and a note), drawing other images from ``pool``
    (RGB uint8; default: the bundled samples); localisation metrics need ``region`` (a boolean mask, e.g. from
    :func:`box_region`) and are skipped without one; map metrics need nothing. Everything runs inside the Workbench's
    session (its lock and run options).
    """
    ids = metrics or [m.id for m in list_metrics() if m.default]
    specs = [get_metric(i) for i in ids]
    params = params or {}
    for s in specs:  # a mistyped parameter is an error before any model call, not after the curves
        s.resolve(params.get(s.id))
    h, w = image.shape[:2]
    for name, m in maps.items():
        if m.shape != (h, w):
            raise ExplainerError(f"The map {name!r} is {m.shape[1]}×{m.shape[0]} but the image is {w}×{h}.")
    t0 = time.perf_counter()
    wb = as_workbench(model)
    of = {k: [s for s in specs if s.kind == k] for k in ("curve", "probe", "rerun", "map")}
    steps = [k for k in ("curve", "probe", "rerun") if of[k]]
    values: dict[str, dict[str, float]] = {name: {} for name in maps}
    curves: dict[tuple[str, str], Curve] = {}
    notes: list[str] = []
    with wb.session() as model:
        x, tgt, _ = wb.prepare(image, target)
        ih, iw = model.input_size
        small = {name: torch.from_numpy(cv2.resize(np.nan_to_num(m).astype(np.float32), (iw, ih),
                                                   interpolation=cv2.INTER_AREA)).to(x.device) for name, m in maps.items()}
        plans = {(n, c.id): c.plan(model, x, small[n], seed=seed, params=params.get(c.id))
                 for n in maps for c in of["curve"] if isinstance(c, CurveMetricSpec)}
        for (name, mid), p, ys in zip(plans, plans.values(), run_plans(model, list(plans.values()), tgt,
                                                                        _part(progress, steps, "curve")), strict=True):
            curves[(name, mid)] = Curve(p.xs, ys, p.summarise(p.xs, ys), p.x_label)
            values[name][mid] = curves[(name, mid)].value
        probes = {(n, p.id): p.probe(model, x, small[n], seed=seed, params=params.get(p.id))
                  for n in maps for p in of["probe"] if isinstance(p, ProbeMetricSpec)}
        outs, probed = run_probes(model, x, [(n, p) for (n, _), p in probes.items()], tgt, _part(progress, steps, "probe"))
        for ((name, mid), pr), o in zip(probes.items(), outs, strict=True):
            values[name][mid] = float(pr.summarise(o))
            if pr.xs is not None:
                curves[(name, mid)] = Curve(pr.xs, o.probability, values[name][mid], pr.x_label)
            notes += _notes(name, mid, pr.notes)
        _reruns(wb, x, tgt, small, of["rerun"], params, seed, requests or {}, pool, values, notes,
                _part(progress, steps, "rerun"))
    for s in of["map"]:
        if isinstance(s, MapMetricSpec):
            for name in maps:
                values[name][s.id] = s.score(small[name].cpu().numpy(), params.get(s.id))
    ran = [s.id for s in specs if s.kind != "localisation"]
    report = Report(tgt, model.label(tgt), list(maps), ran, values, curves, time.perf_counter() - t0,
                    sum(len(p.counts) for p in plans.values()) + probed, plans, model,
                    notes)
    loc = [s.id for s in specs if isinstance(s, LocalisationMetricSpec)]
    return report.with_region(maps, region, loc, params) if region is not None and loc else report


def _reruns(wb: Workbench, x: torch.Tensor, tgt: int, small: dict[str, torch.Tensor], specs: list[MetricSpec],
            params: dict[str, dict], seed: int, requests: dict[str, ExplainRequest], pool: Sequence[np.ndarray] | None,
            values: dict[str, dict[str, float]], notes: list[str], progress: Progress | None) -> None:
    """The rerun metrics of every map that has the request that made it (the others get NaN and a note)."""
    todo = [(n, s) for n in small for s in specs if isinstance(s, RerunMetricSpec)]
    model = wb.model
    missing: dict[str, list[str]] = {}

    others = (classified_pool(wb, lambda: [load_sample(n) for n in sample_names()], keep="bundled samples")
              if pool is None else classified_pool(wb, lambda: list(pool)))

    for i, (name, s) in enumerate(todo):
        if progress is not None:
            progress(i / len(todo), f"{s.short or s.title}: re-running the explainer of {name}")
        if name not in requests:
            values[name][s.id] = math.nan
            missing.setdefault(s.short or s.title, []).append(name)
            continue
        rerun = make_rerun(wb, x, tgt, requests[name], others)
        try:
            values[name][s.id] = s.score(model, x, small[name], rerun, seed=seed, params=params.get(s.id))
        except Cancelled:
            raise
        except ExplainerError as e:
            values[name][s.id] = math.nan
            notes.append(f"{name}: {s.short or s.title} could not re-run the explainer ({e})")
        notes += _notes(name, s.id, rerun.notes)
    notes += [f"{title} re-runs the explainer that made a map: not possible for {', '.join(names)} (no value)."
              for title, names in missing.items()]


def _notes(name: str, metric_id: str, notes: list[str]) -> list[str]:
    spec = get_metric(metric_id)
    return [f"{name}: {spec.short or spec.title}: {n}" for n in notes]


def _part(progress: Progress | None, steps: list[str], step: str) -> Progress | None:
    """``progress`` for one of the evaluation's steps, mapped to its share of the whole."""
    if progress is None or step not in steps:
        return progress
    i, n = steps.index(step), len(steps)
    return lambda f, text: progress((i + f) / n, text)
