"""SpRAy, Spectral Relevance Analysis (Lapuschkin et al. 2019, 'Unmasking Clever Hans predictors and assessing
what machines really learn', Nature Communications, arXiv:1902.10178): cluster a class's heatmaps to find the
strategies a model uses — without knowing in advance that a watermark is one of them."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from scipy.cluster.vq import kmeans2


@dataclass
class SprayResult:
    labels: np.ndarray  # cluster of each heatmap
    k: int  # chosen by the largest eigengap
    eigenvalues: np.ndarray  # smallest eigenvalues of the normalised graph Laplacian
    means: np.ndarray  # mean (downsized, normalised) heatmap per cluster [k, side, side]

    def purity(self, truth: np.ndarray) -> float:
        """Share of heatmaps whose cluster's majority label is their own label."""
        hits = sum(np.bincount(truth[self.labels == c]).max() for c in np.unique(self.labels))
        return float(hits / len(truth))


def spray(maps: np.ndarray, *, side: int = 16, neighbours: int = 10, max_k: int = 8, k: int | None = None,
          seed: int = 0) -> SprayResult:
    """Downsize |heatmaps| to ``side``², normalise each to sum 1, build a symmetric k-nearest-neighbour graph,
    take the eigenvectors of its normalised Laplacian, choose the number of clusters at the largest eigengap
    (or use ``k``), and cluster the spectral embedding with k-means."""
    n = len(maps)
    if n < 4:
        raise ValueError("SpRAy needs at least 4 heatmaps.")
    small = np.stack([cv2.resize(np.abs(m).astype(np.float32), (side, side), interpolation=cv2.INTER_AREA) for m in maps])
    flat = small.reshape(n, -1)
    flat = flat / np.maximum(flat.sum(1, keepdims=True), 1e-12)
    d = ((flat[:, None, :] - flat[None, :, :]) ** 2).sum(-1)
    nn = np.argsort(d, axis=1)[:, 1:min(neighbours, n - 1) + 1]
    a = np.zeros((n, n))
    a[np.repeat(np.arange(n), nn.shape[1]), nn.ravel()] = 1.0
    a = np.maximum(a, a.T)
    deg = a.sum(1)
    dinv = 1.0 / np.sqrt(np.maximum(deg, 1e-12))
    lap = np.eye(n) - dinv[:, None] * a * dinv[None, :]
    vals, vecs = np.linalg.eigh(lap)
    m = min(max_k, n - 1)
    if k is None:
        k = int(np.argmax(np.diff(vals[:m + 1]))) + 1
        k = max(k, 2)
    emb = vecs[:, :k]
    emb = emb / np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)
    rng = np.random.default_rng(seed)
    _, labels = kmeans2(emb, k, minit="++", seed=rng)
    means = np.stack([small[labels == c].mean(0) if (labels == c).any() else np.zeros((side, side)) for c in range(k)])
    return SprayResult(labels, k, vals[:m + 1], means)
