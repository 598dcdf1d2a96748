"""Similarity of two maps, as in Adebayo et al. 2018: Spearman rank correlation of absolute and of signed
maps, SSIM and HOG similarity. A constant map has no ranks or structure: it scores 0, never NaN."""

from __future__ import annotations

import cv2
import numpy as np
from scipy.stats import spearmanr
from skimage.feature import hog
from skimage.metrics import structural_similarity

SIDE = 64  # maps are compared at 64×64: the ranks of a quarter-million tied pixels mean little


def _small(m: np.ndarray) -> np.ndarray:
    return cv2.resize(np.nan_to_num(m.astype(np.float32)), (SIDE, SIDE), interpolation=cv2.INTER_AREA)


def is_constant(m: np.ndarray) -> bool:
    s = _small(m)
    return float(s.max() - s.min()) <= 1e-12 * max(1.0, float(np.abs(s).max()))


def _unit(m: np.ndarray) -> np.ndarray:
    a = np.abs(_small(m))
    return a / a.max() if a.max() > 0 else a


def spearman_abs(a: np.ndarray, b: np.ndarray) -> float:
    if is_constant(np.abs(a)) or is_constant(np.abs(b)):
        return 0.0
    return float(spearmanr(np.abs(_small(a)).ravel(), np.abs(_small(b)).ravel())[0])


def spearman_signed(a: np.ndarray, b: np.ndarray) -> float:
    if is_constant(a) or is_constant(b):
        return 0.0
    return float(spearmanr(_small(a).ravel(), _small(b).ravel())[0])


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    if is_constant(a) or is_constant(b):
        return 0.0
    return float(structural_similarity(_unit(a), _unit(b), data_range=1.0))


def hog_similarity(a: np.ndarray, b: np.ndarray) -> float:
    ha, hb = (hog(_unit(m), pixels_per_cell=(8, 8), cells_per_block=(2, 2)) for m in (a, b))
    if ha.std() == 0 or hb.std() == 0:
        return 0.0
    return float(np.corrcoef(ha, hb)[0, 1])


SIMILARITIES = {"Spearman |·|": spearman_abs, "Spearman": spearman_signed, "SSIM": ssim, "HOG": hog_similarity}
