"""Your own data: a zip of an image folder with one subfolder per class, optional masks and boxes.

Layout (any single wrapping folder is ignored)::

    cats/001.jpg  cats/002.jpg  dogs/003.png ...     one subfolder per class; its name is the class
    cats/001_mask.png                                optional object mask: white object on black, any size
    boxes.csv                                        optional: filename,x0,y0,x1,y1 in the image's pixels
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass, field, replace

import numpy as np
from PIL import Image

from ..errors import XaiError
from ..metrics.evaluate import box_region
from ..metrics.sets import Item, read_items, visible
from ..untrusted import LIMITS, MemberError, UploadZip, parse_boxes
from .data import CLASSES, make_dataset

MAX_ZIP_BYTES = LIMITS.upload_bytes
MAX_IMAGES = LIMITS.class_zip_images
MAX_FILE_BYTES = LIMITS.zip_member_bytes  # one member (image, mask or boxes.csv), as actually inflated
MAX_SIDE = 320  # images are kept at most this large: enough for 224-px models, ~90 MB for 300 images
LAYOUT = "one subfolder per class, e.g. cats/001.jpg, dogs/002.jpg"


@dataclass
class FolderSet:
    """Images (RGB uint8, at most MAX_SIDE px), their class folder, and an object region where one was given."""

    names: list[str]
    images: list[np.ndarray]
    classes: list[str]
    labels: np.ndarray  # index into classes
    regions: list[np.ndarray | None]
    notes: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.names)

    def counts(self) -> dict[str, int]:
        return {c: int((self.labels == i).sum()) for i, c in enumerate(self.classes)}


def read_class_zip(data: bytes, limit: int = MAX_IMAGES) -> FolderSet:
    """Read a class-folder zip through the upload boundary and the one zip reader (:func:`metrics.sets.read_items`);
    raise ImageError with the fix when it cannot be used."""
    limits = replace(LIMITS, upload_bytes=MAX_ZIP_BYTES, zip_member_bytes=MAX_FILE_BYTES)
    zipped = UploadZip(data, limits=limits, hint=f"Zip a folder with {LAYOUT}, and upload that.")
    notes: list[str] = []
    boxes = _boxes(zipped, [n for n in zipped.names if visible(n) and n.lower().endswith("boxes.csv")], notes)
    items, read_notes = read_items(zipped, boxes=boxes, limit=limit, max_side=MAX_SIDE, classes=True, layout=LAYOUT)
    out = FolderSet([it.name for it in items], [it.image for it in items], [], np.zeros(0, int),
                    [_region(it, notes) for it in items], read_notes + notes)
    folder = [n.split("/", 1)[0] for n in out.names]
    out.classes = sorted(set(folder))
    out.labels = np.array([out.classes.index(f) for f in folder], int)
    return out


def _boxes(zipped: UploadZip, csvs: list[str], notes: list[str]) -> dict:
    """The boxes of the zip's (first) boxes.csv under the same limits: unreadable, it is a note; malformed, it is refused."""
    if not csvs:
        return {}
    try:
        return parse_boxes(zipped.read(csvs[0]), limits=zipped.limits)
    except MemberError as e:
        notes.append(f"{csvs[0]} is ignored: {e}")
        return {}


def _region(item: Item, notes: list[str]) -> np.ndarray | None:
    """The object region of an image: its mask, else its box (a box outside the image is a note)."""
    if item.region is not None or item.box is None:
        return item.region
    try:
        return box_region(item.image.shape[:2], item.box)
    except XaiError as e:
        notes.append(f"{item.name}: its mask or box is ignored ({e})")
        return None


def example_zip(n: int = 80, seed: int = 5) -> bytes:
    """A class-folder zip of lab images (horse/, other/; tag on 60% of horses) with an object mask per image: the
    layout above, ready to upload with the lab CNN picked as the model."""
    d = make_dataset(n, seed=seed, tag_fraction=0.6)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for i in range(n):
            stem = f"example/{CLASSES[d.labels[i]]}/{i:03d}" + ("_tag" if d.tagged[i] else "")
            for suffix, arr in (("", d.images[i]), ("_mask", d.masks[i].astype(np.uint8) * 255)):
                png = io.BytesIO()
                Image.fromarray(arr).save(png, format="PNG")
                zf.writestr(f"{stem}{suffix}.png", png.getvalue())
    return buf.getvalue()
