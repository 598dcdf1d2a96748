"""Gradient (vanilla saliency)."""

from __future__ import annotations

from typing import Any

import torch

from ..engine import input_gradients
from ..models.spec import ModelSpec
from ..registry import Cost, attribution


@attribution(
    "gradient", title="Gradient (saliency)", family="gradient",
    summary="How much each pixel's change would change the class score, to first order.",
    reference="Simonyan, Vedaldi & Zisserman 2014, 'Deep Inside Convolutional Networks: Visualising Image "
              "Classification Models and Saliency Maps', ICLR workshop. arXiv:1312.6034",
    cost=Cost(1, 1), reports_logits=True,
)
def attribute(model: ModelSpec, x: torch.Tensor, target: torch.Tensor, **_: Any) -> torch.Tensor:
    """d score_c / d x (Simonyan et al. 2014, arXiv:1312.6034)."""
    return input_gradients(model.module, x, target, report=True)[0]
