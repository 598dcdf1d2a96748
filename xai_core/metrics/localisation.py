"""Localisation of the map against an annotated region: IoU of the thresholded map, and relevance mass."""

from __future__ import annotations

import numpy as np

from ..types import ParamSpec
from .registry import metric


def evidence(m: np.ndarray) -> np.ndarray:
    """The positive part: evidence for the class (unsigned maps are already non-negative)."""
    return np.clip(np.nan_to_num(m, nan=0.0), 0.0, None)


def binarise(m: np.ndarray, threshold: str, level: float) -> np.ndarray:
    """Pixels at or above ``level`` × max (the CAM paper's 20%), or the top ``level`` fraction of pixels."""
    e = evidence(m)
    if e.max() <= 0:
        return np.zeros(m.shape, dtype=bool)
    if threshold == "fraction_of_max":
        return e >= level * e.max()
    k = max(1, int(round(level * e.size)))
    cut = np.partition(e.ravel(), e.size - k)[e.size - k]
    return (e >= cut) & (e > 0)


@metric("iou", title="IoU with the region", short="IoU", order=60, kind="localisation", better="higher", passes="none",
        summary="Intersection over union of the thresholded map and the annotated region.",
        reference="Zhou, Khosla, Lapedriza, Oliva & Torralba 2016, 'Learning Deep Features for Discriminative "
                  "Localization', CVPR (the 20%-of-max threshold). arXiv:1512.04150",
        params=(ParamSpec("threshold", "choice", "fraction_of_max", "Threshold",
                          "Keep pixels above a fraction of the maximum, or the top fraction of pixels.",
                          choices=("fraction_of_max", "top_fraction")),
                ParamSpec("level", "float", 0.2, "Level", "The fraction (0.2 = 20%).", 0.01, 0.99, 0.01)))
def iou(m: np.ndarray, region: np.ndarray, *, threshold: str = "fraction_of_max", level: float = 0.2) -> float:
    """IoU between the binarised map and the region (threshold as in Zhou et al. 2016, arXiv:1512.04150)."""
    b = binarise(m, threshold, level)
    union = np.logical_or(b, region).sum()
    return float(np.logical_and(b, region).sum() / union) if union else 0.0


@metric("relevance_mass", title="Relevance mass in the region", short="Mass in region", order=70, kind="localisation",
        better="higher", passes="none", summary="Share of the positive relevance that falls inside the annotated region.",
        reference="Arras, Osman & Samek 2022, 'CLEVR-XAI: A benchmark dataset for the ground truth evaluation of "
                  "neural network explanations', Information Fusion. arXiv:2003.07258")
def relevance_mass(m: np.ndarray, region: np.ndarray) -> float:
    """Positive relevance inside the region / all positive relevance (Arras et al. 2022, arXiv:2003.07258)."""
    e = evidence(m)
    total = float(e.sum())
    return float(e[region].sum() / total) if total > 0 else 0.0
