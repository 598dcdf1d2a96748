"""A batch run's inputs: a folder of images, an ImageFolder-style class tree, or a CSV of paths.

* folder: every image under it (sorted by path), no label;
* class tree: ``root/<class>/<image>`` (no image directly in ``root``); when every class folder names one of the
  model's labels (case, spaces, '_' and '-' ignored) or a class index (:func:`match_classes`, the lab's rule too),
  it gets that index, otherwise the folders are numbered in sorted order (torchvision's ``ImageFolder`` convention);
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
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ImageError
from ..images import decode_image, downscale
from ..metrics.sets import IMAGE_EXT
from ..types import Box
from ..untrusted.limits import LIMITS, Limits
from ..untrusted.messages import shown
from ..untrusted.paths import PathError, inside, relative
from ..untrusted.runfiles import read_file
from .work import Decoded

INPUTS_REFUSAL = "Inputs are read from the inputs folder only; give a folder or CSV inside it (e.g. its name)."


@dataclass(frozen=True)
class Item:
    """One input: ``key`` (its path relative to the inputs, unique), the file, its class if known, its box if any,
    and the folder it must stay inside (``root``; checked again when the file is read)."""

    key: str
    path: str
    label: int | None = None
    box: Box | None = None
    root: str | None = None


def _inside(root: Path, text: str, refusal: str, base: Path | None = None) -> Path:
    try:
        return inside(root, text, refusal, base=base)
    except PathError as e:
        raise ImageError(str(e)) from None


def _images(top: Path, root: Path, limits: Limits) -> list[Path]:
    """Image files under ``top`` (hidden ones left out), sorted; a link (file or folder) that leads out of ``root``
    is refused, a linked folder inside it is not walked twice."""
    found: list[Path] = []
    for folder, dirs, files in os.walk(top, followlinks=False):
        here = Path(folder)
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for d in dirs:
            if (here / d).is_symlink():
                rel = (here / d).relative_to(top).as_posix()
                _inside(root, str(here / d), f"The inputs hold '{shown(rel)}', a link to a folder outside the inputs "
                                             "folder; copy the images in instead of linking them.")
        for f in files:
            p = here / f
            if f.startswith(".") or p.suffix.lower() not in IMAGE_EXT:
                continue
            real = _inside(root, str(p), f"The inputs hold '{shown(p.relative_to(top).as_posix())}', a link to a file "
                                         "outside the inputs folder; copy the file in instead of linking it.")
            if real.is_file():
                found.append(p)
            if len(found) > limits.run_rows:
                raise ImageError(f"The inputs hold more than {limits.run_rows:,} images; split them into several runs.")
    return sorted(found)


def _norm(s: str) -> str:
    return re.sub(r"[\s_\-]+", " ", s.strip().lower())


def match_classes(folders: list[str], labels: list[str]) -> list[int | None]:
    """The model class each folder names: by label (case, spaces, '_' and '-' ignored) or by index ('3', '003');
    None where it names none. The one rule for class folders (the CLI's class trees, the lab's own data)."""
    by_name = {_norm(lab): i for i, lab in reversed(list(enumerate(labels)))}
    out: list[int | None] = []
    for f in folders:
        if f.strip().isdigit() and int(f) < len(labels):
            out.append(int(f))
        else:
            out.append(by_name.get(_norm(f)))
    return out


def _class_index(names: list[str], labels: list[str]) -> dict[str, int]:
    """Every folder's class when each names one (:func:`match_classes`), else the folders numbered in sorted order."""
    matched = match_classes(names, labels)
    known = [m for m in matched if m is not None]
    if len(known) == len(matched):
        return dict(zip(names, known, strict=True))
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
    raise ImageError(f"CSV line {line}: the target is neither a class index below {len(labels)} nor one of the model's "
                     "class names; correct it or leave it empty (top-1 is explained).")


