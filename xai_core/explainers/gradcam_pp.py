"""Grad-CAM++."""

from __future__ import annotations

import torch

from ..models.spec import ModelSpec
from ..registry import Cost, explainer
from ..result import ExplainerResult
from .common import LAYER, activations_and_grads, upsample


@explainer(
    "gradcam_pp", title="Grad-CAM++", family="CAM",
    summary="Grad-CAM with pixel-wise weights on positive gradients; better with several instances of a class.",
    reference="Chattopadhay et al. 2018, 'Grad-CAM++: Generalized Gradient-based Visual Explanations for Deep "
              "Convolutional Networks', WACV. arXiv:1710.11063",
    cost=Cost(1, 1, partial=True), params=(LAYER,), reports_logits=True,
)
def gradcam_pp(model: ModelSpec, x: torch.Tensor, target: torch.Tensor, *, layer: str = "") -> ExplainerResult:
    """Grad-CAM++ weights with the exponential-score closed form (Chattopadhay et al. 2018, arXiv:1710.11063)."""
    acts, grads, fwd = activations_and_grads(model, x, target, layer)
    g2 = grads.pow(2)
    denom = 2 * g2 + acts.sum(dim=(2, 3), keepdim=True) * g2 * grads
    alpha = torch.where(grads != 0, g2 / (denom + 1e-7), torch.zeros_like(grads))
    weights = (torch.relu(grads) * alpha).sum(dim=(2, 3), keepdim=True)
    return ExplainerResult.of(upsample(torch.relu((weights * acts).sum(dim=1)), model.input_size), fwd)
