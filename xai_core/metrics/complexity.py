"""Complexity of the map alone, at the model's input size: sparseness (Gini index, Chalasani et al. 2020) and
complexity (entropy of the relevance distribution, Bhatt et al. 2020). Neither needs the model: a concise map is easier
to read, but only a faithful one is worth reading, so read them next to the faithfulness metrics."""

from __future__ import annotations

import numpy as np

from .registry import metric


def shares(m: np.ndarray) -> np.ndarray:
    """|m| flattened, scaled by its maximum (Quantus's defaults: abs, normalise by max); all zeros stay zeros."""
    a = np.abs(np.nan_to_num(np.asarray(m, dtype=np.float64))).ravel()
    top = a.max() if a.size else 0.0
    return a / top if top > 0 else a


@metric("sparseness", title="Sparseness (Gini index)", short="Sparseness", order=90, kind="map", better="higher",
        passes="none (the map alone)", default=False,
        summary="Gini index of the map's absolute values: 1 = all relevance on one pixel, 0 = spread evenly.",
        reference="Chalasani, Chen, Chowdhury, Wu & Jha 2020, 'Concise Explanations of Neural Networks using "
                  "Adversarial Training', ICML. arXiv:1810.06583")
def sparseness(small_map: np.ndarray) -> float:
    """Gini index of |m| (Chalasani et al. 2020, arXiv:1810.06583): with a sorted ascending and a tiny 1e-7 added to
    every value (as Quantus, so an all-zero map is evenly spread: 0), Σ (2i − n − 1) a_i / (n Σ a_i). Higher =
    sparser (more concise)."""
    a = np.sort(shares(small_map)) + 1e-7
    n = a.size
    return float(((2 * np.arange(1, n + 1) - n - 1) * a).sum() / (n * a.sum()))


@metric("complexity", title="Complexity (entropy)", short="Complexity", order=92, kind="map", better="lower",
        passes="none (the map alone)", default=False,
        summary="Entropy of the map's absolute values as a distribution over pixels: low = few pixels carry it all.",
        reference="Bhatt, Weller & Moura 2020, 'Evaluating and Aggregating Feature-based Model Explanations', IJCAI. "
                  "arXiv:2005.00631")
def complexity(small_map: np.ndarray) -> float:
    """Entropy −Σ p_i ln p_i of p = |m| / Σ|m| (Bhatt et al. 2020, arXiv:2005.00631; natural log, Quantus's 1e-12
    inside the log); an all-zero map counts as evenly spread, ln n. Lower = less complex."""
    a = shares(small_map)
    total = a.sum()
    if total <= 0:
        return float(np.log(a.size))
    p = a / total
    return float(-(p * np.log(p + 1e-12)).sum())
