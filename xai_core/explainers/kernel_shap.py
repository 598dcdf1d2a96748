"""KernelSHAP over superpixels: Shapley values as a constrained linear regression on coalitions (shared sampling)."""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial

import numpy as np
import torch

from .. import anytime
from ..models.spec import ModelSpec
from ..registry import Cost, Diagnostic, Progress, explainer
from ..result import ExplainerResult
from . import superpixels as sp


def shapley_regression(z: np.ndarray, y: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """φ minimising Σ_i (y_i − f(∅) − z_i·φ)² subject to Σφ = f(x) − f(∅) (efficiency, exactly).

    ``z`` comes from :func:`superpixels.shapley_coalitions` (row 0: all ones, row 1: all zeros; the others drawn
    from the Shapley kernel, so they weigh the same). The constraint eliminates the last φ, as shap does.
    ``weights`` (one per row; rows 0 and 1 are kept as they are) weigh the squared residuals: a bootstrap replicate.
    """
    fx, f0 = y[0], y[1]
    delta, m = fx - f0, z.shape[1]
    if m == 1:
        return np.array([delta])
    a = z[2:, :-1] - z[2:, -1:]
    rhs = y[2:] - f0 - z[2:, -1] * delta
    if weights is not None:
        r = np.sqrt(weights[2:])
        a, rhs = a * r[:, None], rhs * r
    head = np.linalg.lstsq(a, rhs, rcond=None)[0]
    return np.append(head, delta - head.sum())


def kernel_shap_steps(model: ModelSpec, x: torch.Tensor, target: torch.Tensor, *, samples: int = 1000,
                      segmentation: str = "slic", n_segments: int = 50, reference: str = "mean",
                      score: str = "probability", progress: Progress | None = None, seed: int = 0,
                      previews: bool = False) -> Iterator[ExplainerResult]:
    """KernelSHAP (Lundberg & Lee 2017, arXiv:1705.07874) on the coalitions scored so far, at each refinement (with
    ``previews`` and one input) and on all of them last; uncertainty: the Shapley values' Poisson bootstrap over the
    sampled coalitions (the full and empty ones always in), painted on the superpixels."""
    for got in sp.sample(model, x, target, sp.shapley_coalitions, samples=samples, segmentation=segmentation,
                         n_segments=n_segments, reference=reference, score=score, seed=seed, progress=progress,
                         desc="samples", previews=previews):
        phis = [shapley_regression(c.z, c.y) for c in got.runs]
        spreads = [sp.bootstrap_spread(partial(shapley_regression, c.z, c.y), len(c.z), seed, got.total)
                   for c in got.runs]
        gaps = [abs(float(p.sum() - (c.y[0] - c.y[1]))) for p, c in zip(phis, got.runs, strict=True)]
        yield ExplainerResult(sp.paint(phis, got.runs, x), target, None, {
            **got.diagnostics, "shap_values": phis, "base_value": [float(c.y[1]) for c in got.runs],
            "efficiency_gap": gaps}, sp.paint(spreads, got.runs, x), got.refinement())


@explainer(
    "kernel_shap", title="KernelSHAP", family="perturbation", signed=True, stochastic=True,
    taxonomy=("local", "black-box", "post-hoc", "model-agnostic"),
    summary="Estimates each superpixel's Shapley value (its average contribution over coalitions of the others) "
            "by a kernel-weighted regression; the values add up to the score minus the all-hidden score.",
    reference="Lundberg & Lee 2017, 'A Unified Approach to Interpreting Model Predictions', NeurIPS. arXiv:1705.07874",
    cost=Cost(1, 0, per="samples"), params=sp.params(1000), steps=kernel_shap_steps,
    diagnostics=sp.DIAGNOSTICS + (
        Diagnostic("segments", "Superpixels and the top 5 kept", show="segments", weights="shap_values"),
        Diagnostic("efficiency_gap", "Efficiency gap", fmt="efficiency gap {:.2g}"),
        Diagnostic("shap_values", "Shapley values", show="data"),
        Diagnostic("base_value", "Score with every superpixel hidden", show="data"),
    ),
)
def kernel_shap(model: ModelSpec, x: torch.Tensor, target: torch.Tensor, *, samples: int = 1000,
                segmentation: str = "slic", n_segments: int = 50, reference: str = "mean", score: str = "probability",
                progress: Progress | None = None, seed: int = 0) -> ExplainerResult:
    """KernelSHAP (Lundberg & Lee 2017, arXiv:1705.07874) with superpixels as players.

    Coalition sizes are drawn from the Shapley-kernel distribution (as Captum and shap do; paired with their
    complements), the full and empty coalitions are always scored, and the regression is solved under the exact
    efficiency constraint Σφ = f(x) − f(∅). Diagnostics: 'segments', 'shap_values', 'base_value' (f(∅)),
    'efficiency_gap' (|Σφ − (f(x) − f(∅))|, zero up to rounding), 'samples'.
    """
    return anytime.last(kernel_shap_steps(model, x, target, samples=samples, segmentation=segmentation,
                                          n_segments=n_segments, reference=reference, score=score, progress=progress,
                                          seed=seed))
