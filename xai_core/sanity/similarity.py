"""Similarity of two maps, as in Adebayo et al. 2018: Spearman rank correlation of absolute and of signed maps,
SSIM and HOG similarity.

Every measure works on the maps as given, at their own resolution (the sanity checks pass the maps as the
explainer computed them, at the model's input resolution, before any resize to the image): nothing is
resampled, and the absolute measures take |·| of every pixel first, so positive and negative evidence never
cancel. SSIM and HOG compare |map| scaled to its maximum; HOG's cells are an eighth of the shorter side, so
the same structure is compared on a small or a large map. A constant map has no ranks or structure: it scores
0, never NaN.
"""

from __future__ import annotations

import numpy as np
from skimage.feature import hog
from skimage.metrics import structural_similarity

from ..errors import ExplainerError

RESOLUTION = ("the map's own resolution (the model's input pixels, as the explainer computed it), no resampling; "
              "|·| taken per pixel before anything else")
MEASURE = "Spearman |·|"  # the measure the verdicts use
CELLS = 8  # HOG: cells per shorter side
_EPS = float(np.finfo(np.float32).eps)


def _clean(m: np.ndarray) -> np.ndarray:
    return np.nan_to_num(np.asarray(m, dtype=np.float32), nan=0.0, posinf=0.0, neginf=0.0)


def _pair(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a, b = _clean(a), _clean(b)
    if a.shape != b.shape:
        raise ExplainerError(f"Maps of {a.shape} and {b.shape} cannot be compared pixel by pixel; explain the same "
                             "image with both.")
    return a, b


def is_constant(m: np.ndarray) -> bool:
    """True when every pixel has the same value to float32 resolution (no ranking, no structure)."""
    m = _clean(m)
    if m.size == 0:
        return True
    span = float(m.max()) - float(m.min())
    return span <= 4 * _EPS * float(np.abs(m).max())


def _unit(m: np.ndarray) -> np.ndarray:
    a = np.abs(m)
    top = float(a.max())
    return a / top if top > 0 else a


def ranks(v: np.ndarray) -> np.ndarray:
    """Ranks 0..n-1 of a 1-D array, tied values sharing their average rank (as Spearman's ρ needs)."""
    order = np.argsort(v, kind="stable")
    s = v[order]
    new = np.empty(s.size, dtype=bool)
    new[:1] = True
    np.not_equal(s[1:], s[:-1], out=new[1:])
    starts = np.flatnonzero(new)
    sizes = np.diff(np.append(starts, s.size))
    out = np.empty(s.size, dtype=np.float64)
    out[order] = np.repeat(starts + (sizes - 1) / 2.0, sizes)
    return out


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    ra, rb = ranks(a.ravel()), ranks(b.ravel())
    ra -= ra.mean()
    rb -= rb.mean()
    return float(np.dot(ra, rb) / np.sqrt(np.dot(ra, ra) * np.dot(rb, rb)))


def spearman_abs(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman ρ of |a| and |b| over every pixel (|·| first, at the maps' own resolution)."""
    a, b = _pair(a, b)
    a, b = np.abs(a), np.abs(b)
    if is_constant(a) or is_constant(b):
        return 0.0
    return _spearman(a, b)


def spearman_signed(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman ρ of the signed maps over every pixel."""
    a, b = _pair(a, b)
    if is_constant(a) or is_constant(b):
        return 0.0
    return _spearman(a, b)


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """SSIM of |a| and |b|, each scaled to its maximum (7-pixel window, data range 1)."""
    a, b = _pair(a, b)
    if is_constant(a) or is_constant(b):
        return 0.0
    return float(structural_similarity(_unit(a), _unit(b), data_range=1.0))


def hog_similarity(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation of the HOG descriptors of |a| and |b| (cells of 1/8 of the shorter side)."""
    a, b = _pair(a, b)
    cell = max(2, min(a.shape) // CELLS)
    ha, hb = (hog(_unit(m), pixels_per_cell=(cell, cell), cells_per_block=(2, 2)) for m in (a, b))
    if ha.size == 0 or ha.std() == 0 or hb.std() == 0:
        return 0.0
    return float(np.corrcoef(ha, hb)[0, 1])


SIMILARITIES = {MEASURE: spearman_abs, "Spearman": spearman_signed, "SSIM": ssim, "HOG": hog_similarity}
