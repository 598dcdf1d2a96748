"""Evaluate over a set of images: a zip of images (with optional boxes in a CSV), mean ± std per map."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import ImageError, XaiError
from ..images import downscale, load_sample, sample_names
from ..models.spec import ModelSpec
from ..request import ExplainRequest
from ..types import Box
from ..untrusted.limits import LIMITS
from ..untrusted.text import parse_boxes as parse_boxes  # re-exported: the CSV is read by the upload boundary
from ..untrusted.zips import MemberError, UploadZip
from ..workbench import Workbench, as_workbench
from .evaluate import box_region, evaluate
from .reference_maps import reference_maps
from .registry import get_metric

MAX_IMAGES = LIMITS.set_images
MAX_ZIP_BYTES = LIMITS.upload_bytes
IMAGE_EXT = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".gif")


@dataclass
class Item:
    name: str
    image: np.ndarray
    box: Box | None = None


def read_zip(data: bytes, boxes: dict[str, Box] | None = None, limit: int = MAX_IMAGES) -> tuple[list[Item], list[str]]:
    """The images of a zip (any folder depth, sorted by path) and notes on what was skipped.

    The zip is read by the upload boundary (:class:`~xai_core.untrusted.UploadZip`: bounded inflation, checked
    names). Images larger than 1024 px are downscaled and their boxes scaled with them. A box CSV may name an
    image by its path in the zip or by its file name alone.
    """
    zipped = UploadZip(data, hint="Zip a folder of images (PNG, JPEG, …) and upload that.")
    boxes, items, notes = boxes or {}, [], []
    names = sorted(n for n in zipped.names if n.lower().endswith(IMAGE_EXT) and not n.startswith("__MACOSX"))
    if not names:
        raise ImageError(f"The zip holds no images ({', '.join(IMAGE_EXT)}).")
    if len(names) > limit:
        notes.append(f"{len(names)} images in the zip: the first {limit} (by path) are used.")
        names = names[:limit]
    for n in names:
        try:
            img = zipped.image(n).array
        except MemberError as e:
            notes.append(f"{n} skipped: {e}")
            continue
        small = downscale(img, 1024)
        box = boxes.get(n, boxes.get(n.rsplit("/", 1)[-1]))
        if box is not None and small.shape != img.shape:
            s = small.shape[1] / img.shape[1]
            box = tuple(v * s for v in box)
        items.append(Item(n, small, box))
    if not items:
        raise ImageError("None of the images in the zip could be read: " + "; ".join(notes[-3:]))
    return items, notes


def evaluate_set(model: ModelSpec | Workbench, items: Iterable[Item], explainers: list[tuple[str, dict[str, Any]]], *,
                 metrics: list[str], params: dict[str, dict] | None = None, references: bool = True, seed: int = 0,
                 progress: Callable[[float, str], None] | None = None) -> tuple[list[dict[str, Any]], list[str]]:
    """One row per (image, map) with every metric, and notes on failures. Each image is explained for its
    top-1 class; localisation metrics run on images that have a box."""
    items = list(items)
    wb = as_workbench(model)
    rows, notes = [], []
    for i, it in enumerate(items):
        if progress is not None:
            progress(i / len(items), f"image {i + 1}/{len(items)}: {it.name}")
        try:
            maps = {}
            target = None
            for method, p in explainers:
                e = wb.explain(it.image, ExplainRequest.make(method, target, p, seed))
                target = e.target
                maps[e.title] = e.map
            if references:
                maps.update(reference_maps(it.image, seed))
            region = box_region(it.image.shape[:2], it.box) if it.box is not None else None
            report = evaluate(wb, it.image, maps, target, metrics=metrics, params=params, region=region, seed=seed)
        except XaiError as e:
            notes.append(f"{it.name}: {e}")
            continue
        for name in report.maps:
            rows.append({"image": it.name, "class": report.class_name, "map": name,
                         **{get_metric(m).column: report.values[name].get(m, math.nan) for m in metrics}})
    if progress is not None:
        progress(1.0, f"{len(items)} images")
    return rows, notes


def summarise(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Mean ± std (and n) of every metric column per map, in the order maps first appear."""
    maps = list(dict.fromkeys(r["map"] for r in rows))
    cols = [k for k in (rows[0] if rows else {}) if k not in ("image", "class", "map")]
    out = []
    for m in maps:
        row: dict[str, Any] = {"map": m}
        for c in cols:
            v = np.array([r[c] for r in rows if r["map"] == m], dtype=float)
            v = v[np.isfinite(v)]
            row[c] = f"{v.mean():.3f} ± {v.std():.3f} (n={len(v)})" if len(v) else "—"
        out.append(row)
    return out


# Tight object boxes of the bundled samples (x0, y0, x1, y1 in the sample's pixels), placed by eye on the images:
# the cat's face (eyes to chin), the espresso cup with its handle (not the saucer), the crash helmet the astronaut
# holds (the model's helmet classes; ImageNet has no "astronaut"), the rocket on its pad, the horse's head and neck
# (the whole silhouette fills 86% of its image). Each covers well under half its image (tested), so a random map
# cannot score a pointing-game hit or most of the relevance mass by chance.
SAMPLE_BOXES: dict[str, Box] = {
    "Chelsea the cat": (120, 65, 360, 270),
    "Coffee cup": (170, 15, 418, 308),
    "Astronaut": (272, 340, 502, 512),
    "Rocket": (298, 122, 346, 408),
    "Horse silhouette": (262, 5, 392, 108),
}


def sample_items() -> list[Item]:
    """The bundled sample images, with their boxes where one is known."""
    return [Item(n, load_sample(n), SAMPLE_BOXES.get(n)) for n in sample_names()]
