"""ROAD beside ROAR on the lab set (Rong, Leemann, Borisov, Kasneci & Kasneci 2022, 'A Consistent and Efficient
Evaluation Strategy for Attribution Methods', ICML, arXiv:2202.00449): remove each test image's top-k% pixels by a
ranking, fill them by noisy linear imputation (:func:`xai_core.metrics.imputation.impute`: what the neighbours
predict, so the removed set's *shape* carries no class information) and measure the **unchanged** model's accuracy.
No retraining, so it runs in seconds where ROAR takes minutes; and where ROAR's mean-colour holes leak the class
to a retrained model (the horse's silhouette), ROAD's imputed holes do not."""

from __future__ import annotations

import numpy as np

from ..metrics.imputation import impute
from ..models.spec import ModelSpec
from ..types import Progress
from ..workbench import Workbench
from .data import LabSet
from .model import accuracy
from .roar import _maps

NOISE = 0.01  # the paper's noise on the imputed values, here on the 0..1 scale of the pixels


def imputed(images: np.ndarray, maps: np.ndarray, fraction: float, *, noise: float = NOISE,
            seed: int = 0) -> np.ndarray:
    """RGB uint8 ``images`` [N, H, W, 3] with the ``fraction`` of pixels ranked highest by ``maps`` [N, H, W]
    replaced by noisy linear imputation (seeded per image)."""
    out = images.copy()
    n, h, w = maps.shape
    k = int(round(fraction * h * w))
    if k == 0:
        return out
    for i in range(n):
        removed = np.zeros(h * w, bool)
        removed[np.argsort(-maps[i].reshape(-1), kind="stable")[:k]] = True
        x = images[i].transpose(2, 0, 1).astype(np.float64) / 255.0
        filled = impute(x, removed.reshape(h, w), noise, np.random.default_rng([seed, i]))
        out[i] = np.clip(np.rint(filled.transpose(1, 2, 0) * 255.0), 0, 255).astype(np.uint8)
    return out


def road(model: ModelSpec | Workbench, test_set: LabSet, methods: list[str],
         fractions: tuple[float, ...] = (0.05, 0.2, 0.5), *, noise: float = NOISE, seed: int = 0,
         progress: Progress | None = None) -> dict[str, list[float]]:
    """The model's test accuracy after ROAD removal, per ranking ('random' included) and fraction, most relevant
    first; the first entry of every list is the accuracy with nothing removed (the same shape as ROAR's result)."""
    report = progress or (lambda f, t: None)
    rng = np.random.default_rng(seed)
    ranks = {"random": rng.random(test_set.images.shape[:3])}
    for m in methods:
        report(0.0, f"ranking pixels with {m}")
        ranks[m] = _maps(model, test_set, m)
    base = accuracy(model, test_set.images, test_set.labels)
    result = {name: [base] for name in ranks}
    steps, done = len(ranks) * len(fractions), 0
    for name, maps in ranks.items():
        for f in fractions:
            report(done / steps, f"{name}: impute the top {f:.0%} and classify")
            result[name].append(accuracy(model, imputed(test_set.images, maps, f, noise=noise, seed=seed),
                                         test_set.labels))
            done += 1
    report(1.0, "done")
    return result
