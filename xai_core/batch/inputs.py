"""A batch run's inputs: a folder of images, an ImageFolder-style class tree, or a CSV of paths.

* folder: every image under it (sorted by path), no label;
* class tree: ``root/<class>/<image>`` (no image directly in ``root``); a class folder named like one of the
  model's labels (case-insensitive) or a class index gets that index, otherwise the folders are numbered in sorted
  order (torchvision's ``ImageFolder`` convention);
* CSV: ``path,target,x0,y0,x1,y1`` (header optional; target and box optional; target a class index or a label;
  paths relative to the CSV's folder). Read with the upload boundary's CSV limits (rows, field length, finite
  coordinates), although the operator chose the file.

Images are decoded by :func:`xai_core.images.decode_image` (the raster allow-list) and downscaled to 1024 px, boxes
scaled with them.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ImageError
from ..images import decode_image, downscale
from ..metrics.sets import IMAGE_EXT
from ..untrusted.limits import LIMITS, Limits

Box = tuple[float, float, float, float]


@dataclass(frozen=True)
class Item:
    """One input: ``key`` (its path relative to the inputs, unique), the file, its class if known, its box if any."""

    key: str
    path: str
    label: int | None = None
    box: Box | None = None


def _images(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXT
                  and not any(part.startswith(".") for part in p.relative_to(root).parts))


def _class_index(names: list[str], labels: list[str]) -> dict[str, int]:
    by_label = {lab.lower(): i for i, lab in enumerate(labels)}
    if all(n.lower() in by_label for n in names):
        return {n: by_label[n.lower()] for n in names}
    if all(n.isdigit() and int(n) < len(labels) for n in names):
        return {n: int(n) for n in names}
    return {n: i for i, n in enumerate(sorted(names))}


def _target(text: str, labels: list[str], line: int) -> int | None:
    text = text.strip()
    if not text:
        return None
    if text.isdigit() and int(text) < len(labels):
        return int(text)
    low = [lab.lower() for lab in labels]
    if text.lower() in low:
        return low.index(text.lower())
    raise ImageError(f"CSV line {line}: the target {text[:60]!r} is neither a class index below {len(labels)} nor one of "
                     "the model's class names; correct it or leave it empty (top-1 is explained).")


def read_csv(path: Path, labels: list[str], *, limits: Limits = LIMITS) -> list[Item]:
    """Rows ``path,target,x0,y0,x1,y1`` of a CSV file, bounded like an uploaded box CSV."""
    data = path.read_bytes()
    if len(data) > limits.upload_bytes:
        raise ImageError(f"The CSV {path.name} is over {limits.upload_bytes // 2**20} MB; split it into several runs.")
    items: dict[str, Item] = {}
    reader = csv.reader(io.StringIO(data.decode("utf-8-sig", "replace")))
    try:
        for i, row in enumerate(reader, 1):
            if i > limits.csv_rows:
                raise ImageError(f"The CSV has more than {limits.csv_rows:,} rows; split it into several runs.")
            row = [f.strip() for f in row]
            if not row or not any(row):
                continue
            if max(len(f) for f in row) > limits.csv_field_chars:
                raise ImageError(f"CSV line {i} has a field over {limits.csv_field_chars:,} characters.")
            if i == 1 and row[0].lower() in ("path", "file", "filename", "image"):
                continue
            box = None
            if len(row) > 2 and any(row[2:6]):
                try:
                    box = tuple(float(v) for v in row[2:6])
                    if len(box) != 4 or not all(math.isfinite(v) and abs(v) <= limits.image_pixels for v in box):
                        raise ValueError
                except ValueError:
                    raise ImageError(f"CSV line {i}: the box should be four pixel positions x0,y0,x1,y1; got "
                                     f"{','.join(row[2:6])[:80]!r}.") from None
            p = (path.parent / row[0]).resolve()
            items[row[0]] = Item(row[0], str(p), _target(row[1] if len(row) > 1 else "", labels, i), box)
    except csv.Error as e:
        raise ImageError(f"CSV line {reader.line_num} is not valid CSV ({e}); save it as plain comma-separated text.") from None
    if not items:
        raise ImageError(f"The CSV {path.name} names no images; write one path,target,x0,y0,x1,y1 row per image.")
    return list(items.values())


def discover(inputs: str | Path, labels: list[str]) -> tuple[list[Item], str]:
    """The items of ``inputs`` and which layout was read (``folder``, ``classes`` or ``csv``)."""
    root = Path(inputs)
    if root.is_file() and root.suffix.lower() == ".csv":
        return read_csv(root, labels), "csv"
    if not root.is_dir():
        raise ImageError(f"{root} is neither a folder of images nor a .csv file.")
    found = _images(root)
    if not found:
        raise ImageError(f"No images ({', '.join(IMAGE_EXT)}) under {root}.")
    rel = [p.relative_to(root) for p in found]
    if all(len(r.parts) == 2 for r in rel):
        index = _class_index(sorted({r.parts[0] for r in rel}), labels)
        return [Item(r.as_posix(), str(p), index[r.parts[0]]) for r, p in zip(rel, found, strict=True)], "classes"
    return [Item(r.as_posix(), str(p)) for r, p in zip(rel, found, strict=True)], "folder"


def load(item: Item, max_side: int = 1024) -> tuple[np.ndarray, Box | None]:
    """The item's image (RGB uint8, at most ``max_side`` px) and its box in that image's pixels."""
    path = Path(item.path)
    if not path.is_file():
        raise ImageError(f"{item.key}: the file does not exist.")
    full = decode_image(path.read_bytes()).array
    img = downscale(full, max_side)
    box = item.box
    if box is not None and img.shape != full.shape:
        s = img.shape[1] / full.shape[1]
        box = tuple(v * s for v in box)
    return img, box
