"""Image edits for 'pin and compare': occlude a box, blur a region, paste the ImageNet-W watermark."""

from __future__ import annotations

import cv2
import numpy as np

from ..errors import ImageError
from ..lab.imagenet_w import watermark

EDITS = ("none", "occlude", "blur", "watermark")
Fractions = tuple[float, float, float, float]  # x0, y0, x1, y1 as fractions of the width and height


def pixel_box(shape: tuple[int, ...], box: Fractions) -> tuple[int, int, int, int]:  # a Box of whole pixels
    h, w = shape[:2]
    x0, y0, x1, y1 = (min(max(float(v), 0.0), 1.0) for v in box)
    if x1 <= x0 or y1 <= y0:
        raise ImageError("The edit's box is empty: its right edge must be right of its left edge, and bottom below top.")
    return round(x0 * w), round(y0 * h), max(round(x1 * w), round(x0 * w) + 1), max(round(y1 * h), round(y0 * h) + 1)


def edit(image: np.ndarray, kind: str, box: Fractions = (0.3, 0.3, 0.7, 0.7)) -> np.ndarray:
    """A copy of ``image`` (RGB uint8) with one edit; ``box`` is ignored by 'none' and 'watermark'."""
    if kind == "none":
        return image
    if kind == "watermark":
        return watermark(image)[0]
    x0, y0, x1, y1 = pixel_box(image.shape, box)
    out = image.copy()
    if kind == "occlude":
        out[y0:y1, x0:x1] = 127
    elif kind == "blur":
        sigma = max(2.0, 0.05 * max(image.shape[:2]))
        out[y0:y1, x0:x1] = cv2.GaussianBlur(image, (0, 0), sigma)[y0:y1, x0:x1]
    else:
        raise ImageError(f"Unknown edit {kind!r}; choose one of {', '.join(EDITS)}.")
    return out
