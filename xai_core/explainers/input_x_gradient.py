"""Input × Gradient."""

from __future__ import annotations

import torch

from ..engine import input_gradients
from ..models.spec import ModelSpec
from ..registry import Cost, attribution
from ..result import Attribution


@attribution(
    "input_x_gradient", title="Input × Gradient", family="gradient", signed=True,
    summary="Gradient times the input: a first-order estimate of each pixel's contribution (signed).",
    reference="Shrikumar et al. 2016, 'Not Just a Black Box: Learning Important Features Through "
              "Propagating Activation Differences'. arXiv:1605.01713",
    cost=Cost(1, 1), reports_logits=True,
)
def attribute(model: ModelSpec, x: torch.Tensor, target: torch.Tensor) -> Attribution:
    """x ⊙ d score_c / d x (Shrikumar et al. 2016, arXiv:1605.01713), in the normalised input space."""
    g = input_gradients(model.module, x, target)
    return Attribution.of(x * g.grad, g.forward)
