"""Guided Grad-CAM: Guided Backprop composed with Grad-CAM (no copy of either)."""

from __future__ import annotations

import torch

from ..models.spec import ModelSpec
from ..registry import Cost, attribution
from ..result import Attribution
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
def attribute(model: ModelSpec, x: torch.Tensor, target: torch.Tensor, *, layer: str = "") -> Attribution:
    """Guided Backprop ⊙ upsampled Grad-CAM (Selvaraju et al. 2017, arXiv:1610.02391).

    Guided Backprop's forward is the first: it decides a top-1 target, which Grad-CAM then explains too."""
    guided = guided_backprop.attribute(model, x, target)
    cam = gradcam(model, x, guided.target, layer=layer)
    return Attribution(guided.values * cam.maps.unsqueeze(1), guided.target, guided.logits, guided.diagnostics)
