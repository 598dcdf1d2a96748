"""Guided Grad-CAM: Guided Backprop composed with Grad-CAM (no copy of either)."""

from __future__ import annotations

from typing import Any

import torch

from ..models.spec import ModelSpec
from ..registry import Cost, attribution
from . import guided_backprop
from .common import LAYER
from .gradcam import gradcam


@attribution(
    "guided_gradcam", title="Guided Grad-CAM", family="CAM",
    summary="Guided Backprop's fine detail masked by Grad-CAM's class-discriminative regions.",
    reference="Selvaraju et al. 2017, 'Grad-CAM: Visual Explanations from Deep Networks via Gradient-based "
              "Localization', ICCV. arXiv:1610.02391",
    cost=Cost(2, 2), params=(LAYER,), reports_logits=True, applies=guided_backprop.applies,
    diagnostics=(guided_backprop.GUIDED,),
)
def attribute(model: ModelSpec, x: torch.Tensor, target: torch.Tensor, *, layer: str = "",
              **kw: Any) -> torch.Tensor:
    """Guided Backprop ⊙ upsampled Grad-CAM (Selvaraju et al. 2017, arXiv:1610.02391)."""
    return guided_backprop.attribute(model, x, target, **kw) * gradcam(model, x, target, layer=layer).unsqueeze(1)
