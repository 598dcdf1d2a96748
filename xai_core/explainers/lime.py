"""LIME: a weighted linear surrogate over superpixels, fitted in closed form (no scikit-learn at run time)."""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial

import numpy as np
import torch

from .. import anytime
from ..models.spec import ModelSpec
from ..registry import Cost, Diagnostic, ParamSpec, Progress, explainer
from ..result import ExplainerResult
from . import superpixels as sp


def kernel_weights(z: np.ndarray, width: float) -> np.ndarray:
    """LIME's image kernel sqrt(exp(−d²/width²)), d = cosine distance of each coalition to the all-ones row.

    An all-zeros coalition has distance 1 (as scikit-learn's cosine distance gives for a zero vector).
    """
    on = z.sum(1)
    d = 1.0 - np.sqrt(on / z.shape[1])
    return np.sqrt(np.exp(-(d ** 2) / width ** 2))


def weighted_ridge(z: np.ndarray, y: np.ndarray, w: np.ndarray, alpha: float) -> tuple[np.ndarray, float, float]:
    """argmin Σ w_i (y_i − b − z_i·β)² + α‖β‖² (intercept not penalised, as scikit-learn's Ridge).

    Returns (β, b, weighted R²). Solved by least squares on the weighted, centred system stacked with √α·I,
    which also copes with α = 0 and rank-deficient designs.
    """
    sw = w / w.sum()
    zm, ym = sw @ z, sw @ y
    r = np.sqrt(w)[:, None]
    a = np.vstack([r * (z - zm), np.sqrt(alpha) * np.eye(z.shape[1])])
    rhs = np.concatenate([r[:, 0] * (y - ym), np.zeros(z.shape[1])])
    beta = np.linalg.lstsq(a, rhs, rcond=None)[0]
    b = float(ym - zm @ beta)
    resid = w @ (y - b - z @ beta) ** 2
    total = w @ (y - ym) ** 2
    r2 = 1.0 - resid / total if total > 0 else float(resid <= 1e-24)
    return beta, b, float(r2)


def _replicate(c: sp.Coalitions, kernel_width: float, alpha: float, weights: np.ndarray) -> np.ndarray:
    """The coefficients of one bootstrap replicate: each sample's kernel weight times its bootstrap ``weights``."""
    return weighted_ridge(c.z, c.y, kernel_weights(c.z, kernel_width) * weights, alpha)[0]


def lime_steps(model: ModelSpec, x: torch.Tensor, target: torch.Tensor, *, samples: int = 1000,
               segmentation: str = "slic", n_segments: int = 50, reference: str = "mean", score: str = "probability",
               kernel_width: float = 0.25, alpha: float = 1.0, progress: Progress | None = None, seed: int = 0,
               previews: bool = False) -> Iterator[ExplainerResult]:
    """LIME (Ribeiro et al. 2016, arXiv:1602.04938) fitted on the samples scored so far, at each refinement (with
    ``previews`` and one input) and on all of them last; uncertainty: the coefficients' Poisson bootstrap over the
    samples so far (the kernel weights times each sample's bootstrap weight), painted on the superpixels."""
    for got in sp.sample(model, x, target, sp.bernoulli_coalitions, samples=samples, segmentation=segmentation,
                         n_segments=n_segments, reference=reference, score=score, seed=seed, progress=progress,
                         desc="samples", previews=previews):
        fits = [weighted_ridge(c.z, c.y, kernel_weights(c.z, kernel_width), alpha) for c in got.runs]
        spreads = [sp.bootstrap_spread(partial(_replicate, c, kernel_width, alpha), len(c.z), seed, got.total)
                   for c in got.runs]
        yield ExplainerResult(sp.paint([f[0] for f in fits], got.runs, x), target, None, {
            **got.diagnostics, "coefficients": [f[0] for f in fits], "intercept": [f[1] for f in fits],
            "surrogate_r2": [f[2] for f in fits]}, sp.paint(spreads, got.runs, x), got.refinement())


@explainer(
    "lime", title="LIME", family="perturbation", signed=True, stochastic=True,
    taxonomy=("local", "black-box", "post-hoc", "model-agnostic"),
    summary="Hides random sets of superpixels, scores each perturbed image and fits a locally weighted linear "
            "model; each superpixel shows its coefficient.",
    reference="Ribeiro, Singh & Guestrin 2016, '\"Why Should I Trust You?\" Explaining the Predictions of Any "
              "Classifier', KDD. arXiv:1602.04938",
    cost=Cost(1, 0, per="samples"), steps=lime_steps,
    diagnostics=sp.DIAGNOSTICS + (
        Diagnostic("segments", "Superpixels and the top 5 kept", show="segments", weights="coefficients"),
        Diagnostic("surrogate_r2", "Surrogate R²", fmt="surrogate R² {:.2f}"),
        Diagnostic("coefficients", "Coefficients", show="data"),
        Diagnostic("intercept", "Intercept", show="data"),
    ),
    params=sp.params(1000) + (
        ParamSpec("kernel_width", "float", 0.25, "Kernel width", "Width of the exponential kernel on the cosine "
                  "distance to the full image: smaller trusts only samples with most superpixels kept.", 0.01, 10.0, 0.01),
        ParamSpec("alpha", "float", 1.0, "Ridge α", "L2 penalty of the surrogate's coefficients (LIME uses 1).",
                  0.0, 1000.0, 0.1),
    ),
)
def lime(model: ModelSpec, x: torch.Tensor, target: torch.Tensor, *, samples: int = 1000, segmentation: str = "slic",
         n_segments: int = 50, reference: str = "mean", score: str = "probability", kernel_width: float = 0.25,
         alpha: float = 1.0, progress: Progress | None = None, seed: int = 0) -> ExplainerResult:
    """LIME (Ribeiro et al. 2016, arXiv:1602.04938) with superpixel features, as the reference `lime_image`.

    Coalitions are Bernoulli(½) per superpixel (first row: the image), weighted by sqrt(exp(−d²/width²)) of their
    cosine distance d to the image; a weighted ridge regression with intercept gives one coefficient per
    superpixel. Diagnostics: 'segments', 'coefficients', 'intercept', 'surrogate_r2' (weighted R²), 'samples'.
    """
    return anytime.last(lime_steps(model, x, target, samples=samples, segmentation=segmentation,
                                   n_segments=n_segments, reference=reference, score=score, kernel_width=kernel_width,
                                   alpha=alpha, progress=progress, seed=seed))
