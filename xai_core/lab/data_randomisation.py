"""Data randomisation (Adebayo et al. 2018, 'Sanity Checks for Saliency Maps', arXiv:1810.03292) on the lab
CNN: retrain on shuffled labels; a faithful explanation of a model that learnt nothing should not look like
the real model's."""

from __future__ import annotations

import numpy as np

from ..models.spec import ModelSpec
from ..sanity.similarity import spearman_abs
from ..types import Progress
from ..workbench import Workbench
from .data import LabSet
from .model import as_spec, maps_for, train


def shuffled_label_model(data: LabSet, *, epochs: int = 6, seed: int = 0, progress: Progress | None = None) -> ModelSpec:
    """The lab CNN trained on the same images with their labels randomly permuted."""
    rng = np.random.default_rng(seed)
    shuffled = LabSet(data.images, rng.permutation(data.labels), data.tagged, data.masks, data.tag_boxes)
    return as_spec(train(shuffled, epochs=epochs, seed=seed, progress=progress), provenance="trained on shuffled labels")


def map_similarity(a: ModelSpec | Workbench, b: ModelSpec | Workbench, images: np.ndarray, method: str,
                   target: int = 1) -> tuple[np.ndarray, np.ndarray, float]:
    """Both models' maps for ``images`` and their mean Spearman |·| rank correlation."""
    ma, mb = maps_for(a, images, method, target), maps_for(b, images, method, target)
    return ma, mb, float(np.mean([spearman_abs(p, q) for p, q in zip(ma, mb, strict=True)]))
