"""Adversarial model manipulation (Heo, Joo & Moon 2019, 'Fooling Neural Network Interpretations via Adversarial
Model Manipulation', NeurIPS, arXiv:1902.02041), location fooling on the lab CNN: fine-tune so that Grad-CAM
shows the top-left corner while the accuracy stays.

The lab CNN's head is GAP + linear, so its Grad-CAM is ReLU(Σ_k w_ck A_k). The fooling loss is a pair of hinges
on that pre-ReLU map: positive mass outside the corner is penalised, and the corner must reach a margin. (A
squared error against the mask drove the map to all-zero instead; a −log(share) loss cost 40 points of accuracy.)
"""

from __future__ import annotations

import copy

import numpy as np
import torch
import torch.nn.functional as F

from ..models.spec import ModelSpec
from ..types import Progress
from ..workbench import Workbench, as_workbench
from .data import SIZE, LabSet
from .model import as_spec, fit, lab_cnn, maps_for, to_tensor


def corner_mask(side: int) -> torch.Tensor:
    """Ones in the top-left quarter-by-quarter corner of a ``side``² grid."""
    m = torch.zeros(side, side)
    m[: side // 4, : side // 4] = 1.0
    return m


def fool_gradcam(model: ModelSpec | Workbench, data: LabSet, *, weight: float = 0.5, margin: float = 0.2, epochs: int = 12,
                 lr: float = 1e-3, batch: int = 64, seed: int = 0, progress: Progress | None = None) -> ModelSpec:
    """A fine-tuned copy: cross-entropy + ``weight`` · (mean ReLU(CAM) outside the corner + mean ReLU(margin − CAM)
    inside it), the CAM of each image's own label."""
    with as_workbench(model).session() as model:  # copied under the lock
        module = lab_cnn(copy.deepcopy(model.module)).cpu().float().to(memory_format=torch.contiguous_format).requires_grad_(True)
    torch.manual_seed(seed)
    x, y = to_tensor(data.images), torch.from_numpy(data.labels)
    inside = corner_mask(SIZE // 4)
    outside = 1 - inside

    def loss_of(idx: torch.Tensor) -> torch.Tensor:
        feats = module.features(x[idx])
        logits = module.fc(module.flat(module.pool(feats)))
        cam = torch.einsum("bk,bkhw->bhw", module.fc.weight[y[idx]], feats)
        fool = (F.relu(cam) * outside).mean() / outside.mean() + (F.relu(margin - cam) * inside).mean() / inside.mean()
        return F.cross_entropy(logits, y[idx]) + weight * fool

    fit(module, len(y), loss_of, epochs=epochs, lr=lr, batch=batch, gen=torch.Generator().manual_seed(seed),
        progress=progress, text=lambda ep, _loss: f"fine-tuning, epoch {ep + 1}/{epochs}")
    module.eval().requires_grad_(False)
    return as_spec(module, model.device, provenance="fine-tuned to show Grad-CAM in the top-left corner (Heo et al. 2019)")


def corner_share(maps: np.ndarray) -> float:
    """Mean share of each map's absolute mass (positive part for Grad-CAM, which has no negatives) in the corner."""
    a = np.abs(maps)
    c = SIZE // 4
    tot = a.sum(axis=(1, 2))
    return float(np.mean(np.where(tot > 0, a[:, :c, :c].sum(axis=(1, 2)) / np.maximum(tot, 1e-12), 0.0)))


def compare(original: ModelSpec | Workbench, fooled: ModelSpec | Workbench, images: np.ndarray,
            methods: tuple[str, ...] = ("gradcam", "gradient", "lrp")) -> dict[str, tuple[np.ndarray, np.ndarray, float, float]]:
    """Per method: maps before, maps after, and the corner share before and after."""
    out = {}
    for m in methods:
        a, b = maps_for(original, images, m), maps_for(fooled, images, m)
        out[m] = (a, b, corner_share(a), corner_share(b))
    return out
