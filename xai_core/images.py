"""Uploaded images (decoded by the upload boundary, :mod:`xai_core.untrusted`); digests; bundled sample images.

:func:`decode_image` lives in :mod:`xai_core.untrusted.raster` (the one place uploaded bytes are opened, through a
raster allow-list) and is re-exported here with the limits under their historical names.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import numpy as np
from PIL import Image

from .errors import ImageError
from .untrusted.limits import LIMITS
from .untrusted.raster import FORMATS, DecodedImage, decode_image, to_uint8

MAX_PIXELS = LIMITS.image_pixels
MIN_SIDE = LIMITS.image_min_side
MAX_BYTES = LIMITS.upload_bytes

__all__ = ["FORMATS", "MAX_BYTES", "MAX_PIXELS", "MIN_SIDE", "DecodedImage", "decode_image", "downscale", "image_digest",
           "load_image", "load_sample", "sample_names"]


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
            arr = np.repeat(to_uint8(arr)[..., None], 3, axis=2)
        return np.ascontiguousarray(to_uint8(arr[..., :3]))

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


EXTRA_SAMPLES: dict[str, Callable[[], np.ndarray]] = {}  # registered by other modules (the lab's synthetic images)


def register_sample(name: str, loader: Callable[[], np.ndarray]) -> None:
    """Add a sample image to the sidebar's list (:func:`all_sample_names`), e.g. the lab's synthetic horses
    (registered by :mod:`xai_core.lab`); sets built from "the bundled samples" (:func:`sample_names`) keep the photos."""
    EXTRA_SAMPLES[name] = loader


def sample_names() -> list[str]:
    """Names of the bundled sample photos (they ship in scikit-image; no download)."""
    return list(SAMPLES)


def all_sample_names() -> list[str]:
    """The photos and the registered extra samples: what a visitor can pick."""
    return [*SAMPLES, *EXTRA_SAMPLES]


def load_sample(name: str) -> np.ndarray:
    """One bundled sample image as RGB uint8."""
    loader = SAMPLES.get(name) or EXTRA_SAMPLES.get(name)
    if loader is None:
        raise ImageError(f"Unknown sample {name!r}; choose one of {', '.join(all_sample_names())}.")
    return loader()
