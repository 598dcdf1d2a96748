"""Decode and validate any uploaded image into RGB uint8; digests; bundled sample images.

Every failure is one :class:`ImageError` with a sentence the user can act on. Images that decode
but are unusual (16-bit, palette, CMYK, alpha, grayscale, animated, EXIF-rotated) are converted and
the conversion is reported in :attr:`DecodedImage.notes`, so nothing is silently lost.
"""

from __future__ import annotations

import hashlib
import io
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import ImageError

MAX_PIXELS = 50_000_000  # 50 MP: enough for any camera photo, refuses decompression bombs
MIN_SIDE = 8
MAX_BYTES = 200 * 1024 * 1024
FORMATS = ("PNG", "JPEG", "WebP", "TIFF", "BMP", "GIF")

_MAGIC = {
    b"PK\x03\x04": "a ZIP archive",
    b"%PDF": "a PDF document",
    b"\x1f\x8b": "a gzip archive",
    b"Rar!": "a RAR archive",
    b"7z\xbc\xaf": "a 7-Zip archive",
}


@dataclass
class DecodedImage:
    """An RGB uint8 image of shape (H, W, 3) and the conversions that produced it."""

    array: np.ndarray
    notes: list[str] = field(default_factory=list)


def _sniff(data: bytes) -> str | None:
    for magic, what in _MAGIC.items():
        if data.startswith(magic):
            return what
    return None


def _to_uint8(arr: np.ndarray) -> np.ndarray:
    """Scale a high-bit-depth or float array to 0..255 without clipping its range away."""
    if arr.dtype == np.uint8:
        return arr
    if arr.dtype == np.bool_:
        return arr.astype(np.uint8) * 255
    a = arr.astype(np.float64)
    if not np.isfinite(a).all():
        a = np.nan_to_num(a, nan=0.0, posinf=0.0, neginf=0.0)
    if np.issubdtype(arr.dtype, np.integer) and a.min() >= 0 and a.max() <= 65535:
        scale = 255.0 / 65535.0 if a.max() > 255 else 1.0
        return np.clip(np.round(a * scale), 0, 255).astype(np.uint8)
    lo, hi = float(a.min()), float(a.max())
    if hi <= lo:
        return np.zeros(arr.shape, np.uint8)
    return np.round((a - lo) / (hi - lo) * 255).astype(np.uint8)


def _flatten_alpha(im: Image.Image) -> Image.Image:
    rgba = im.convert("RGBA")
    white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(white, rgba).convert("RGB")


def _to_rgb(im: Image.Image, notes: list[str]) -> np.ndarray:
    mode = im.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        notes.append(f"{'16-bit' if mode.startswith('I;16') else mode + '-mode'} image scaled to 8 bits")
        gray = _to_uint8(np.asarray(im))
        return np.repeat(gray[..., None], 3, axis=2)
    if mode == "P" and ("transparency" in im.info):
        notes.append("palette image with transparency composited on white")
        return np.asarray(_flatten_alpha(im))
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        notes.append("alpha channel composited on white")
        return np.asarray(_flatten_alpha(im))
    if mode == "CMYK":
        notes.append("CMYK converted to RGB")
    elif mode in ("L", "1"):
        notes.append("grayscale image repeated to three channels")
    elif mode == "P":
        notes.append("palette image converted to RGB")
    elif mode != "RGB":
        notes.append(f"{mode} image converted to RGB")
    return np.asarray(im.convert("RGB"))


def decode_image(data: bytes) -> DecodedImage:
    """Decode bytes of any common image format into RGB uint8, reporting every conversion."""
    if not data:
        raise ImageError("The file is empty (0 bytes). Choose the image file again.")
    if len(data) > MAX_BYTES:
        raise ImageError(f"The file is {len(data) / 2**20:.0f} MB; files up to {MAX_BYTES // 2**20} MB are accepted. "
                         "Save a smaller or compressed copy.")
    other = _sniff(data)
    if other:
        raise ImageError(f"This file is {other}, not an image, whatever its name says. "
                         f"Upload one of: {', '.join(FORMATS)}.")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            im = Image.open(io.BytesIO(data))
            w, h = im.size
            if w * h > MAX_PIXELS:
                raise ImageError(f"The image is {w}×{h} ({w * h / 1e6:.0f} MP), over the {MAX_PIXELS / 1e6:.0f} MP limit "
                                 "(files this large can exhaust memory). Downscale it and upload it again.")
            notes: list[str] = []
            frames = getattr(im, "n_frames", 1)
            if frames > 1:
                im.seek(0)
                notes.append(f"animated image: the first of {frames} frames is used")
            im.load()
            rotated = ImageOps.exif_transpose(im)
            if rotated is not None and rotated is not im and im.getexif().get(0x0112, 1) != 1:
                notes.append("EXIF orientation applied")
                im = rotated
            arr = _to_rgb(im, notes)
    except ImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise ImageError(f"The image declares a size too large to decode safely ({e}). Downscale it.") from None
    except UnidentifiedImageError:
        raise ImageError(f"This file is not an image format we can read. Upload one of: {', '.join(FORMATS)}.") from None
    except (OSError, SyntaxError, ValueError, EOFError) as e:
        raise ImageError(f"The image file is truncated or corrupt ({e}). Re-export or re-download it and try again.") from None
    if min(arr.shape[:2]) < MIN_SIDE:
        raise ImageError(f"The image is {arr.shape[1]}×{arr.shape[0]} pixels; at least {MIN_SIDE}×{MIN_SIDE} is needed.")
    return DecodedImage(np.ascontiguousarray(arr, dtype=np.uint8), notes)


def load_image(data: bytes) -> np.ndarray:
    """Bytes of an uploaded file -> RGB uint8 array (H, W, 3); raises :class:`ImageError`."""
    return decode_image(data).array


def image_digest(image: np.ndarray) -> str:
    """A short content hash of an image array, used as a cache key."""
    h = hashlib.blake2b(digest_size=12)
    h.update(str(image.shape).encode())
    h.update(np.ascontiguousarray(image).tobytes())
    return h.hexdigest()


def downscale(image: np.ndarray, max_side: int = 1024) -> np.ndarray:
    """Shrink an image so its longer side is at most ``max_side`` (area filter); never enlarges."""
    h, w = image.shape[:2]
    if max(h, w) <= max_side:
        return image
    s = max_side / max(h, w)
    size = (max(1, round(w * s)), max(1, round(h * s)))
    return np.asarray(Image.fromarray(image).resize(size, Image.Resampling.BOX))


def _skimage(name: str) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        from skimage import data

        arr = getattr(data, name)()
        if arr.ndim == 2:
            arr = np.repeat(_to_uint8(arr)[..., None], 3, axis=2)
        return np.ascontiguousarray(_to_uint8(arr[..., :3]))

    return load


SAMPLES: dict[str, Callable[[], np.ndarray]] = {
    "Chelsea the cat": _skimage("chelsea"),
    "Coffee cup": _skimage("coffee"),
    "Astronaut": _skimage("astronaut"),
    "Rocket": _skimage("rocket"),
    "Horse silhouette": _skimage("horse"),
    "Grass texture": _skimage("grass"),
    "Brick texture": _skimage("brick"),
}


def sample_names() -> list[str]:
    """Names of the bundled sample images (they ship in scikit-image; no download)."""
    return list(SAMPLES)


def load_sample(name: str) -> np.ndarray:
    """One bundled sample image as RGB uint8."""
    if name not in SAMPLES:
        raise ImageError(f"Unknown sample {name!r}; choose one of {', '.join(SAMPLES)}.")
    return SAMPLES[name]()