def read_csv(path: Path, labels: list[str], *, root: str | Path | None = None, limits: Limits = LIMITS) -> list[Item]:
    """Rows ``path,target,x0,y0,x1,y1`` of a CSV file, bounded like an uploaded box CSV; every path (relative to the
    CSV's folder, or absolute) must lie inside ``root`` (default: the CSV's folder)."""
    path = Path(path).resolve()
    base = Path(root).resolve() if root is not None else path.parent
    name = f"the CSV {shown(path.name)}"
    data = read_file(base, path, limits.run_file_bytes, name, ImageError)
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
                    vals = [float(v) for v in row[2:6]]
                    if len(vals) != 4 or not all(math.isfinite(v) and abs(v) <= limits.image_pixels for v in vals):
                        raise ValueError
                    box = (vals[0], vals[1], vals[2], vals[3])
                except ValueError:
                    raise ImageError(f"CSV line {i}: the box should be four pixel positions x0,y0,x1,y1; correct "
                                     "the numbers or leave them empty.") from None
            try:
                p = inside(base, row[0], f"CSV line {i} names a file outside the inputs folder; give paths inside it "
                                         "(relative to the CSV's folder).", base=path.parent)
            except PathError as e:
                msg = str(e) if str(e).startswith("CSV line") else f"CSV line {i}: {str(e)[:1].lower()}{str(e)[1:]}"
                raise ImageError(msg) from None
            key = p.relative_to(base).as_posix()  # the row's file named inside the root, never by its server path
            items[key] = Item(key, str(p), _target(row[1] if len(row) > 1 else "", labels, i), box, str(base))
    except csv.Error:
        raise ImageError(f"CSV line {reader.line_num} is not valid CSV; save it as plain comma-separated text.") from None
    if not items:
        raise ImageError(f"The CSV {shown(path.name)} names no images; write one path,target,x0,y0,x1,y1 row per image.")
    return list(items.values())


def discover(inputs: str | Path, labels: list[str], *, root: str | Path | None = None,
             limits: Limits = LIMITS) -> tuple[list[Item], str]:
    """The items of ``inputs`` and which layout was read (``folder``, ``classes`` or ``csv``). ``root``: the folder
    nothing may leave (the server's inputs root); default: ``inputs`` itself (a CSV's own folder)."""
    given = Path(inputs)
    if root is not None:
        given = _inside(Path(root), str(inputs), INPUTS_REFUSAL)
    name = shown(relative(given, *([root] if root is not None else [])))
    if given.is_file() and given.suffix.lower() == ".csv":
        return read_csv(given, labels, root=root, limits=limits), "csv"
    if not given.is_dir():
        raise ImageError(f"The inputs '{name}' are neither a folder of images nor a .csv file.")
    top = Path(root).resolve() if root is not None else given.resolve()
    folder = given.resolve()
    found = _images(folder, top, limits)
    if not found:
        raise ImageError(f"No images ({', '.join(IMAGE_EXT)}) under '{name}'.")
    for p in found:  # the inputs folder itself may lie under a link: every file must stay inside the root
        _inside(top, str(p), INPUTS_REFUSAL)
    rel = [p.relative_to(folder) for p in found]
    if all(len(r.parts) == 2 for r in rel):
        index = _class_index(sorted({r.parts[0] for r in rel}), labels)
        return [Item(r.as_posix(), str(p), index[r.parts[0]], None, str(top)) for r, p in zip(rel, found, strict=True)], \
            "classes"
    return [Item(r.as_posix(), str(p), None, None, str(top)) for r, p in zip(rel, found, strict=True)], "folder"


def read(item: Item, max_side: int = 1024, *, limits: Limits = LIMITS) -> Decoded:
    """The item decoded for the loop (RGB uint8, at most ``max_side`` px; its box kept as given, with the scale to
    this image); the file is read again through its root (a link swapped in since :func:`discover` is refused) and
    sized before it is read."""
    path = Path(item.path)
    root = Path(item.root) if item.root else path.parent
    data = read_file(root, path, limits.upload_bytes, f"the image {shown(item.key)}", ImageError)
    full = decode_image(data, limits=limits).array
    img = downscale(full, max_side)
    return Decoded(item.key, img, item.label, item.box, None, item.path, img.shape[1] / full.shape[1])


def load(item: Item, max_side: int = 1024, *, limits: Limits = LIMITS) -> tuple[np.ndarray, Box | None]:
    """The item's image (see :func:`read`) and its box in that image's pixels."""
    d = read(item, max_side, limits=limits)
    if d.box is None:
        return d.image, None
    x0, y0, x1, y1 = d.box
    s = d.scale
    return d.image, (x0 * s, y0 * s, x1 * s, y1 * s)
