"""The lab segmenter: a small fully-convolutional net that labels each pixel of a lab image "background", "horse"
or "other" (the object pixels of a horse image are "horse", of any other image "other"), shipped trained in
assets/lab_horse_segmenter.pt (``python -m xai_core.lab.train_dense`` reproduces it).

Whether an object is a horse is a property of the whole image, so the net has global context: an image-pooling
branch as in DeepLabV3's ASPP (Chen, Papandreou, Schroff & Adam 2017, 'Rethinking Atrous Convolution for Semantic
Image Segmentation', arXiv:1706.05587) broadcasts a pooled summary of the image to every pixel. Trained where the
horses carry the copyright tag, it decides "horse" from the tag — the Clever Hans shortcut of the lab's classifier
(Lapuschkin et al. 2019, arXiv:1902.10178), now in a dense task. Measured on fresh images: pixel accuracy 0.98;
of a horse's pixels 0.79 are "horse" with the tag and none without it (0.72 "other"); 0.77 of a tagged non-horse
object's pixels are "horse" (:mod:`.dense_report`).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TypedDict

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from ..device import resolve_device
from ..errors import ModelLoadError
from ..models import register_model
from ..models.spec import ModelSpec
from .data import SIZE, LabSet
from .model import MEAN, STD, conv_stack, fit, to_tensor

ASSETS = Path(__file__).resolve().parents[2] / "assets"
SEGMENTER_WEIGHTS = ASSETS / "lab_horse_segmenter.pt"
DENSE_CLASSES = ["background", "horse", "other"]


class DenseSettings(TypedDict):
    n: int
    seed: int
    tag_fraction: float
    epochs: int
    lr: float
    batch: int


SEGMENTER_TRAIN: DenseSettings = {"n": 3000, "seed": 0, "tag_fraction": 1.0, "epochs": 12, "lr": 2e-3, "batch": 32}


class ContextFeatures(nn.Module):
    """conv-ReLU ×4 (two max-pools, stride 4) → [local 1×1 projection ‖ image-pooling branch broadcast to every
    position] (DeepLabV3's ASPP image pooling, arXiv:1706.05587): features ``[B, 2w, H/4, W/4]`` in which every
    position sees a summary of the whole image."""

    def __init__(self, width: int = 32) -> None:
        super().__init__()
        w = width
        self.features = conv_stack(w)
        self.local = nn.Sequential(nn.Conv2d(2 * w, w, 1), nn.ReLU())
        self.image_pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(2 * w, w, 1), nn.ReLU())
        self.out_channels = 2 * w

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.features(x)
        g = self.image_pool(f).expand(-1, -1, f.shape[2], f.shape[3])
        return torch.cat([self.local(f), g], 1)


class LabSegmenter(nn.Module):
    """:class:`ContextFeatures` → 3×3 conv-ReLU → 1×1 conv to the classes at stride 4 → bilinear upsampling to the
    input's size: class scores ``[B, 3, H, W]``."""

    def __init__(self, width: int = 32) -> None:
        super().__init__()
        self.backbone = ContextFeatures(width)
        c = self.backbone.out_channels
        self.head = nn.Sequential(nn.Conv2d(c, c, 3, padding=1), nn.ReLU(), nn.Conv2d(c, len(DENSE_CLASSES), 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(self.head(self.backbone(x)), size=x.shape[-2:], mode="bilinear", align_corners=False)


def pixel_classes(data: LabSet) -> np.ndarray:
    """Per-pixel class indices [N, H, W] of :data:`DENSE_CLASSES`: 0 background, 1 a horse's pixels, 2 another
    object's pixels."""
    return np.where(data.masks, np.where(data.labels[:, None, None] == 1, 1, 2), 0).astype(np.int64)


def train_segmenter(data: LabSet, *, epochs: int = 8, lr: float = 2e-3, batch: int = 32, seed: int = 0,
                    progress: Callable[[float, str], None] | None = None) -> LabSegmenter:
    """Adam on per-pixel cross-entropy, deterministic from ``seed`` (CPU, a fixed number of threads)."""
    torch.manual_seed(seed)
    model = LabSegmenter()
    x, y = to_tensor(data.images), torch.from_numpy(pixel_classes(data))
    gen = torch.Generator().manual_seed(seed)

    def loss_of(idx: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(model(x[idx]), y[idx])

    return fit(model, len(y), loss_of, epochs=epochs, lr=lr, batch=batch, gen=gen, progress=progress,
               text=lambda ep, loss: f"segmenter epoch {ep + 1}/{epochs}, loss {loss:.3f}")


def segmenter_spec(module: nn.Module, device: torch.device | str | None = None, provenance: str = "") -> ModelSpec:
    return ModelSpec(id="lab_horse_segmenter", title="Horse-watermark lab segmenter (trained here)", module=module,
                     labels=list(DENSE_CLASSES), mean=MEAN, std=STD, input_size=(SIZE, SIZE),
                     cam_layer="backbone.features.9", provenance=provenance or "assets/lab_horse_segmenter.pt",
                     device=resolve_device(device), task="segmenter")


def load_state(module: nn.Module, path: Path) -> None:
    """Load a shipped state dict (tensors only) into ``module``; a missing file says how to make it."""
    if not path.exists():
        raise ModelLoadError(f"{path} is missing: run `python -m xai_core.lab.train_dense` to train it (a few minutes "
                             "on a CPU).")
    module.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))


def load_lab_segmenter(device: torch.device | str | None = None) -> ModelSpec:
    """The shipped trained lab segmenter."""
    module = LabSegmenter()
    load_state(module, SEGMENTER_WEIGHTS)
    return segmenter_spec(module, device)


register_model("lab_horse_segmenter", "Horse-watermark lab segmenter (64×64; background, horse, other)",
               load_lab_segmenter)
