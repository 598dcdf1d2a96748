"""Lesson 5: pitfalls shown, not told — per-map scaling hiding magnitude, a map that survives randomising the
weights it claims to explain, and deletion preferring scattered maps."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from ..metrics.evaluate import evaluate
from ..metrics.reference_maps import random_map
from ..registry import get_explainer
from ..request import ExplainRequest, Explanation
from ..sanity.check import copy_seed
from ..sanity.randomise import randomised, stages, weighted_layers
from ..sanity.similarity import spearman_abs
from ..workbench import Workbench


@dataclass
class Magnitudes:
    """The same explainer for several classes: each map's largest |value| and its scale relative to the largest."""

    explanations: list[Explanation]
    peaks: list[float]

    def relative(self) -> list[float]:
        top = max(self.peaks) or 1.0
        return [p / top for p in self.peaks]


def magnitudes(wb: Workbench, image: np.ndarray, classes: list[int], method: str = "gradient") -> Magnitudes:
    """Maps of ``method`` for each class: min-max scaling makes them look equally confident; a shared scale
    shows how much weaker the evidence for an unlikely class is."""
    found = [wb.explain(image, ExplainRequest.make(method, c)) for c in classes]
    return Magnitudes(found, [float(np.abs(e.map).max()) for e in found])


def shared_scale(maps: list[np.ndarray]) -> list[np.ndarray]:
    """Maps divided by the largest |value| of all of them (so 1 is the strongest pixel of any map)."""
    top = max((float(np.abs(m).max()) for m in maps), default=0.0) or 1.0
    return [np.clip(np.abs(m) / top, 0, 1).astype(np.float32) for m in maps]


@dataclass
class RandomisedMaps:
    """Maps of the trained model and of a copy whose logit layer (``layers``) is re-initialised, per method, with
    their Spearman ρ of |map| (the sanity check's measure) and p(class) before and after."""

    layers: list[str]
    trained: dict[str, np.ndarray]
    random: dict[str, np.ndarray]
    rho: dict[str, float]
    probability: tuple[float, float]


def randomised_maps(wb: Workbench, image: np.ndarray, target: int,
                    methods: tuple[str, ...] = ("guided_backprop", "gradient"), seed: int = 0) -> RandomisedMaps:
    """Adebayo et al. 2018: re-initialise the logit layer (the first stage of the sanity check, seeded as it is) and
    explain again. The class scores are now random; a map that stays the same cannot be explaining them."""
    with wb.session() as model:
        x = model.preprocess(image)
    top = stages(weighted_layers(wb, x), 1)[0]
    copy = wb.with_model(randomised(wb, top, x, seed=copy_seed(seed, 1)))
    trained, random = {}, {}
    for m in methods:
        title = get_explainer(m).title
        trained[title] = wb.explain_tensor(x, [target], ExplainRequest.make(m, target)).maps[0].numpy()
        random[title] = copy.explain_tensor(x, [target], ExplainRequest.make(m, target)).maps[0].numpy()
    rho = {n: spearman_abs(trained[n], random[n]) for n in trained}
    return RandomisedMaps(top, trained, random, rho,
                          (float(wb.probabilities(image)[target]), float(copy.probabilities(image)[target])))


SCATTERED, BLOCKS = "Random pixels (scattered)", "Random 16-px blocks"


def scatter_maps(shape: tuple[int, int], seed: int = 0, block: int = 16) -> dict[str, np.ndarray]:
    """Two maps that know nothing about the model: random per pixel, and random per ``block``-pixel square."""
    h, w = shape
    coarse = random_map((-(-h // block), -(-w // block)), seed)
    blocks = cv2.resize(coarse, (w, h), interpolation=cv2.INTER_NEAREST)
    return {SCATTERED: random_map(shape, seed), BLOCKS: blocks}


def deletion_scatter(wb: Workbench, image: np.ndarray, maps: dict[str, np.ndarray], target: int, *,
                     steps: int = 16, seed: int = 0) -> dict[str, tuple[np.ndarray, np.ndarray, float]]:
    """Deletion curves (x, probability, AUC; lower AUC counts as 'more faithful') of ``maps`` plus two random maps:
    the scattered random map usually beats the blocky one — deletion rewards scatter, not knowledge."""
    every = {**maps, **scatter_maps(image.shape[:2], seed)}
    report = evaluate(wb, image, every, target, metrics=["deletion"], params={"deletion": {"steps": steps}}, seed=seed)
    return {name: (report.curves[(name, "deletion")].xs, report.curves[(name, "deletion")].probs,
                   report.values[name]["deletion"]) for name in every}
