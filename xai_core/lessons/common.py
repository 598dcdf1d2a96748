"""Helpers the lessons share: model inputs back to pictures, and map similarity."""

from __future__ import annotations

import numpy as np
import torch

from ..models.spec import ModelSpec


def to_uint8(model: ModelSpec, x: torch.Tensor) -> np.ndarray:
    """Normalised model inputs ``[N, 3, H, W]`` -> RGB uint8 images ``[N, H, W, 3]``."""
    x01 = model.denormalise(x.detach().float()).clamp(0, 1)
    return (x01.permute(0, 2, 3, 1).cpu().numpy() * 255 + 0.5).astype(np.uint8)


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation of two maps (1 for equal maps, else 0 when either is constant)."""
    if np.array_equal(a, b):
        return 1.0
    a, b = np.asarray(a, np.float64).ravel(), np.asarray(b, np.float64).ravel()
    a, b = a - a.mean(), b - b.mean()
    den = float(np.sqrt((a * a).sum() * (b * b).sum()))
    return float((a * b).sum() / den) if den > 0 else 0.0


def rank_correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman rank correlation of two maps (ties broken by position)."""
    ra = np.argsort(np.argsort(np.asarray(a).ravel(), kind="stable"), kind="stable")
    rb = np.argsort(np.argsort(np.asarray(b).ravel(), kind="stable"), kind="stable")
    return correlation(ra, rb)
