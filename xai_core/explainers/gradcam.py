"""Grad-CAM."""

from __future__ import annotations

import torch

from ..models.spec import ModelSpec
from ..registry import Cost, explainer
from ..result import ExplainerResult
from .common import LAYER, activations_and_grads, upsample


@explainer(
    "gradcam", title="Grad-CAM", family="CAM",
    summary="Feature maps of a layer weighted by their average gradient, keeping the positive evidence.",
    reference="Selvaraju et al. 2017, 'Grad-CAM: Visual Explanations from Deep Networks via Gradient-based "
              "Localization', ICCV. arXiv:1610.02391",
    cost=Cost(1, 1, partial=True), params=(LAYER,), reports_logits=True,
)
def gradcam(model: ModelSpec, x: torch.Tensor, target: torch.Tensor, *, layer: str = "") -> ExplainerResult:
    """ReLU(Σ_k α_k A_k), α_k = mean over space of ∂y_c/∂A_k (Selvaraju et al. 2017, arXiv:1610.02391)."""
    acts, grads, fwd = activations_and_grads(model, x, target, layer)
    weights = grads.mean(dim=(2, 3), keepdim=True)
    return ExplainerResult.of(upsample(torch.relu((weights * acts).sum(dim=1)), model.input_size), fwd)
