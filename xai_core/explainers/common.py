"""Pieces shared by several explainers (not registered themselves)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..engine import select
from ..hooks import capture
from ..models.spec import ModelSpec
from ..registry import ParamSpec

LAYER = ParamSpec("layer", "layer", "", "Layer",
                  "Layer whose feature maps are weighted; empty means the model's last convolutional block.")


def upsample(maps: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Coarse maps ``[B, h, w]`` -> ``[B, H, W]`` by bilinear interpolation."""
    return F.interpolate(maps.unsqueeze(1), size=size, mode="bilinear", align_corners=False).squeeze(1)


def activations_and_grads(model: ModelSpec, x: torch.Tensor, target: torch.Tensor,
                          layer: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Feature maps ``A`` at ``layer`` and d logit[target] / dA, both ``[B, C, h, w]``.

    Backward stops at the layer: nothing below it is differentiated.
    """
    with torch.enable_grad(), capture(model.submodule(layer), leaf=True) as rec:
        score = select(model.module(x), target)
        act = rec.activation
        if act is None or not act.requires_grad:
            from ..errors import ExplainerError

            raise ExplainerError(f"The layer {layer or model.cam_layer!r} is not used on the way to the output; "
                                 "choose another layer.")
        (grad,) = torch.autograd.grad(score.sum(), act)
    return model.as_grid(act.detach()).float(), model.as_grid(grad).float()
