"""Does a faithfulness ranking depend on what perturbed pixels become? The same curve metric (deletion, AOPC) run
with every reference (black, mean colour, blurred, noise) on the same maps, and whether the maps' order changes.

AOPC's paper perturbs with uniform noise; Quantus draws fresh noise at every step, this app one seeded noise image
(the same for every map and batch), and a black or blurred reference is also common. On real images the order of
methods can flip between these choices, so the Evaluate page states which one it used and whether it matters."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..errors import ExplainerError
from ..explainers.common import REFERENCES
from ..models.spec import ModelSpec
from ..types import Progress
from ..workbench import Workbench
from .evaluate import evaluate
from .registry import CurveMetricSpec, MetricSpec, get_metric

__all__ = ["REFERENCES", "Stability", "reference_param", "reference_stability"]


def reference_param(spec: MetricSpec) -> str | None:
    """The name of the metric's parameter that chooses the reference (None: the metric has none)."""
    for p in spec.params:
        if p.kind == "choice" and set(p.choices) <= set(REFERENCES) and len(p.choices) > 1:
            return p.name
    return None


@dataclass
class Stability:
    """Values of ``metric`` per reference and map (``values[reference][map]``)."""

    metric: str
    values: dict[str, dict[str, float]]

    def ranking(self, reference: str) -> list[str]:
        """Maps from best to worst under ``reference`` (ties keep the maps' order)."""
        higher = get_metric(self.metric).better == "higher"
        vals = self.values[reference]
        return sorted(vals, key=lambda n: -vals[n] if higher else vals[n])

    @property
    def stable(self) -> bool:
        return len({tuple(self.ranking(r)) for r in self.values}) == 1

    def text(self) -> str:
        """One line: whether the order of the maps is the same under every reference, and the orders if not."""
        spec = get_metric(self.metric)
        refs = list(self.values)
        if self.stable:
            order = " > ".join(self.ranking(refs[0]))
            return f"Stable: the ranking by {spec.short} is {order} under every reference ({', '.join(refs)})."
        orders = "; ".join(f"{r}: {' > '.join(self.ranking(r))}" for r in refs)
        return f"Not stable: the ranking by {spec.short} changes with the reference — {orders}."


def reference_stability(model: ModelSpec | Workbench, image: np.ndarray, maps: dict[str, np.ndarray],
                        target: int | None = None, *, metric: str = "aopc_morf", params: dict | None = None,
                        references: tuple[str, ...] = REFERENCES, seed: int = 0,
                        progress: Progress | None = None) -> Stability:
    """Run curve ``metric`` on ``maps`` once per reference (each one batched engine call) with ``params`` otherwise
    unchanged."""
    spec = get_metric(metric)
    name = reference_param(spec)
    if not isinstance(spec, CurveMetricSpec) or name is None:
        raise ExplainerError(f"{spec.title} has no reference to vary; choose deletion or AOPC.")
    values: dict[str, dict[str, float]] = {}
    for i, ref in enumerate(references):
        if progress is not None:
            progress(i / len(references), f"{spec.short} with {ref}")
        report = evaluate(model, image, maps, target, metrics=[metric], params={metric: {**(params or {}), name: ref}},
                          seed=seed)
        values[ref] = {m: float(report.values[m][metric]) for m in maps}
        if any(not math.isfinite(v) for v in values[ref].values()):
            raise ExplainerError(f"{spec.short} with the {ref} reference gave no value; try fewer steps.")
    if progress is not None:
        progress(1.0, "done")
    return Stability(metric, values)
