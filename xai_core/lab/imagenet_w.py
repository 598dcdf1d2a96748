"""The real-world twin of the horse tag: the ImageNet-W watermark (Li et al. 2023, 'A Whac-A-Mole Dilemma:
Shortcuts Come in Multiples Where Mitigating One Amplifies Others', CVPR, arXiv:2212.04825). ImageNet holds many
carton photos carrying a translucent Chinese text watermark, so ImageNet models learned 'watermark → carton'.
The PyPI package ``imagenet-w`` ships the paper's transform and font; this module measures the carton
probability before and after it and where explainers point."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from ..errors import ExplainerError
from ..metrics.evaluate import box_region
from ..metrics.registry import get_localisation_metric
from ..models.spec import ModelSpec
from ..request import ExplainRequest
from ..types import Box
from ..workbench import Workbench, as_workbench

CARTON = 478  # the ImageNet class index of 'carton' (imagenet_w.watermark_transform.CARTON_CLASS_INDEX)


@lru_cache(maxsize=4)
def _transform(size: int) -> Any:
    try:
        from imagenet_w import AddWatermark
    except ImportError as e:  # pragma: no cover - a runtime dependency
        raise ExplainerError("The ImageNet-W watermark needs the package imagenet-w: pip install imagenet-w==1.0.0") from e
    return AddWatermark(size)


def check_model(model: ModelSpec | Workbench) -> None:
    """ImageNet-W is about ImageNet's 1000 classes; other label sets have no 'carton'."""
    model = as_workbench(model).model
    if model.num_classes != 1000:
        raise ExplainerError(f"{model.title} has {model.num_classes} classes; the ImageNet-W watermark test needs an "
                             "ImageNet-1k classifier (class 478, 'carton'). Pick the bundled model or a torchvision one.")


def watermark(image: np.ndarray) -> tuple[np.ndarray, Box]:
    """The ImageNet-W watermark drawn onto an RGB uint8 image at its own size (the paper adds it after the crop, at
    the model's input size), and the text's bounding box (x0, y0, x1, y1) in pixels."""
    h, w = image.shape[:2]
    t = _transform(min(h, w))
    marked = np.asarray(t(Image.fromarray(image)))
    x0, y0, x1, y1 = ImageDraw.Draw(Image.new("L", (w, h))).textbbox((t.x_pos * w, t.y_pos * h), t.text, font=t.font)
    return marked, (max(0, int(x0)), max(0, int(y0)), min(w, int(np.ceil(x1))), min(h, int(np.ceil(y1))))


@dataclass
class CartonShift:
    """One image: the carton probability and rank without and with the watermark, and the top-1 class of both."""

    name: str
    p_clean: float
    p_marked: float
    rank_clean: int
    rank_marked: int
    top_clean: str
    top_marked: str

    @property
    def ratio(self) -> float:
        return self.p_marked / max(self.p_clean, 1e-12)

    def row(self) -> dict[str, Any]:
        return {"image": self.name, "p(carton) clean": self.p_clean, "p(carton) watermarked": self.p_marked,
                "× change": self.ratio, "carton rank": f"{self.rank_clean} → {self.rank_marked}",
                "top-1 clean": self.top_clean, "top-1 watermarked": self.top_marked}


def carton_shift(model: ModelSpec | Workbench, images: dict[str, np.ndarray]) -> list[CartonShift]:
    """The carton probability of each image before and after the watermark, in one batched run."""
    wb = as_workbench(model)
    model = wb.model
    check_model(model)
    clean = [model.resized(im) for im in images.values()]
    p = wb.probabilities_of(clean + [watermark(c)[0] for c in clean])
    n = len(clean)
    rank = (p > p[:, CARTON:CARTON + 1]).sum(1) + 1
    return [CartonShift(name, float(p[i, CARTON]), float(p[n + i, CARTON]), int(rank[i]), int(rank[n + i]),
                        model.label(int(p[i].argmax())), model.label(int(p[n + i].argmax())))
            for i, name in enumerate(images)]


def mass_in_box(heatmap: np.ndarray, box: Box, signed: bool) -> float:
    """Share of the map's positive evidence (|map| if unsigned) inside ``box``: Arras et al.'s relevance mass."""
    return get_localisation_metric("relevance_mass").score(heatmap if signed else np.abs(heatmap),
                                                           box_region(heatmap.shape, box))


def where_explainers_point(model: ModelSpec | Workbench, image: np.ndarray, methods: list[str], seed: int = 0
                           ) -> dict[str, dict[str, Any]]:
    """Each explainer's map for 'carton' on the clean and the watermarked image (the model's view), with the share
    of positive evidence inside the watermark's box on both; the box's own share of the image is the chance level."""
    wb = as_workbench(model)
    check_model(wb)
    clean = wb.model.resized(image)
    marked, box = watermark(clean)
    out: dict[str, dict[str, Any]] = {}
    for m in methods:
        req = ExplainRequest.make(m, CARTON, None, seed)
        a, b = wb.explain(clean, req), wb.explain(marked, req)
        out[m] = {"clean": a.map, "marked": b.map, "signed": b.signed, "mass_clean": mass_in_box(a.map, box, a.signed),
                  "mass_marked": mass_in_box(b.map, box, b.signed)}
    return out




def mass_over(found: dict[str, dict[str, dict[str, Any]]], methods: list[str]) -> list[dict[str, Any]]:
    """Per explainer, over images (``found[image][method]`` from :func:`where_explainers_point`): the mean share of
    carton evidence in the watermark box without and with the watermark, and on how many images it rose."""
    rows = []
    for m in methods:
        a = np.array([f[m]["mass_clean"] for f in found.values()])
        b = np.array([f[m]["mass_marked"] for f in found.values()])
        rows.append({"method": m, "mass in box, clean": float(a.mean()), "mass in box, watermarked": float(b.mean()),
                     "images where it rose": f"{int((b > a).sum())}/{len(a)}"})
    return rows
