"""Lesson 3: a class activation map is a weighted sum of a layer's feature maps (Grad-CAM's weights shown)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..explainers.common import activations_and_grads, upsample
from ..workbench import Workbench


@dataclass
class CamParts:
    """The pieces of Grad-CAM at ``layer``: the ``channels`` with the largest |weight × mean activation|, their
    ``weights`` (mean gradient) and ``features`` (activations), and the sum with and without the ReLU (model input
    size). ``negative_share`` is the part of the weighted sum's absolute mass the ReLU throws away."""

    layer: str
    channels: list[int]
    weights: np.ndarray
    contributions: np.ndarray
    features: np.ndarray  # [k, h, w]
    signed: np.ndarray  # Σ_k α_k A_k, upsampled
    gradcam: np.ndarray  # ReLU of it
    negative_share: float
    channel_count: int


def cam_parts(wb: Workbench, image: np.ndarray, target: int, *, layer: str = "", top: int = 6) -> CamParts:
    """Grad-CAM of class ``target`` at ``layer`` (empty: the model's CAM layer), taken apart."""
    with wb.session() as model:
        x = model.preprocess(image).to(model.device)
        acts, grads, _ = activations_and_grads(model, x, torch.tensor([int(target)], device=x.device), layer)
        name = layer or model.cam_layer or ""
        weights = grads.mean(dim=(2, 3))[0]
        contrib = weights * acts[0].mean(dim=(1, 2))
        order = torch.argsort(-contrib.abs())[:top]
        signed = (weights.view(-1, 1, 1) * acts[0]).sum(0, keepdim=True)
        up = upsample(signed, model.input_size)[0]
        relu = upsample(torch.relu(signed), model.input_size)[0]  # ReLU first, then upsampled, as Grad-CAM does
    neg = float(signed.clamp_max(0).abs().sum() / signed.abs().sum().clamp_min(1e-12))
    return CamParts(name, [int(i) for i in order], weights[order].cpu().numpy(), contrib[order].cpu().numpy(),
                    acts[0, order].cpu().numpy(), up.cpu().numpy(), relu.cpu().numpy(), neg, int(len(weights)))
