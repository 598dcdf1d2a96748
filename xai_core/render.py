"""Normalisation, colour maps, overlays and the PNG grid: the only place maps are made pretty."""

from __future__ import annotations

import io

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

COLORMAPS = {"inferno": cv2.COLORMAP_INFERNO, "jet": cv2.COLORMAP_JET, "viridis": cv2.COLORMAP_VIRIDIS,
             "turbo": cv2.COLORMAP_TURBO, "magma": cv2.COLORMAP_MAGMA}


def normalise(m: np.ndarray, signed: bool, clip_percentile: float = 99.5) -> np.ndarray:
    """Scale a raw map for display: [0, 1] for unsigned maps, [-1, 1] for signed ones.

    The scale is a high percentile of |m| so one extreme pixel does not wash the map out.
    A constant map becomes all zeros (never NaN).
    """
    # float64 arithmetic: after nan_to_num, ±inf are ±float32-max and their difference would overflow to inf.
    m = np.nan_to_num(m.astype(np.float32)).astype(np.float64)
    if m.size == 0 or m.max() == m.min():
        return np.zeros(m.shape, dtype=np.float32)
    if not signed:
        m = m - m.min()
    scale = float(np.percentile(np.abs(m), clip_percentile))
    if scale <= 0:
        scale = float(np.abs(m).max())
    if scale <= 0:
        return np.zeros_like(m, dtype=np.float32)
    return np.clip(m / scale, -1.0 if signed else 0.0, 1.0).astype(np.float32)


def _diverging(v: np.ndarray) -> np.ndarray:
    """Blue (-1) - white (0) - red (+1) as uint8 RGB."""
    v = np.clip(v, -1, 1)[..., None]
    blue, white, red = np.array([33, 102, 172.]), np.array([247, 247, 247.]), np.array([178, 24, 43.])
    out = np.where(v < 0, white + (blue - white) * -v, white + (red - white) * v)
    return out.astype(np.uint8)


def colorize(m: np.ndarray, signed: bool, cmap: str = "inferno", *, scale: float | None = None) -> np.ndarray:
    """A raw map -> RGB uint8 heatmap (diverging colours for signed maps). ``scale``: the value drawn in full colour,
    fixed (maps compared on one scale); by default a high percentile of the map's own |values| (``normalise``)."""
    v = normalise(m, signed) if scale is None else \
        np.clip(np.nan_to_num(m.astype(np.float32)) / scale, -1.0 if signed else 0.0, 1.0)
    if signed:
        return _diverging(v)
    bgr = cv2.applyColorMap((v * 255).astype(np.uint8), COLORMAPS.get(cmap, cv2.COLORMAP_INFERNO))
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def overlay(image: np.ndarray, m: np.ndarray, signed: bool, alpha: float = 0.5, cmap: str = "inferno") -> np.ndarray:
    """Heatmap blended over the image; weak attributions leave the photo visible."""
    heat = colorize(m, signed, cmap).astype(np.float32)
    strength = np.sqrt(np.abs(normalise(m, signed)))[..., None] if signed else 1.0
    a = alpha * strength
    return (image.astype(np.float32) * (1 - a) + heat * a).clip(0, 255).astype(np.uint8)


def to_png(image: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG")
    return buf.getvalue()


def grid_png(image: np.ndarray, panels: list[tuple[str, np.ndarray]], *, tile: int = 320, cols: int = 4) -> bytes:
    """The input and titled RGB panels laid out in a grid, as PNG bytes (for downloads)."""
    items = [("Input", image), *panels]
    cols = max(1, min(cols, len(items)))
    rows = -(-len(items) // cols)
    pad, caption = 8, 40
    font = ImageFont.load_default(size=15)
    sheet = Image.new("RGB", (cols * (tile + pad) + pad, rows * (tile + caption + pad) + pad), "white")
    draw = ImageDraw.Draw(sheet)
    for i, (title, arr) in enumerate(items):
        r, c = divmod(i, cols)
        x0, y0 = pad + c * (tile + pad), pad + r * (tile + caption + pad)
        im = Image.fromarray(arr)
        im.thumbnail((tile, tile))
        sheet.paste(im, (x0 + (tile - im.width) // 2, y0 + caption))
        for j, line in enumerate(title.split("\n")[:2]):
            draw.text((x0, y0 + j * 18), line[:42], fill=(20, 20, 20), font=font)
    return to_png(np.asarray(sheet))


def superpixel_boundaries(image: np.ndarray, segments: np.ndarray) -> np.ndarray:
    """The image (resized to the segmentation) with superpixel boundaries drawn in yellow."""
    from skimage.segmentation import find_boundaries

    img = cv2.resize(image, segments.shape[::-1], interpolation=cv2.INTER_AREA).copy()
    img[find_boundaries(segments, mode="inner")] = (255, 221, 0)
    return img


def top_superpixels(image: np.ndarray, segments: np.ndarray, weights: np.ndarray, k: int = 5) -> np.ndarray:
    """Only the ``k`` superpixels with the largest positive weight kept; the rest greyed out (LIME's figure)."""
    img = cv2.resize(image, segments.shape[::-1], interpolation=cv2.INTER_AREA)
    order = [int(i) for i in np.argsort(-weights)[:k] if weights[i] > 0]
    keep = np.isin(segments, order)[..., None]
    grey = np.full_like(img, 200)
    return np.where(keep, img, (0.25 * img + 0.75 * grey).astype(np.uint8))
