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
from pathlib import PurePosixPath

import numpy as np

from ..errors import ImageError, XaiError
from ..images import downscale
from ..metrics.evaluate import box_region, mask_region
from ..metrics.sets import IMAGE_EXT
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


def _visible(name: str) -> bool:
    parts = PurePosixPath(name).parts
    return not name.endswith("/") and not any(p.startswith((".", "__MACOSX")) for p in parts)


def _strip_wrapper(paths: list[str]) -> int:
    """How many leading folders all paths share above the class folders (a zipped folder wraps everything in one)."""
    parts = [PurePosixPath(p).parts for p in paths]
    depth = 0
    while all(len(p) > depth + 2 for p in parts) and len({p[depth] for p in parts}) == 1:
        depth += 1
    return depth


def read_class_zip(data: bytes, limit: int = MAX_IMAGES) -> FolderSet:
    """Read a class-folder zip through the upload boundary; raise ImageError with the fix when it cannot be used."""
    limits = replace(LIMITS, upload_bytes=MAX_ZIP_BYTES, zip_member_bytes=MAX_FILE_BYTES)
    zipped = UploadZip(data, limits=limits, hint=f"Zip a folder with {LAYOUT}, and upload that.")
    names = [n for n in zipped.names if _visible(n)]
    files = [n for n in names if n.lower().endswith(IMAGE_EXT)]
    if not files:
        raise ImageError(f"The zip holds no images ({', '.join(IMAGE_EXT)}). Expected {LAYOUT}.")
    depth = _strip_wrapper(files)
    rel = {n: PurePosixPath(*PurePosixPath(n).parts[depth:]) for n in files}
    loose = [str(r) for r in rel.values() if len(r.parts) < 2]
    if loose:
        raise ImageError(f"{len(loose)} image(s) are not in a class folder ({', '.join(loose[:3])}…). Expected {LAYOUT}.")
    masks = {(r.parent, r.stem[:-5].lower()): n for n, r in rel.items() if r.stem.lower().endswith("_mask")}
    images = sorted((n for n, r in rel.items() if not r.stem.lower().endswith("_mask")), key=lambda n: str(rel[n]))
    notes = []
    if len(images) > limit:
        notes.append(f"{len(images)} images in the zip: the first {limit} (by path) are used.")
        images = images[:limit]
    boxes = _boxes(zipped, [n for n in names if n.lower().endswith("boxes.csv")], notes)
    out = FolderSet([], [], [], np.zeros(0, int), [], notes)
    for n in images:
        r = rel[n]
        try:
            img = zipped.image(n).array
        except MemberError as e:
            notes.append(f"{r} skipped: {e}")
            continue
        small = downscale(img, MAX_SIDE)
        try:
            region = _region(zipped, masks.get((r.parent, r.stem.lower())), boxes.get(r.name, boxes.get(str(r))), img.shape)
            region = None if region is None else mask_region(region.astype(np.uint8) * 255, small.shape[:2])
        except MemberError as e:
            notes.append(f"{r}: its mask or box is ignored ({e})")
            region = None
        except ImageError:
            raise  # the zip as a whole is over its limit: nothing more is read
        except XaiError as e:
            notes.append(f"{r}: its mask or box is ignored ({e})")
            region = None
        out.names.append(str(r))
        out.images.append(small)
        out.regions.append(region)
    if not out.names:
        raise ImageError("None of the images in the zip could be read: " + "; ".join(notes[-3:]))
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


def _region(zipped: UploadZip, mask_name: str | None, box: tuple | None, shape: tuple[int, ...]) -> np.ndarray | None:
    if mask_name is not None:
        return mask_region(zipped.image(mask_name).array, shape[:2])
    if box is not None:
        return box_region(shape[:2], box)
    return None


def example_zip(n: int = 80, seed: int = 5) -> bytes:
    """A class-folder zip of lab images (horse/, other/; tag on 60% of horses) with an object mask per image: the
    layout above, ready to upload with the lab CNN picked as the model."""
    from PIL import Image

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
