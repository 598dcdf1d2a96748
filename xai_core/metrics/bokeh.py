"""The 'bokeh' images of PIC (Kapishnikov et al. 2019): the image re-drawn from a subset of its pixels by linear
interpolation over their Delaunay triangulation, and the image's information estimated by its lossless WebP size."""

from __future__ import annotations

import hashlib
import io
import threading
from collections import OrderedDict

import numpy as np
from PIL import Image
from scipy.interpolate import griddata

__all__ = ["THRESHOLDS", "Bokeh", "bokeh_image", "bokeh_set", "webp_size"]

THRESHOLDS = (0.005, 0.01, 0.02, 0.03, 0.04, 0.05, 0.07, 0.10, 0.13, 0.21, 0.34, 0.5, 0.75)  # the paper's
RANDOM_FRACTION = 0.01  # pixels kept at random in every bokeh image (the paper's 1%)


def bokeh_image(image: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """``image`` (H, W, 3 uint8) where ``keep`` is False replaced by linear interpolation of the kept pixels (the four
    corners are always kept, so every pixel lies in their hull); one triangulation serves the three channels."""
    keep = keep.copy()
    h, w = keep.shape
    keep[[0, 0, h - 1, h - 1], [0, w - 1, 0, w - 1]] = True
    if keep.all():
        return image.copy()
    known, unknown = np.argwhere(keep), np.argwhere(~keep)
    filled = griddata(known, image[keep].astype(np.float64), unknown, method="linear", fill_value=np.nan)
    mean = image.reshape(-1, 3).mean(0)
    filled = np.where(np.isnan(filled), mean, filled)
    out = image.astype(np.float32) * keep[..., None]
    out[~keep] = filled
    return np.round(out).astype(np.uint8)


def webp_size(image: np.ndarray) -> int:
    """Bytes of the lossless WebP encoding (Pillow, quality 100): the paper's estimate of the image's information."""
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="webp", lossless=True, quality=100)
    return buf.tell()


class Bokeh:
    """The inputs of PIC for one image, map and seed: the image itself, the fully blurred image (only the random 1%
    kept) and one bokeh image per threshold (the top ``t`` of the map, ``map ≥ its (1 − t) quantile``, plus the random
    1%); their WebP sizes. Built on first use and kept (SIC and AIC read the same ones)."""

    def __init__(self, image: np.ndarray, saliency: np.ndarray, seed: int) -> None:
        self.image, self.saliency = image, saliency
        n = saliency.size
        picks = np.random.default_rng(seed).choice(n, int(n * RANDOM_FRACTION), replace=False)
        self.random_mask = np.zeros(saliency.shape, bool)
        self.random_mask.flat[picks] = True
        self._images: list[np.ndarray] | None = None
        self._sizes: list[int] | None = None
        self._lock = threading.Lock()

    def images(self) -> list[np.ndarray]:
        """[image, fully blurred, bokeh at each of :data:`THRESHOLDS`] (uint8)."""
        with self._lock:
            if self._images is None:
                masks = [self.saliency >= np.quantile(self.saliency, 1 - t) for t in THRESHOLDS]
                self._images = [self.image, bokeh_image(self.image, self.random_mask),
                                *[bokeh_image(self.image, k | self.random_mask) for k in masks]]
            return self._images

    def sizes(self) -> list[int]:
        """The lossless WebP size of each of :meth:`images`."""
        images = self.images()
        with self._lock:
            if self._sizes is None:
                self._sizes = [webp_size(im) for im in images]
            return self._sizes


_CACHE: OrderedDict[bytes, Bokeh] = OrderedDict()
_CACHE_LOCK = threading.Lock()


def bokeh_set(image: np.ndarray, saliency: np.ndarray, seed: int) -> Bokeh:
    """The :class:`Bokeh` of this image, map and seed: one object for both PIC metrics of a map (a few kept)."""
    key = hashlib.blake2b(image.tobytes() + saliency.astype(np.float64).tobytes() + str(seed).encode(),
                          digest_size=16).digest()
    with _CACHE_LOCK:
        if key not in _CACHE:
            _CACHE[key] = Bokeh(image, saliency, seed)
            while len(_CACHE) > 8:
                _CACHE.popitem(last=False)
        _CACHE.move_to_end(key)
        return _CACHE[key]
