"""Heads: each reduces a model's output (per its ``task``) to one score per image, ``[B, 1]``, differentiably.

The fixed parts of a target (a prompt's text embedding, a reference's embedding, a region's mask, a box in input
pixels) are computed once when the target is bound (:mod:`.bind`) and live on the head as tensors.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch.nn import functional as F

from ..errors import ExplainerError


def embeddings(out: Any) -> torch.Tensor:
    """A dual encoder's or embedder's output as ``[B, D]`` float embeddings."""
    if isinstance(out, Mapping):
        out = next((out[k] for k in ("image_embeds", "pooler_output", "embeddings") if k in out), None)
    if not isinstance(out, torch.Tensor) or out.dim() != 2:
        raise ExplainerError("This model's image tower did not return embeddings [batch, dim]; it cannot be compared "
                             "with a prompt or a reference image.")
    return out.float()


def segment_scores(out: Any) -> torch.Tensor:
    """A segmenter's output as class scores ``[B, classes, H, W]`` (torchvision's ``{"out": ...}`` or a tensor)."""
    if isinstance(out, Mapping):
        out = out.get("out")
    if not isinstance(out, torch.Tensor) or out.dim() != 4:
        raise ExplainerError("This segmenter did not return class scores [batch, classes, height, width].")
    return out.float()


class CosineHead:
    """cos(embedding, ``toward``) − cos(embedding, ``away``) (``away`` optional), per image: ``[B, 1]``.

    Cosine as ``torch.nn.CosineSimilarity``: a·b / max(‖a‖·‖b‖, eps)."""

    traceable = True

    def __init__(self, toward: torch.Tensor, away: torch.Tensor | None = None) -> None:
        self.toward, self.away = toward.detach().float().reshape(1, -1), None if away is None else \
            away.detach().float().reshape(1, -1)

    def __call__(self, out: Any) -> torch.Tensor:
        e = embeddings(out)
        if e.shape[1] != self.toward.shape[1]:
            raise ExplainerError(f"The image embedding has {e.shape[1]} values but the target's has "
                                 f"{self.toward.shape[1]}; they come from different models.")
        s = F.cosine_similarity(e, self.toward.to(e.device), dim=1, eps=1e-8)
        if self.away is not None:
            s = s - F.cosine_similarity(e, self.away.to(e.device), dim=1, eps=1e-8)
        return s.unsqueeze(1)


class RegionHead:
    """Σ over ``mask`` [H, W] of class ``index``'s scores, per image: ``[B, 1]`` (pytorch-grad-cam's
    ``SemanticSegmentationTarget``)."""

    traceable = True

    def __init__(self, index: int, mask: torch.Tensor) -> None:
        self.index, self.mask = index, mask.detach().float()

    def __call__(self, out: Any) -> torch.Tensor:
        z = segment_scores(out)
        if not 0 <= self.index < z.shape[1]:
            raise ExplainerError(f"Class {self.index} does not exist: this segmenter has classes 0..{z.shape[1] - 1}.")
        if z.shape[-2:] != self.mask.shape:
            raise ExplainerError(f"The segmenter's output is {tuple(z.shape[-2:])} but the region's mask is "
                                 f"{tuple(self.mask.shape)}.")
        return (z[:, self.index] * self.mask.to(z.device)).sum((-2, -1)).unsqueeze(1)


def box_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """IoU of boxes ``a [n, 4]`` and ``b [m, 4]`` (x0, y0, x1, y1): ``[n, m]``, differentiable."""
    lt = torch.maximum(a[:, None, :2], b[None, :, :2])
    rb = torch.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = (rb - lt).clamp(min=0).prod(2)
    area = lambda t: (t[:, 2] - t[:, 0]) * (t[:, 3] - t[:, 1])  # noqa: E731
    return inter / (area(a)[:, None] + area(b)[None, :] - inter)


class DetectionHead:
    """The score of one box (``box`` [4] in input pixels, class ``label``) in a detector's output, per image ``[B, 1]``:

    * ``match``: of the detections labelled ``label``, the one with the highest IoU with ``box``; if its IoU > ``iou``,
      IoU + its score, else 0 (pytorch-grad-cam's ``FasterRCNNBoxScoreTarget``, without its tie to other labels);
    * ``drise``: max over the detections labelled ``label`` of IoU × score (Petsiuk et al. 2021, D-RISE, with the
      class-vector similarity reduced to the label's score, which is all torchvision's detectors return); 0 if none.
    """

    traceable = False  # which detection matches depends on the input

    def __init__(self, box: torch.Tensor, label: int, scoring: str, iou: float) -> None:
        self.box, self.label, self.scoring, self.iou = box.detach().float().reshape(1, 4), label, scoring, iou

    def one(self, det: Mapping[str, torch.Tensor]) -> torch.Tensor:
        boxes, labels, scores = det["boxes"].float(), det["labels"], det["scores"].float()
        zero = boxes.sum() * 0 + scores.sum() * 0  # keeps the graph when nothing matches
        if len(boxes) == 0:
            return zero
        ious = box_iou(self.box.to(boxes.device), boxes)[0]
        if self.scoring == "drise":
            hit = labels == self.label
            return (ious * scores)[hit].max() + zero if bool(hit.any()) else zero
        # the best-overlapping detection *with the label* (pytorch-grad-cam takes the best overall and then checks its
        # label: the same unless detections of several classes share a box, as SSD's do, where theirs gives 0)
        hit = labels == self.label
        if not bool(hit.any()):
            return zero
        i = int(torch.where(hit, ious, torch.full_like(ious, -1.0)).argmax())
        return ious[i] + scores[i] + zero if float(ious[i].detach()) > self.iou else zero

    def __call__(self, out: Any) -> torch.Tensor:
        if not isinstance(out, Sequence) or not all(isinstance(d, Mapping) and {"boxes", "labels", "scores"} <= set(d)
                                                    for d in out):
            raise ExplainerError("This detector did not return one {boxes, labels, scores} per image.")
        return torch.stack([self.one(d) for d in out]).unsqueeze(1)
