"""Reference maps that give a score its meaning: a random map, a centre prior and an edge detector."""

from __future__ import annotations

import cv2
import numpy as np

RANDOM, CENTRE, EDGES = "Random map", "Centre Gaussian", "Edge detector (Sobel)"


def random_map(shape: tuple[int, int], seed: int = 0) -> np.ndarray:
    """Uniform noise: the chance level of every metric."""
    return np.random.default_rng(seed).random(shape, dtype=np.float32)


def centre_map(shape: tuple[int, int], sigma: float = 0.25) -> np.ndarray:
    """A Gaussian centred on the image (sigma a fraction of each side): photographers' centre bias."""
    h, w = shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    return np.exp(-(((yy - (h - 1) / 2) / (sigma * h)) ** 2 + ((xx - (w - 1) / 2) / (sigma * w)) ** 2) / 2)


def edge_map(image: np.ndarray) -> np.ndarray:
    """Sobel gradient magnitude of the grey image (OpenCV): a model-free map that 'looks like' saliency
    (Adebayo et al. 2018 show several explainers are close to it)."""
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float32) / 255.0
    gx = cv2.Sobel(grey, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(grey, cv2.CV_32F, 0, 1, ksize=3)
    return cv2.GaussianBlur(np.hypot(gx, gy), (0, 0), 1.0)


def reference_maps(image: np.ndarray, seed: int = 0) -> dict[str, np.ndarray]:
    """The three reference maps at the image's resolution (unsigned)."""
    shape = image.shape[:2]
    return {RANDOM: random_map(shape, seed), CENTRE: centre_map(shape), EDGES: edge_map(image)}
