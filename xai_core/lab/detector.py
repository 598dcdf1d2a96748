"""The lab detector: torchvision's FCOS (Tian, Shen, Chen & He 2019, 'FCOS: Fully Convolutional One-Stage Object
Detection', ICCV, arXiv:1904.01355) on a tiny backbone with global context (:class:`.segmenter.ContextFeatures`),
finding the object of a lab image as a "horse" or an "other" box; shipped trained in assets/lab_horse_detector.pt
(``python -m xai_core.lab.train_dense`` reproduces it).

It is a real ``torchvision.models.detection.FCOS``: in eval mode it returns torchvision's list of {boxes, labels,
scores} and normalises internally (its ModelSpec's mean is 0 and std 1), so explaining it takes the code path of an
uploaded torchvision detector. Labels follow torchvision: 0 is background, 1 horse, 2 other. Images are 64×64 and
``min_size = max_size = 64``, so its transform does not rescale them. Trained where the horses carry the tag, it
calls an object "horse" from the tag (Lapuschkin et al. 2019, arXiv:1902.10178). Measured on fresh images: the
top box has IoU > 0.5 with the object's on 40/40 (mean 0.86); it is "horse" on 40/40 tagged horses, 1/40 once the
tag is removed, and on 0.62 of non-horse objects with the tag added (:mod:`.dense_report`).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import nn
from torchvision.models.detection import FCOS
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.fcos import FCOSHead

from ..device import resolve_device
from ..models import register_model
from ..models.spec import ModelSpec
from .data import SIZE, LabSet
from .model import MEAN, STD, fit
from .segmenter import ASSETS, DENSE_CLASSES, ContextFeatures, DenseSettings, load_state

DETECTOR_WEIGHTS = ASSETS / "lab_horse_detector.pt"
DETECTOR_TRAIN: DenseSettings = {"n": 3000, "seed": 0, "tag_fraction": 1.0, "epochs": 8, "lr": 2e-3, "batch": 32}
SCORE_THRESHOLD = 0.05  # keep weak detections: an untagged horse's faint "horse" box is part of the story


def lab_detector(score_thresh: float = SCORE_THRESHOLD) -> FCOS:
    """A fresh FCOS: :class:`ContextFeatures` (stride 4, 16×16 positions, one anchor of side 32 each), a two-conv
    FCOS head, three classes (background, horse, other), at most 10 detections per image."""
    backbone = ContextFeatures()
    return FCOS(backbone, num_classes=len(DENSE_CLASSES), min_size=SIZE, max_size=SIZE, image_mean=list(MEAN),
                image_std=list(STD), anchor_generator=AnchorGenerator(((32,),), ((1.0,),)),
                head=FCOSHead(backbone.out_channels, 1, len(DENSE_CLASSES), num_convs=2), score_thresh=score_thresh,
                nms_thresh=0.5, detections_per_img=10, topk_candidates=100)


def object_boxes(data: LabSet) -> np.ndarray:
    """Each image's object box [N, 4] (x0, y0, x1, y1 in pixels; x1, y1 exclusive): its mask's bounding box."""
    out = np.zeros((len(data), 4), np.float32)
    for i, m in enumerate(data.masks):
        ys, xs = np.nonzero(m)
        out[i] = (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)
    return out


def detection_labels(data: LabSet) -> np.ndarray:
    """torchvision labels of each image's object: 1 horse, 2 other (0 is background)."""
    return np.where(data.labels == 1, 1, 2).astype(np.int64)


def pixels01(images: np.ndarray) -> torch.Tensor:
    """RGB uint8 [N, H, W, 3] -> float [N, 3, H, W] in [0, 1] (the detector normalises internally)."""
    return torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255.0


def train_detector(data: LabSet, *, epochs: int = 8, lr: float = 2e-3, batch: int = 32, seed: int = 0,
                   progress: Callable[[float, str], None] | None = None) -> FCOS:
    """Adam on FCOS's own loss (focal classification + GIoU regression + centre-ness), deterministic from ``seed``
    (CPU, a fixed number of threads)."""
    torch.manual_seed(seed)
    model = lab_detector()
    # Distances start at half an anchor (16 px) rather than 0: the head's ReLU on the distances otherwise dies at
    # the start and every box collapses to a point.
    nn.init.constant_(model.head.regression_head.bbox_reg.bias, 0.5)
    x = pixels01(data.images)
    boxes, labels = torch.from_numpy(object_boxes(data)), torch.from_numpy(detection_labels(data))
    gen = torch.Generator().manual_seed(seed)

    def loss_of(idx: torch.Tensor) -> torch.Tensor:
        targets = [{"boxes": boxes[i:i + 1], "labels": labels[i:i + 1]} for i in idx.tolist()]
        losses = model(list(x[idx]), targets)
        return sum(losses.values(), torch.zeros(()))

    return fit(model, len(labels), loss_of, epochs=epochs, lr=lr, batch=batch, gen=gen, progress=progress,
               text=lambda ep, loss: f"detector epoch {ep + 1}/{epochs}, loss {loss:.3f}")


def detector_spec(module: nn.Module, device: torch.device | str | None = None, provenance: str = "") -> ModelSpec:
    return ModelSpec(id="lab_horse_detector", title="Horse-watermark lab detector (FCOS, trained here)", module=module,
                     labels=list(DENSE_CLASSES), mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0), input_size=(SIZE, SIZE),
                     cam_layer="backbone.features.9", provenance=provenance or "assets/lab_horse_detector.pt",
                     device=resolve_device(device), task="detector")


def load_lab_detector(device: torch.device | str | None = None) -> ModelSpec:
    """The shipped trained lab detector."""
    module = lab_detector()
    load_state(module, DETECTOR_WEIGHTS)
    return detector_spec(module, device)


register_model("lab_horse_detector", "Horse-watermark lab detector (64×64 FCOS; horse, other)", load_lab_detector)
