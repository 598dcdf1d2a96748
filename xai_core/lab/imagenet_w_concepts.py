"""Which of a model's own 'carton' concepts the ImageNet-W watermark (Li et al. 2023, CVPR, arXiv:2212.04825) turns
on: CRAFT-style concepts of class 478 (Fel et al. 2023; :mod:`xai_core.concepts.craft`) are discovered from a set of
images together with their watermarked copies, and each concept's mean coefficient and gradient × input importance is
compared between the clean and the watermarked images. The concept whose importance rises most is the model's
watermark shortcut: its reference crops and its map should sit on the watermark's text, which is checked against the
pixels the overlay changed (the overlay's own mask) and its text box.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..concepts.craft import Crop, Discovery, concept_maps, discover
from ..concepts.errors import require_images
from ..models.spec import ModelSpec
from ..types import Box, Progress
from ..workbench import Workbench, as_workbench
from .imagenet_w import CARTON, check_model, watermark

MIN_IMAGES = 5  # 5 clean + 5 watermarked: the discovery's minimum of 10


@dataclass(frozen=True)
class CartonConcept:
    """One discovered carton concept: its ``share`` of the importance over all images, its mean importance and mean
    coefficient on the clean and on the watermarked images, its reference crops (image ``i`` < n is clean image i,
    ``n + i`` its watermarked copy) and the share of those crops that come from a watermarked image and hold
    watermark pixels."""

    index: int
    share: float
    importance_clean: float
    importance_marked: float
    coefficient_clean: float
    coefficient_marked: float
    crops: tuple[Crop, ...]
    crops_on_watermark: float

    @property
    def rise(self) -> float:
        return self.importance_marked - self.importance_clean


@dataclass(frozen=True)
class CartonConcepts:
    """The concepts (most important first), which one rises most (``rising``, an index into ``concepts``), and where
    that one's map lies: per image, the share of its map inside the watermark's text box on the clean and on the
    watermarked image; ``box_share``: the box's mean share of the image (chance level). ``images``: the model's view
    of the clean images then the watermarked ones (uint8), ``masks``: the pixels the overlay changed, ``boxes``: its
    text boxes, per clean image."""

    names: tuple[str, ...]
    layer: str
    concepts: tuple[CartonConcept, ...]
    rising: int
    mass_in_box_clean: tuple[float, ...]
    mass_in_box_marked: tuple[float, ...]
    box_share: float
    discovery: Discovery
    images: np.ndarray
    masks: np.ndarray
    boxes: tuple[Box, ...]

    @property
    def riser(self) -> CartonConcept:
        return self.concepts[self.rising]


def _on_mark(crop: Crop, n: int, masks: np.ndarray) -> bool:
    x0, y0, x1, y1 = crop.box
    return crop.image >= n and bool(masks[crop.image - n, y0:y1, x0:x1].any())


def _mass(maps: torch.Tensor, boxes: tuple[Box, ...]) -> tuple[float, ...]:
    out = []
    for m, (x0, y0, x1, y1) in zip(maps, boxes, strict=True):
        inside = m[int(y0):int(np.ceil(y1)), int(x0):int(np.ceil(x1))].sum()
        out.append(float(inside / m.sum().clamp_min(1e-12)))
    return tuple(out)


def carton_concepts(model: ModelSpec | Workbench, images: dict[str, np.ndarray], *, layer: str | None = None,
                    rank: int = 10, crop: float = 0.5, stride: float = 0.25, top_crops: int = 10, seed: int = 0,
                    progress: Progress | None = None) -> CartonConcepts:
    """Carton concepts of ``images`` (name → RGB uint8, any size; resized to the model's input) and their watermarked
    copies at ``layer`` (default: the model's CAM layer), compared clean vs watermarked; see the module docstring."""
    wb = as_workbench(model)
    check_model(wb)
    require_images(len(images), MIN_IMAGES, "The image set", "comparing concepts with and without the watermark")
    spec = wb.model
    clean = [spec.resized(im) for im in images.values()]
    marked, boxes = zip(*(watermark(c) for c in clean), strict=True)
    masks = np.stack([np.abs(m.astype(np.int16) - c).sum(2) > 0 for m, c in zip(marked, clean, strict=True)])
    views = np.stack([*clean, *marked])
    x = torch.cat([spec.preprocess(v) for v in views]).cpu()
    n = len(clean)
    found = discover(wb, x, CARTON, layer=layer, rank=rank, crop=crop, stride=stride, top_crops=top_crops, seed=seed,
                     progress=progress)
    assert found.image_importance is not None and found.image_coefficients is not None
    imp, coef = found.image_importance, found.image_coefficients
    concepts = tuple(CartonConcept(c.index, c.share, float(imp[:n, k].mean()), float(imp[n:, k].mean()),
                                   float(coef[:n, k].mean()), float(coef[n:, k].mean()), c.crops,
                                   float(np.mean([_on_mark(r, n, masks) for r in c.crops])))
                     for k, c in enumerate(found.concepts))
    rising = max(range(len(concepts)), key=lambda k: concepts[k].rise)
    maps = concept_maps(wb, found, x)[:, rising]
    h, w = views.shape[1:3]
    box_share = float(np.mean([(b[2] - b[0]) * (b[3] - b[1]) / (h * w) for b in boxes]))
    return CartonConcepts(tuple(images), found.layer, concepts, rising, _mass(maps[:n], boxes), _mass(maps[n:], boxes),
                          box_share, found, views, masks, tuple(boxes))
