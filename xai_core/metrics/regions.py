"""Annotated object regions for the localisation metrics: a box or an uploaded mask as a boolean mask."""

from __future__ import annotations

import cv2
import numpy as np

from ..errors import ExplainerError
from ..types import Box

__all__ = ["box_region", "box_share", "mask_region"]


def box_region(shape: tuple[int, int], box: Box) -> np.ndarray:
    """A boolean mask of ``shape`` (H, W) for the box (x0, y0, x1, y1) in pixels, clipped to the image."""
    h, w = shape
    x0, y0, x1, y1 = box
    x0, x1 = sorted((int(round(x0)), int(round(x1))))
    y0, y1 = sorted((int(round(y0)), int(round(y1))))
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
    if x1 <= x0 or y1 <= y0:
        raise ExplainerError(f"The box ({box[0]:.0f}, {box[1]:.0f}) – ({box[2]:.0f}, {box[3]:.0f}) is empty or outside "
                             f"the {w}×{h} image; draw it on the image or correct the numbers.")
    out = np.zeros((h, w), dtype=bool)
    out[y0:y1, x0:x1] = True
    return out


def box_share(shape: tuple[int, int], box: Box) -> float:
    """The share of the image (H, W) that the box covers after clipping and rounding to pixels (0..1): the
    relevance mass a map spread evenly would put there. The one meaning of "box share" in the library."""
    return float(box_region(shape, box).mean())


def mask_region(mask: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """An uploaded mask (any uint8 image: non-black = object) resized to ``shape`` (H, W) with nearest neighbours."""
    grey = mask if mask.ndim == 2 else mask.max(axis=2)
    out = cv2.resize((grey > 127).astype(np.uint8), (shape[1], shape[0]), interpolation=cv2.INTER_NEAREST) > 0
    if not out.any():
        raise ExplainerError("The mask is empty: mark the object in white (or any bright colour) on black.")
    return out
