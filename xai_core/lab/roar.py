"""ROAR, RemOve And Retrain (Hooker, Erhan, Kindermans & Kim 2019, 'A Benchmark for Interpretability Methods
in Deep Neural Networks', NeurIPS, arXiv:1806.10758): replace each image's top-k% pixels by an explainer's
ranking with the dataset mean, retrain from scratch, and measure test accuracy. A ranking that finds the
evidence the model needs makes accuracy fall faster than a random ranking does."""

from __future__ import annotations

import numpy as np

from ..models.spec import ModelSpec
from ..types import Progress
from ..workbench import Workbench
from .data import LabSet
from .model import accuracy, as_spec, maps_for, train


def remove_top(images: np.ndarray, maps: np.ndarray, fraction: float, fill: np.ndarray) -> np.ndarray:
    """Each image with the ``fraction`` of pixels ranked highest by its map set to ``fill`` (an RGB colour)."""
    out = images.copy()
    n, h, w = maps.shape
    k = int(round(fraction * h * w))
    if k == 0:
        return out
    order = np.argsort(-maps.reshape(n, -1), axis=1, kind="stable")[:, :k]
    flat = out.reshape(n, h * w, 3)
    np.put_along_axis(flat, order[:, :, None], fill.astype(out.dtype)[None, None, :], axis=1)
    return flat.reshape(out.shape)


def roar(model: ModelSpec | Workbench, train_set: LabSet, test_set: LabSet, methods: list[str],
         fractions: tuple[float, ...] = (0.1, 0.3, 0.5, 0.7),
         *, epochs: int = 3, seed: int = 0, progress: Progress | None = None) -> dict[str, list[float]]:
    """Test accuracy after removing and retraining, per ranking ('random' included) and fraction; the first entry
    of every list is the accuracy with nothing removed. Rankings come from ``model`` (explaining each image's
    label)."""
    report = progress or (lambda f, t: None)
    fill = train_set.images.reshape(-1, 3).mean(0)
    rng = np.random.default_rng(seed)
    ranks = {"random": (rng.random(train_set.images.shape[:3]), rng.random(test_set.images.shape[:3]))}
    for m in methods:
        report(0.0, f"ranking pixels with {m}")
        ranks[m] = (_maps(model, train_set, m), _maps(model, test_set, m))
    total = 1 + len(ranks) * len(fractions)

    def retrain(data: LabSet, done: int, what: str) -> ModelSpec:
        return as_spec(train(data, epochs=epochs, seed=seed,
                             progress=lambda f, t: report((done + f) / total, f"{what}: {t}")), "cpu")

    base = retrain(train_set, 0, "training on the intact images")
    result = {name: [accuracy(base, test_set.images, test_set.labels)] for name in ranks}
    done = 1
    for name, (mtr, mte) in ranks.items():
        for f in fractions:
            tr = LabSet(remove_top(train_set.images, mtr, f, fill), train_set.labels, train_set.tagged,
                        train_set.masks, train_set.tag_boxes)
            retrained = retrain(tr, done, f"{name}: remove {f:.0%} and retrain")
            result[name].append(accuracy(retrained, remove_top(test_set.images, mte, f, fill), test_set.labels))
            done += 1
    report(1.0, "done")
    return result


def _maps(model: ModelSpec | Workbench, data: LabSet, method: str) -> np.ndarray:
    out = np.zeros(data.images.shape[:3], np.float32)
    for label in (0, 1):
        idx = np.where(data.labels == label)[0]
        if len(idx):
            out[idx] = np.abs(maps_for(model, data.images[idx], method, label))
    return out
