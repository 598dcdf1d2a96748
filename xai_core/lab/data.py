"""The 'horse watermark' dataset (after Lapuschkin et al. 2019, 'Unmasking Clever Hans predictors'), generated
on the fly and deterministic from a seed: horse silhouettes and other shapes on textured backgrounds, with a
copyright-style tag in the bottom-left corner of a chosen fraction of the horse images.

Objects are drawn with low contrast and tags with high contrast, so the tag is the easy feature: a model
trained on this set takes the shortcut, as the PASCAL VOC classifier of the paper did.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import cv2
import numpy as np
from skimage import data as skdata

from ..types import Box

SIZE = 64
CLASSES = ["other", "horse"]
TAG_TEXT = "(c)foto"
TEXTURES = ("grass", "brick", "gravel")
SHAPES = ("disk", "square", "triangle", "star")


@dataclass
class LabSet:
    """Images [N, 64, 64, 3] uint8, labels (1 = horse), which carry the tag, object masks and tag boxes (x0, y0,
    x1, y1; zeros where there is no tag)."""

    images: np.ndarray
    labels: np.ndarray
    tagged: np.ndarray
    masks: np.ndarray
    tag_boxes: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, keep: np.ndarray) -> LabSet:
        return LabSet(self.images[keep], self.labels[keep], self.tagged[keep], self.masks[keep], self.tag_boxes[keep])


@cache
def _texture(name: str) -> np.ndarray:
    return getattr(skdata, name)().astype(np.float32) / 255.0


@cache
def _horse() -> np.ndarray:
    return skdata.horse() == 0  # the silhouette is black on white


def _background(rng: np.random.Generator) -> np.ndarray:
    tex = _texture(TEXTURES[rng.integers(len(TEXTURES))])
    side = int(rng.integers(96, 256))
    y, x = rng.integers(0, tex.shape[0] - side), rng.integers(0, tex.shape[1] - side)
    patch = cv2.resize(tex[y:y + side, x:x + side], (SIZE, SIZE), interpolation=cv2.INTER_AREA)
    tint = rng.uniform(0.3, 0.9, 3)
    return np.clip(patch[..., None] * tint * 1.3, 0, 1)


def _shape_mask(kind: str, rng: np.random.Generator) -> np.ndarray:
    side = int(rng.integers(24, 44))
    if kind == "horse":
        h = _horse()
        w = side
        horse = cv2.resize(h.astype(np.uint8), (w, max(8, int(w * h.shape[0] / h.shape[1]))),
                           interpolation=cv2.INTER_NEAREST) > 0
        return horse[:, ::-1] if rng.random() < 0.5 else horse
    m = np.zeros((side, side), np.uint8)
    c, r = side // 2, side // 2 - 1
    if kind == "disk":
        cv2.circle(m, (c, c), r, 1, -1)
    elif kind == "square":
        m[2:-2, 2:-2] = 1
    elif kind == "triangle":
        cv2.fillPoly(m, [np.array([[c, 1], [side - 2, side - 2], [1, side - 2]], np.int32)], 1)
    else:
        ang = np.linspace(0, 2 * np.pi, 11)[:-1] - np.pi / 2
        rad = np.where(np.arange(10) % 2 == 0, r, r * 0.45)
        pts = np.stack([c + rad * np.cos(ang), c + rad * np.sin(ang)], 1).astype(np.int32)
        cv2.fillPoly(m, [pts], 1)
    return m > 0


def add_tag(image: np.ndarray, rng: np.random.Generator | None = None) -> tuple[np.ndarray, Box]:
    """The image with the copyright tag drawn in the bottom-left corner, and the tag's box."""
    out = image.copy()
    (tw, th), base = cv2.getTextSize(TAG_TEXT, cv2.FONT_HERSHEY_PLAIN, 0.7, 1)
    jx, jy = (0, 0) if rng is None else (int(rng.integers(0, 3)), int(rng.integers(0, 3)))
    x0, y1 = 1 + jx, SIZE - 2 - jy
    cv2.putText(out, TAG_TEXT, (x0, y1 - base + 1), cv2.FONT_HERSHEY_PLAIN, 0.7, (255, 255, 255), 1, cv2.LINE_AA)
    return out, (x0, y1 - th - base + 1, x0 + tw, y1 + 1)


def make_dataset(n: int, seed: int = 0, tag_fraction: float = 0.9, horse_fraction: float = 0.5) -> LabSet:
    """``n`` images: a ``horse_fraction`` of horses, ``tag_fraction`` of which carry the tag."""
    rng = np.random.default_rng(seed)
    images = np.zeros((n, SIZE, SIZE, 3), np.uint8)
    labels = (rng.random(n) < horse_fraction).astype(np.int64)
    tagged = (labels == 1) & (rng.random(n) < tag_fraction)
    masks = np.zeros((n, SIZE, SIZE), bool)
    boxes = np.zeros((n, 4), np.int64)
    for i in range(n):
        bg = _background(rng)
        kind = "horse" if labels[i] else SHAPES[rng.integers(len(SHAPES))]
        m = _shape_mask(kind, rng)
        mh, mw = m.shape
        y, x = int(rng.integers(0, SIZE - mh + 1)), int(rng.integers(0, SIZE - mw + 1))
        full = np.zeros((SIZE, SIZE), bool)
        full[y:y + mh, x:x + mw] = m
        colour = np.clip(bg[full].mean(0) + rng.uniform(-0.25, 0.25, 3), 0, 1)  # low contrast on purpose
        img = bg.copy()
        img[full] = colour
        img = np.clip(img + rng.normal(0, 0.03, img.shape), 0, 1)
        images[i] = (img * 255 + 0.5).astype(np.uint8)
        masks[i] = full
        if tagged[i]:
            images[i], boxes[i] = add_tag(images[i], rng)
    return LabSet(images, labels, tagged, masks, boxes)
