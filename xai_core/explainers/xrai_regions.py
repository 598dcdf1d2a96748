"""XRAI's regions: Felzenszwalb segments at several scales, dilated, merged greedily by attribution density.

Not registered (``xrai`` is). The definitions follow PAIR saliency 0.2.1's XRAI (Kapishnikov et al. 2019,
arXiv:1906.02825) and give the same regions and values on the same attributions: segments from scikit-image's
``felzenszwalb`` on the image min-max scaled to [−1, 1] and resized to 224×224, labels resized back (nearest),
each segment dilated by a disk. The merge keeps running sums per segment and updates them with only the pixels
each step adds, instead of recomputing every segment's density over the whole image at every step.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from skimage.morphology import dilation, disk
from skimage.segmentation import felzenszwalb
from skimage.transform import resize

SCALES = (50, 100, 150, 250, 500, 1200)  # Felzenszwalb 'scale' values, from fine to coarse
SIGMA = 0.8
MIN_SIZE = 150  # Felzenszwalb's minimum component size, in pixels of the 224×224 copy
SEGMENTATION_SHAPE = (224, 224)
TIE = 1e-10  # densities this close (relative to the largest |attribution|) are compared exactly, as PAIR does


def segment_masks(image: np.ndarray, dilation_radius: int) -> np.ndarray:
    """Boolean masks ``[M, H, W]`` of every segment at every scale of an ``(H, W, 3)`` image (any value range).

    A constant image (no range to scale) is one segment per scale.
    """
    h, w = image.shape[:2]
    lo, hi = float(image.min()), float(image.max())
    scaled = (image - lo) / (hi - lo) if hi > lo else np.zeros(image.shape)
    scaled = resize(scaled * 2.0 - 1.0, SEGMENTATION_SHAPE, order=3, mode="constant", preserve_range=True,
                    anti_aliasing=True)
    masks: list[np.ndarray] = []
    for scale in SCALES:
        seg = felzenszwalb(scaled, scale=scale, sigma=SIGMA, min_size=MIN_SIZE)
        seg = resize(seg, (h, w), order=0, preserve_range=True, mode="constant", anti_aliasing=False).astype(int)
        masks.extend(seg == label for label in range(seg.min(), seg.max() + 1))
    stacked = np.stack(masks)
    return dilate(stacked, dilation_radius) if dilation_radius else stacked


def dilate(masks: np.ndarray, radius: int) -> np.ndarray:
    """Each mask dilated by ``disk(radius)`` (scikit-image), computed on its bounding box plus the radius."""
    footprint = disk(radius)
    out = np.zeros_like(masks)
    h, w = masks.shape[1:]
    for i, m in enumerate(masks):
        rows, cols = np.flatnonzero(m.any(1)), np.flatnonzero(m.any(0))
        if len(rows):
            r0, r1 = max(rows[0] - radius, 0), min(rows[-1] + radius + 1, h)
            c0, c1 = max(cols[0] - radius, 0), min(cols[-1] + radius + 1, w)
            out[i, r0:r1, c0:c1] = dilation(m[r0:r1, c0:c1], footprint=footprint)
    return out


@dataclass
class Regions:
    """XRAI's result for one image: the map ``values [H, W]`` (each pixel: the attribution density of the region
    that added it), ``labels [H, W]`` (regions ranked by density from 0; pixels no segment added come last) and the
    density of each label, ``gains``."""

    values: np.ndarray
    labels: np.ndarray
    gains: np.ndarray


def _exact_best(flat: np.ndarray, a: np.ndarray, covered: np.ndarray, candidates: np.ndarray) -> tuple[int, float]:
    """Among ``candidates`` (mask indices, ascending), the first with the largest mean attribution over the pixels
    it would add (PAIR's comparison, used where running sums are too close to call)."""
    means = [a[flat[m] & ~covered].mean() for m in candidates]
    best = int(np.argmax(means))
    return int(candidates[best]), float(means[best])


def merge(attr: np.ndarray, masks: np.ndarray, min_pixels: int = 50, fast: bool = False) -> Regions:
    """Add segments greedily by the mean attribution of the pixels each would add ('full' XRAI), or in the order of
    their whole-segment means ('fast' XRAI); a segment adding fewer than ``min_pixels`` new pixels is dropped. Pixels
    no segment adds get their own mean. ``attr [H, W]``, ``masks [M, H, W]`` bool."""
    flat, a = masks.reshape(len(masks), -1), attr.ravel().astype(np.float64)
    covered = np.zeros(a.shape, dtype=bool)
    values = np.zeros(a.shape)
    added: list[tuple[np.ndarray, float]] = []

    def add(m: int, gain: float) -> None:
        idx = np.flatnonzero(flat[m] & ~covered)
        values[idx] = gain
        covered[idx] = True
        added.append((idx, gain))

    if fast:
        whole = np.array([a[m].mean() if m.any() else -np.inf for m in flat])
        for m in np.argsort(-whole, kind="stable"):
            new = flat[m] & ~covered
            if new.sum() >= min_pixels:
                add(int(m), float(a[new].mean()))
    else:
        count = flat.sum(1).astype(np.int64)
        total = np.array([a[m].sum() for m in flat])
        alive = np.ones(len(flat), dtype=bool)
        scale = TIE * max(float(np.abs(a).max()), 1e-30)
        while True:
            alive &= count >= min_pixels
            if not alive.any():
                break
            density = np.where(alive, total / np.maximum(count, 1), -np.inf)
            best, gain = _exact_best(flat, a, covered, np.flatnonzero(density >= density.max() - scale))
            idx = np.flatnonzero(flat[best] & ~covered)
            add(best, gain)
            alive[best] = False
            sub = flat[:, idx]
            count -= sub.sum(1)
            total -= sub @ a[idx]
    rest = np.flatnonzero(~covered)
    ranked = sorted(added, key=lambda r: -r[1])  # stable: equal densities keep the order they were added in
    if len(rest):
        gain = float(a[rest].mean())
        values[rest] = gain
        ranked.append((rest, gain))
    labels = np.zeros(a.shape, dtype=np.int32)
    for i, (idx, _) in enumerate(ranked):
        labels[idx] = i
    return Regions(values.reshape(attr.shape), labels.reshape(attr.shape), np.array([g for _, g in ranked]))
