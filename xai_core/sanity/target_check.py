"""The random-logit check where there are no classes (issue 24): explain a random *other target* of the same kind —
another prompt, another reference image, a region or a box of the same size elsewhere — and compare the maps (Sixt
et al. 2020's test, :mod:`.logit_check`, with the class replaced by the target). A map that explains *this* prompt
or box should change; one that stays the same shows the image, not the target."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from ..errors import ExplainerError
from ..images import load_sample, sample_names
from ..models.spec import ModelSpec
from ..registry import get_explainer
from ..request import ExplainRequest
from ..targets import DetectionTarget, PromptTarget, RegionTarget, SimilarityTarget, Target
from ..types import Progress
from ..workbench import Workbench, as_workbench
from .check import check_seeds
from .logit_check import RandomLogitReport
from .similarity import spearman_abs
from .verdict import Spread

# Everyday prompts a random prompt is drawn from (none is about horses, tags or watermarks).
PROMPTS = ("a photo of a car", "a photo of a dog", "a photo of a cup of coffee", "a photo of a city street",
           "a photo of a bowl of fruit", "a photo of a mountain lake", "a photo of a bicycle", "a photo of a bird")


def _shifted(box: tuple[float, float, float, float], rng: np.random.Generator) -> tuple[float, float, float, float]:
    """A box of the same size at a uniformly random place in the image."""
    w, h = box[2] - box[0], box[3] - box[1]
    x0, y0 = float(rng.uniform(0, 1 - w)), float(rng.uniform(0, 1 - h))
    return x0, y0, min(1.0, x0 + w), min(1.0, y0 + h)


def random_target(seed: int, target: Target, region_box: tuple[float, float, float, float] | None = None) -> Target:
    """A random other target of ``target``'s kind, drawn from ``seed``: a prompt from :data:`PROMPTS` (the contrast
    kept), a sample photo as the reference, the same-size box elsewhere (a predicted region: its bounding box
    ``region_box`` moved)."""
    rng = np.random.default_rng(int(seed))
    if isinstance(target, PromptTarget):
        pool = [p for p in PROMPTS if p != target.text]
        return PromptTarget(pool[int(rng.integers(len(pool)))], target.contrast)
    if isinstance(target, SimilarityTarget):
        names = sample_names()
        for _ in range(len(names)):
            name = names[int(rng.integers(len(names)))]
            other = SimilarityTarget(load_sample(name), name)
            if other.ref_digest != target.ref_digest:
                return other
        raise ExplainerError("No other sample image to compare with.")
    if isinstance(target, RegionTarget):
        box = target.box or region_box
        if box is None:
            raise ExplainerError("The region has no extent to move; give it as a box.")
        return RegionTarget(target.index, box=_shifted(box, rng))
    if isinstance(target, DetectionTarget):
        return replace(target, box=_shifted(target.box, rng))
    raise ExplainerError(f"No random counterpart for a {type(target).__name__}.")


def _region_box(wb: Workbench, image: np.ndarray, target: RegionTarget) -> tuple[float, float, float, float] | None:
    if target.box is not None or target.mask is not None:
        return target.box if target.box else _bbox(target.mask)
    classes = wb.describe(image)["classes"]
    return _bbox(classes == target.index)


def _bbox(mask: np.ndarray | None) -> tuple[float, float, float, float] | None:
    if mask is None or not mask.any():
        return None
    ys, xs = np.nonzero(mask)
    h, w = mask.shape
    return xs.min() / w, ys.min() / h, (xs.max() + 1) / w, (ys.max() + 1) / h


def random_target_check(model: ModelSpec | Workbench, image: np.ndarray, methods: list[tuple[str, dict[str, Any]]], *,
                        target: Target, seed: int = 0, seeds: int = 3,
                        progress: Progress | None = None) -> RandomLogitReport:
    """Explain ``target`` and, for each seed, one random other target (:func:`random_target`); Spearman |·| of each
    pair at the model's input resolution. The report's ``classes`` count the random targets (0, 1, ...), their
    names are the targets' titles."""
    seed_list = [int(seed) + i for i in range(check_seeds(seeds))]
    wb = as_workbench(model)
    box = _region_box(wb, image, target) if isinstance(target, RegionTarget) else None
    others = [random_target(s, target, box) for s in seed_list]
    names = [get_explainer(m).title for m, _ in methods]
    original: dict[str, np.ndarray] = {}
    other: dict[str, list[np.ndarray]] = {}
    x = wb.model.preprocess(image)
    for i, (name, (m, params)) in enumerate(zip(names, methods, strict=True)):
        if progress is not None:
            progress(i / max(len(methods), 1), f"{name}: {target.title} and {len(others)} random targets")
        maps = [wb.explain_tensor(x, None, ExplainRequest.make(m, t, params, seed)).maps[0].numpy()
                for t in (target, *others)]
        original[name], other[name] = maps[0], maps[1:]
    spreads = {n: Spread.of([spearman_abs(original[n], o) for o in other[n]]) for n in names}
    if progress is not None:
        progress(1.0, "done")
    labels = wb.model.labels
    return RandomLogitReport(0, target.named(labels), seed_list, list(range(len(others))), [t.named(labels) for t in others],
                             original, other, spreads)


__all__ = ["PROMPTS", "random_target", "random_target_check"]
