"""Run the chosen metrics for several maps of one image: all perturbation curves in one batched pass."""

from __future__ import annotations

import csv
import io
import math
import time
from dataclasses import dataclass, field, replace

import cv2
import numpy as np
import torch

from ..engine import scores
from ..errors import ExplainerError
from ..models.spec import ModelSpec
from ..types import Box, Progress
from ..workbench import Workbench, as_workbench
from .registry import CurveMetricSpec, LocalisationMetricSpec, Plan, get_metric, list_metrics


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


def box_region(shape: tuple[int, int], box: Box) -> np.ndarray:
    """A boolean mask of ``shape`` (H, W) for the box (x0, y0, x1, y1) in pixels, clipped to the image."""
    h, w = shape
    x0, y0, x1, y1 = box
    x0, x1 = sorted((int(round(x0)), int(round(x1))))
    y0, y1 = sorted((int(round(y0)), int(round(y1))))
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
    if x1 <= x0 or y1 <= y0:
        raise ExplainerError(f"The box ({box[0]:.0f}, {box[1]:.0f}) – ({box[2]:.0f}, {box[3]:.0f}) is empty or outside "
                             f"the {w}×{h} image; draw it on the image or correct the numbers.")
    out = np.zeros((h, w), dtype=bool)
    out[y0:y1, x0:x1] = True
    return out


def box_share(shape: tuple[int, int], box: Box) -> float:
    """The share of the image (H, W) that the box covers after clipping and rounding to pixels (0..1): the
    relevance mass a map spread evenly would put there. The one meaning of "box share" in the library."""
    return float(box_region(shape, box).mean())


def mask_region(mask: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """An uploaded mask (any uint8 image: non-black = object) resized to ``shape`` (H, W) with nearest neighbours."""
    grey = mask if mask.ndim == 2 else mask.max(axis=2)
    out = cv2.resize((grey > 127).astype(np.uint8), (shape[1], shape[0]), interpolation=cv2.INTER_NEAREST) > 0
    if not out.any():
        raise ExplainerError("The mask is empty: mark the object in white (or any bright colour) on black.")
    return out


def evaluate(model: ModelSpec | Workbench, image: np.ndarray, maps: dict[str, np.ndarray], target: int | None = None, *,
             metrics: list[str] | None = None, params: dict[str, dict] | None = None, region: np.ndarray | None = None,
             seed: int = 0, progress: Progress | None = None) -> Report:
    """Score every map in ``maps`` (name → float map at the image's resolution) on ``metrics``.

    Curve metrics run as one batched call of the engine over all maps (inference mode, OOM back-off,
    progress, stoppable); localisation metrics need ``region`` (a boolean mask, e.g. from :func:`box_region`)
    and are skipped without one. The model runs inside the Workbench's session (its lock and run options).
    """
    ids = metrics or [m.id for m in list_metrics()]
    specs = [get_metric(i) for i in ids]
    curve_specs = [s for s in specs if isinstance(s, CurveMetricSpec)]
    params = params or {}
    for s in specs:  # a mistyped parameter is an error before any model call, not after the curves
        s.resolve(params.get(s.id))
    h, w = image.shape[:2]
    for name, m in maps.items():
        if m.shape != (h, w):
            raise ExplainerError(f"The map {name!r} is {m.shape[1]}×{m.shape[0]} but the image is {w}×{h}.")
    t0 = time.perf_counter()
    wb = as_workbench(model)
    with wb.session() as model:
        x, tgt, _ = wb.prepare(image, target)
        ih, iw = model.input_size
        plans: dict[tuple[str, str], Plan] = {}
        for name, m in maps.items():
            small = torch.from_numpy(cv2.resize(np.nan_to_num(m).astype(np.float32), (iw, ih),
                                                interpolation=cv2.INTER_AREA)).to(x.device)
            for c in curve_specs:
                plans[(name, c.id)] = c.plan(model, x, small, seed=seed, params=params.get(c.id))
        probs_of = _run_plans(model, list(plans.values()), tgt, progress)
    values: dict[str, dict[str, float]] = {name: {} for name in maps}
    curves: dict[tuple[str, str], Curve] = {}
    for (name, mid), p in plans.items():
        ys = probs_of.pop(0)
        curves[(name, mid)] = Curve(p.xs, ys, p.summarise(p.xs, ys), p.x_label)
        values[name][mid] = curves[(name, mid)].value
    report = Report(tgt, model.label(tgt), list(maps), [c.id for c in curve_specs], values, curves,
                    time.perf_counter() - t0, sum(len(p.counts) for p in plans.values()), plans, model)
    loc = [s.id for s in specs if isinstance(s, LocalisationMetricSpec)]
    return report.with_region(maps, region, loc, params) if region is not None and loc else report


def _run_plans(model: ModelSpec, plans: list[Plan], target: int, progress: Progress | None) -> list[np.ndarray]:
    """Class probabilities of every step of every plan, in one engine call."""
    if not plans:
        return []
    ranks = torch.stack([p.rank for p in plans])
    starts = torch.cat([p.start for p in plans])
    fills = torch.cat([p.fill for p in plans])
    which = torch.cat([torch.full((len(p.counts),), i) for i, p in enumerate(plans)]).to(ranks.device)
    counts = torch.tensor([c for p in plans for c in p.counts], device=ranks.device)

    def make(a: int, b: int) -> torch.Tensor:
        pi = which[a:b]
        hidden = ranks[pi] < counts[a:b, None, None]
        return torch.where(hidden[:, None], fills[pi], starts[pi]).contiguous(memory_format=torch.channels_last)

    targets = torch.full((len(counts),), target, device=ranks.device)
    out = scores(model.module, len(counts), make, targets, probabilities=True, progress=progress,
                 desc="perturbed inputs").cpu().numpy()
    split = np.cumsum([len(p.counts) for p in plans])[:-1]
    return list(np.split(out, split))
