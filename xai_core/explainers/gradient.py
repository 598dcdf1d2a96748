"""Gradient (vanilla saliency)."""

from __future__ import annotations

import torch

from ..engine import input_gradients
from ..models.spec import ModelSpec
from ..registry import Cost, attribution
from ..result import Attribution


@attribution(
    "gradient", title="Gradient (saliency)", family="gradient",
    summary="How much each pixel's change would change the class score, to first order.",
    reference="Simonyan, Vedaldi & Zisserman 2014, 'Deep Inside Convolutional Networks: Visualising Image "
              "Classification Models and Saliency Maps', ICLR workshop. arXiv:1312.6034",
    cost=Cost(1, 1), reports_logits=True,
)
def attribute(model: ModelSpec, x: torch.Tensor, target: torch.Tensor) -> Attribution:
    """d score_c / d x (Simonyan et al. 2014, arXiv:1312.6034)."""
    g = input_gradients(model.module, x, target)
    return Attribution.of(g.grad, g.forward)
