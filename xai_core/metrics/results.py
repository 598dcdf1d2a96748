"""What an evaluation returns: the metric values per map, the curves, and how to show a perturbed input; and the
localisation metrics, which need no model and are added to a report afterwards (a box drawn later never recomputes
the curves)."""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass, field, replace

import numpy as np
import torch

from ..errors import ExplainerError
from ..models.spec import ModelSpec
from .registry import LocalisationMetricSpec, get_metric
from .values import Plan

__all__ = ["Curve", "Report", "localise", "rows_csv"]


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
