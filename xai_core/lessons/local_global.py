"""Lesson 6: local vs global. A Grad-CAM map says *where* the lab CNN looked in one tagged horse; the top concept
discovered over many horses says *what* it uses: its crops across the set, and how many of them fall on the tag."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import lab
from ..concepts import discover
from ..workbench import Workbench
from .cams import cam_parts

HORSE = 1
SEED = 7  # the lab set the library's discovery test found the tag concept in


@dataclass
class LocalGlobal:
    """``image`` (one tagged horse, RGB uint8) and its Grad-CAM ``gradcam`` for 'horse', with the share of the map's
    mass inside the tag's box (``map_in_tag``); the top discovered concept's ``crops`` (RGB uint8) across the
    ``horses`` images of the set, its importance ``share``, and how many of its crops lie on a tag (``on_tag``)."""

    image: np.ndarray
    gradcam: np.ndarray
    map_in_tag: float
    crops: list[np.ndarray]
    share: float
    on_tag: int
    horses: int
    layer: str


def _overlaps(box: tuple[int, int, int, int], tag: np.ndarray) -> bool:
    x0, y0, x1, y1 = box
    return bool(x0 < tag[2] and tag[0] < x1 and y0 < tag[3] and tag[1] < y1)


def local_vs_global(wb: Workbench, *, n: int = 200, rank: int = 5, which: int = 0, top: int = 8) -> LocalGlobal:
    """On the lab CNN (``wb``): the ``which``-th tagged horse of ``n`` horse-watermark images, its Grad-CAM, and the
    most important of ``rank`` concepts discovered from all the set's horses (crops kept at their size, as the
    Concepts page does for the lab CNN)."""
    data = lab.make_dataset(n, seed=SEED)
    horses = data.subset(data.labels == HORSE)
    tagged = np.flatnonzero(horses.tagged)
    i = int(tagged[which % len(tagged)])
    parts = cam_parts(wb, horses.images[i], HORSE)
    x0, y0, x1, y1 = (int(v) for v in horses.tag_boxes[i])
    mass = float(parts.gradcam.sum()) or 1.0
    found = discover(wb, lab.to_tensor(horses.images), HORSE, rank=rank, crop=0.375, stride=0.125, resize=False,
                     top_crops=top)
    best = found.concepts[0]
    crops = [horses.images[c.image][c.box[1]:c.box[3], c.box[0]:c.box[2]] for c in best.crops]
    on_tag = sum(bool(horses.tagged[c.image]) and _overlaps(c.box, horses.tag_boxes[c.image]) for c in best.crops)
    return LocalGlobal(horses.images[i], parts.gradcam, float(parts.gradcam[y0:y1, x0:x1].sum()) / mass, crops,
                       best.share, int(on_tag), len(horses), found.layer)
