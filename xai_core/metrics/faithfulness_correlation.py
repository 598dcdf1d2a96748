"""Faithfulness correlation (Bhatt, Weller & Moura, IJCAI 2020): over random pixel subsets, does the map's relevance
summed on a subset predict how much the class score drops when that subset is removed?"""

from __future__ import annotations

import math

import numpy as np
import torch

from ..explainers.common import REFERENCES, reference_input
from ..models.spec import ModelSpec
from ..types import ParamSpec
from .registry import Outputs, Probe, metric

SCORES = ("logit", "probability")


def draw_subsets(pixels: int, runs: int, size: int, seed: int) -> np.ndarray:
    """``runs`` random subsets of ``size`` distinct pixel indices (row-major over H×W) each, ``[runs, size]``, drawn in
    order from one generator seeded with ``seed``: the same for every map, so maps are compared on the same subsets."""
    rng = np.random.default_rng(seed)
    return np.stack([rng.choice(pixels, size, replace=False) for _ in range(runs)])


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson's correlation of two 1-D arrays; NaN when either is constant (no correlation is defined)."""
    a, b = a - a.mean(), b - b.mean()
    den = math.sqrt(float(a @ a) * float(b @ b))
    return float(a @ b) / den if den > 0 else math.nan


@metric("faithfulness_correlation", title="Faithfulness correlation", short="Faithfulness corr.", order=36,
        kind="probe", better="higher", default=False, passes="subsets forward passes (+1 shared)",
        summary="Correlation, over random pixel subsets, between the map's relevance on a subset and the drop of the "
                "class score when that subset is removed.",
        reference="Bhatt, Weller & Moura 2020, 'Evaluating and Aggregating Feature-based Model Explanations', "
                  "IJCAI. arXiv:2005.00631",
        params=(ParamSpec("subsets", "int", 100, "Subsets", "How many random subsets (Quantus's nr_runs).", 3, 1000, 1),
                ParamSpec("subset_size", "int", 224, "Subset size (px)",
                          "Pixels per subset, every channel of each (Quantus's subset_size counts single values).",
                          1, 100000, 1),
                ParamSpec("baseline", "choice", "black", "Removed pixels become",
                          "What a removed pixel is replaced with (noise: one seeded noise image).", choices=REFERENCES),
                ParamSpec("score", "choice", "logit", "Class score", "The logit (as Quantus by default) or the "
                          "softmax probability.", choices=SCORES)))
def faithfulness_correlation(model: ModelSpec, x: torch.Tensor, small_map: torch.Tensor, *, subsets: int = 100,
                             subset_size: int = 224, baseline: str = "black", score: str = "logit",
                             seed: int = 0) -> Probe:
    """µ-fidelity (Bhatt et al. 2020, arXiv:2005.00631): Pearson's correlation over subsets S of Σ_{i∈S} m_i and
    f(x) − f(x with S replaced by the baseline). Higher = more faithful; NaN for a constant map."""
    h, w = small_map.shape
    notes = []
    size = min(subset_size, h * w // 2)
    if size < subset_size:
        notes.append(f"the subset size was cut to {size} pixels, half the input's {h}×{w} (larger subsets leave "
                     "too little for the scores to vary).")
    picks = draw_subsets(h * w, subsets, size, seed)
    fill = reference_input(model, x, baseline, seed)
    flat_map = small_map.detach().double().cpu().flatten().numpy()
    idx = torch.from_numpy(picks)

    def make(a: int, b: int) -> torch.Tensor:
        out = x.expand(b - a, -1, -1, -1).reshape(b - a, x.shape[1], h * w).clone()
        src = fill.reshape(1, x.shape[1], h * w)
        for j, k in enumerate(range(a, b)):
            cols = idx[k].to(x.device)
            out[j][:, cols] = src[0][:, cols]
        return out.view(b - a, x.shape[1], h, w)

    def correlation(o: Outputs) -> float:
        ys, base = o.score(score)
        value = pearson(flat_map[picks].sum(1), base - ys)
        if math.isnan(value):
            notes.append("undefined: the map (or the score) is the same on every subset.")
        return value

    return Probe(subsets, make, correlation, notes=notes)

