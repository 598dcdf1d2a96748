"""Uploaded bytes -> RGB uint8, through an explicit raster allow-list.

``Image.open`` is only ever asked for the formats in :data:`PIL_FORMATS`: none of their Pillow plugins starts a
process (Pillow's EPS plugin runs Ghostscript, which can read and write files), so no upload can reach one,
whatever its name. Documents are recognised by their first bytes and refused by name. Every failure is one
:class:`ImageError`; images that decode but are unusual (16-bit, palette, CMYK, alpha, grayscale, animated,
EXIF-rotated) are converted and the conversion is reported in :attr:`DecodedImage.notes`.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ..errors import ImageError
from .limits import LIMITS, MB, Limits
from .messages import short

FORMATS = ("PNG", "JPEG", "WebP", "TIFF", "BMP", "GIF")  # as users know them
PIL_FORMATS = tuple(f.upper() for f in FORMATS)  # Pillow's plugin ids: the allow-list itself

_MAGIC = {
    b"PK\x03\x04": "a ZIP archive",
    b"%PDF": "a PDF document",
    b"%!": "a PostScript/EPS document",
    b"\xc5\xd0\xd3\xc6": "an EPS document",  # the DOS EPS binary header
    b"\x1f\x8b": "a gzip archive",
    b"Rar!": "a RAR archive",
    b"7z\xbc\xaf": "a 7-Zip archive",
}
_MARKUP = (b"<?xml", b"<svg", b"<!doctype", b"<html", b"<!--")


@dataclass
class DecodedImage:
    """An RGB uint8 image of shape (H, W, 3) and the conversions that produced it."""

    array: np.ndarray
    notes: list[str] = field(default_factory=list)


def sniff_document(data: bytes) -> str | None:
    """What a non-image file is, from its first bytes (``"a PDF document"``), or None."""
    for magic, what in _MAGIC.items():
        if data.startswith(magic):
            return what
    head = data[:1024].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if head.startswith(_MARKUP):
        return "an SVG, XML or HTML document"
    if b"%PDF-" in data[:1024] and not data.startswith((b"\x89PNG", b"\xff\xd8", b"GIF8", b"BM", b"II", b"MM", b"RIFF")):
        return "a PDF document"  # PDF readers accept the header anywhere in the first kilobyte
    return None


def to_uint8(arr: np.ndarray) -> np.ndarray:
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
        gray = to_uint8(np.asarray(im))
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


def _frames_note(im: Image.Image, size: int, limits: Limits) -> str | None:
    if not getattr(im, "is_animated", False):
        return None
    if im.format in ("GIF", "TIFF") and size > limits.frame_count_bytes:
        return "animated image: the first frame is used"  # counting would walk the whole file
    return f"animated image: the first of {getattr(im, 'n_frames', 1)} frames is used"


def _decode(data: bytes, limits: Limits) -> tuple[np.ndarray, list[str]]:
    im: Image.Image = Image.open(io.BytesIO(data), formats=PIL_FORMATS)
    w, h = im.size
    if w * h > limits.image_pixels:
        raise ImageError(f"The image is {w}×{h} ({w * h / 1e6:.0f} MP), over the {limits.image_pixels / 1e6:.0f} MP limit "
                         "(files this large can exhaust memory). Downscale it and upload it again.")
    notes: list[str] = []
    frames = _frames_note(im, len(data), limits)
    if frames:
        im.seek(0)
        notes.append(frames)
    im.load()
    rotated = ImageOps.exif_transpose(im)
    if rotated is not None and rotated is not im and im.getexif().get(0x0112, 1) != 1:
        notes.append("EXIF orientation applied")
        im = rotated
    return _to_rgb(im, notes), notes


def decode_image(data: bytes, *, limits: Limits = LIMITS) -> DecodedImage:
    """Decode uploaded bytes of an allowed raster format into RGB uint8, reporting every conversion."""
    if not data:
        raise ImageError("The file is empty (0 bytes). Choose the image file again.")
    if len(data) > limits.upload_bytes:
        raise ImageError(f"The file is {len(data) / MB:.0f} MB; files up to {limits.upload_bytes // MB} MB are accepted. "
                         "Save a smaller or compressed copy.")
    other = sniff_document(data)
    if other:
        raise ImageError(f"This file is {other}, not an image, whatever its name says. "
                         f"Upload one of: {', '.join(FORMATS)}.")
    try:
        arr, notes = _decode(data, limits)
    except ImageError:
        raise
    except Image.DecompressionBombError as e:
        raise ImageError(f"The image declares a size too large to decode safely ({short(e)}). Downscale it.") from None
    except UnidentifiedImageError:
        raise ImageError(f"This file is not an image format we can read. Upload one of: {', '.join(FORMATS)}.") from None
    except MemoryError:
        raise ImageError("The image is too large to decode in the memory available. Downscale it.") from None
    except (OSError, SyntaxError, ValueError, EOFError) as e:
        raise ImageError(f"The image file is truncated or corrupt ({short(e)}). Re-export or re-download it and "
                         "try again.") from None
    except Exception as e:  # noqa: BLE001 - Pillow's plugins raise many types on hostile input
        raise ImageError(f"The image file is corrupt ({type(e).__name__}). Re-export or re-download it and try again.") from None
    if min(arr.shape[:2]) < limits.image_min_side:
        raise ImageError(f"The image is {arr.shape[1]}×{arr.shape[0]} pixels; at least {limits.image_min_side}×"
                         f"{limits.image_min_side} is needed.")
    return DecodedImage(np.ascontiguousarray(arr, dtype=np.uint8), notes)
