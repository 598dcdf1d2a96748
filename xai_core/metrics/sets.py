"""A set of images to evaluate over: the one reader of zipped images (flat or one folder per class, with optional
masks and boxes), the bundled samples with their boxes, and mean ± std per map.

The set is *run* by the batch runner (:func:`xai_core.batch.evaluate_set`), the one loop over many images; this
module only reads and summarises, so it imports nothing of :mod:`xai_core.batch` (which scores through this package).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

import numpy as np

from ..errors import ImageError, XaiError
from ..images import downscale, load_sample, sample_names
from ..types import Box
from ..untrusted.limits import LIMITS
from ..untrusted.text import parse_boxes as parse_boxes  # re-exported: the CSV is read by the upload boundary
from ..untrusted.zips import MemberError, UploadZip
from .evaluate import mask_region

MAX_IMAGES = LIMITS.set_images
MAX_ZIP_BYTES = LIMITS.upload_bytes
IMAGE_EXT = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".gif")
MASK_SUFFIX = "_mask"  # cats/001_mask.png is the object mask of cats/001.png (white object on black)


@dataclass
class Item:
    """One image of a set: its name in the set, RGB uint8 pixels, and where the object is when known: ``box`` in
    the image's pixels, ``region`` a boolean mask at the image's size (from a mask file; it wins over the box)."""

    name: str
    image: np.ndarray
    box: Box | None = None
    region: np.ndarray | None = None


def visible(name: str) -> bool:
    """A file a person put in the zip: not a folder, nothing hidden, no macOS ``__MACOSX`` twins."""
    parts = PurePosixPath(name).parts
    return not name.endswith("/") and not any(p.startswith((".", "__MACOSX")) for p in parts)


def _wrapper_depth(paths: list[str]) -> int:
    """How many leading folders all paths share above the class folders (a zipped folder wraps everything in one)."""
    parts = [PurePosixPath(p).parts for p in paths]
    depth = 0
    while all(len(p) > depth + 2 for p in parts) and len({p[depth] for p in parts}) == 1:
        depth += 1
    return depth


def read_items(zipped: UploadZip, *, boxes: dict[str, Box] | None = None, limit: int = MAX_IMAGES,
               max_side: int = 1024, classes: bool = False, layout: str = "") -> tuple[list[Item], list[str]]:
    """THE reader of zipped images (the Evaluate page's set, the lab's own data): every visible image (sorted by
    path, the first ``limit``), downscaled to ``max_side`` px with its box; ``x_mask.png`` beside ``x.png`` is its
    object mask. ``boxes``: name → box, by path in the zip, path below the class folders, or file name alone.
    ``classes``: one folder per class: a single wrapping folder is dropped from the names and an image outside a
    class folder refuses the zip. An unreadable image is skipped with a note; an unreadable mask is a note."""
    expected = f" Expected {layout}." if layout else ""
    files = [n for n in zipped.names if visible(n) and n.lower().endswith(IMAGE_EXT)]
    if not files:
        raise ImageError(f"The zip holds no images ({', '.join(IMAGE_EXT)}).{expected}")
    depth = _wrapper_depth(files) if classes else 0
    rel = {n: PurePosixPath(*PurePosixPath(n).parts[depth:]) for n in files}
    loose = [str(r) for r in rel.values() if len(r.parts) < 2]
    if classes and loose:
        raise ImageError(f"{len(loose)} image(s) are not in a class folder ({', '.join(loose[:3])}…).{expected}")
    masks = {(r.parent, r.stem[:-len(MASK_SUFFIX)].lower()): n for n, r in rel.items()
             if r.stem.lower().endswith(MASK_SUFFIX)}
    names = sorted((n for n, r in rel.items() if not r.stem.lower().endswith(MASK_SUFFIX)), key=lambda n: str(rel[n]))
    notes: list[str] = []
    if len(names) > limit:
        notes.append(f"{len(names)} images in the zip: the first {limit} (by path) are used.")
        names = names[:limit]
    boxes, items = boxes or {}, []
    for n in names:
        r = rel[n]
        try:
            full = zipped.image(n).array
        except MemberError as e:
            notes.append(f"{r} skipped: {e}")
            continue
        img = downscale(full, max_side)
        box = boxes.get(n, boxes.get(str(r), boxes.get(r.name)))
        if box is not None and img.shape != full.shape:
            s = img.shape[1] / full.shape[1]
            box = tuple(v * s for v in box)
        items.append(Item(str(r), img, box, _mask(zipped, masks.get((r.parent, r.stem.lower())), img, r, notes)))
    if not items:
        raise ImageError("None of the images in the zip could be read: " + "; ".join(notes[-3:]))
    return items, notes


def _mask(zipped: UploadZip, name: str | None, image: np.ndarray, rel: PurePosixPath, notes: list[str]) -> np.ndarray | None:
    if name is None:
        return None
    try:
        return mask_region(zipped.image(name).array, image.shape[:2])
    except MemberError as e:
        notes.append(f"{rel}: its mask or box is ignored ({e})")
    except ImageError:
        raise  # the zip as a whole is over its limit: nothing more is read
    except XaiError as e:
        notes.append(f"{rel}: its mask or box is ignored ({e})")
    return None


def read_zip(data: bytes, boxes: dict[str, Box] | None = None, limit: int = MAX_IMAGES) -> tuple[list[Item], list[str]]:
    """The images of a zip (any folder depth, sorted by path) and notes on what was skipped; see :func:`read_items`.

    The zip is read by the upload boundary (:class:`~xai_core.untrusted.UploadZip`: bounded inflation, checked
    names). Images larger than 1024 px are downscaled and their boxes scaled with them.
    """
    zipped = UploadZip(data, hint="Zip a folder of images (PNG, JPEG, …) and upload that.")
    return read_items(zipped, boxes=boxes, limit=limit)


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
