"""Binding a target to a model: a one-output :class:`ModelSpec` whose output is the target's score.

:class:`Targeted` wraps the model's module with a head (:mod:`.heads`). It shares the module's submodule tree, so
layer names ("layer4", "vision_model.encoder.layers.11") resolve on it exactly as on the model and hooks land on
the same modules; it shares the model's lock. Every explainer, metric and sanity check then explains class 0 of
the bound model, which is the target's scalar: nothing in them knows about targets. A one-column output is a
score, not a logit among classes (:func:`xai_core.engine.probabilities` leaves it as it is).

Binding runs what the target needs once: the prompt's text embedding, the reference's image embedding, the
predicted region on the explained input. Call it inside the Workbench's session (it runs forwards).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from ..errors import ExplainerError
from ..models.spec import ModelSpec
from .heads import CosineHead, DetectionHead, RegionHead, embeddings, segment_scores
from .values import TARGET_TYPES, PromptTarget, RegionTarget, SimilarityTarget, Target, why_not

Head = CosineHead | RegionHead | DetectionHead


class Targeted(nn.Module):
    """``head(base(x))``: a model's module reduced to its target's score ``[B, 1]``; see the module docstring."""

    def __init__(self, base: nn.Module, head: Head) -> None:
        super().__init__()
        # The same submodule tree, parameters and buffers (not copies): names, hooks and devices are the base's.
        self._modules = base._modules
        self._parameters = base._parameters
        self._buffers = base._buffers
        object.__setattr__(self, "base", base)  # not a child: named_modules() stays the base's
        object.__setattr__(self, "target_head", head)  # output -> score; LeGrad applies it to each layer's reading
        object.__setattr__(self, "fast", False)  # never traced, frozen or compiled (fastpath): bound per request

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.target_head(self.base(x))  # type: ignore[operator]  # plain attributes, set above

    def train(self, mode: bool = True) -> Targeted:  # the base's mode is the model's; never switch it from here
        object.__setattr__(self, "training", False)
        return self


def _pixels(box: tuple[float, float, float, float], size: tuple[int, int]) -> torch.Tensor:
    h, w = size
    return torch.tensor([box[0] * w, box[1] * h, box[2] * w, box[3] * h], dtype=torch.float32)


def _region_mask(model: ModelSpec, t: RegionTarget, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        z = segment_scores(model.module(x[:1]))
    h, w = z.shape[-2:]
    if t.box is not None:
        m = torch.zeros(h, w)
        x0, y0, x1, y1 = t.box
        m[int(np.floor(y0 * h)):int(np.ceil(y1 * h)), int(np.floor(x0 * w)):int(np.ceil(x1 * w))] = 1
        return m
    if t.mask is not None:
        m = torch.from_numpy(t.mask.astype(np.float32))[None, None]
        return (F.interpolate(m, size=(h, w), mode="nearest")[0, 0] > 0.5).float()
    if not 0 <= t.index < z.shape[1]:
        raise ExplainerError(f"Class {t.index} does not exist: this segmenter has classes 0..{z.shape[1] - 1}.")
    m = (z[0].argmax(0) == t.index).float().cpu()
    if not bool(m.any()):
        raise ExplainerError(f"The model assigns no pixel of this image to {model.label(t.index)}; draw a box for "
                             "the region instead.")
    return m


def head_for(model: ModelSpec, target: Target, x: torch.Tensor) -> Head:
    """The head that scores ``target`` on ``model``'s output (runs the forwards the target needs; ``x`` is the
    explained input, normalised)."""
    if isinstance(target, PromptTarget):
        if model.text_encoder is None:
            raise ExplainerError(f"{model.title} has no text tower to read a prompt with.")
        with torch.no_grad():
            texts = model.text_encoder([target.text] + ([target.contrast] if target.contrast else [])).float()
        return CosineHead(texts[0], texts[1] if target.contrast else None)
    if isinstance(target, SimilarityTarget):
        with torch.no_grad():
            ref = embeddings(model.module(model.preprocess(target.reference)))
        return CosineHead(ref[0])
    if isinstance(target, RegionTarget):
        return RegionHead(target.index, _region_mask(model, target, x))
    return DetectionHead(_pixels(target.box, model.input_size), target.label, target.scoring, target.iou)


def bind(model: ModelSpec, target: Target, x: torch.Tensor) -> ModelSpec:
    """``model`` reduced to ``target``'s score: a one-output ModelSpec (same lock, layers and preprocessing) whose
    class 0 is the target, called by its title. ``x`` = the explained input(s); a region predicted on the image is
    the first input's."""
    if not isinstance(target, TARGET_TYPES):
        raise ExplainerError(f"Unknown target {type(target).__name__}.")
    why = why_not(model.task, target.kind)
    if why:
        raise ExplainerError(why)
    head = head_for(model, target, x)
    if isinstance(target, RegionTarget) and target.box is None and target.mask is None and len(x) > 1:
        raise ExplainerError("A predicted region belongs to one image: explain one image at a time, or give a box.")
    return ModelSpec(id=model.id, title=model.title, module=Targeted(model.module, head),
                     labels=[target.named(model.labels)],
                     input_size=model.input_size, mean=model.mean, std=model.std, cam_layer=model.cam_layer,
                     fc_layer=None, reshape=model.reshape, provenance=model.provenance, tokens=model.tokens,
                     interpolation=model.interpolation, device=model.device, task=model.task,
                     text_encoder=model.text_encoder, target_kind=target.kind, lock=model.lock)


def describe_output(model: ModelSpec, x: torch.Tensor) -> dict[str, Any]:
    """What an unbound model says about one input, for pickers: a segmenter's per-class pixel shares ("share") and
    class map ("classes", [H, W] at its output size), a detector's detections ("boxes" as fractions of the image,
    "labels", "scores", best first). Run inside the Workbench's session."""
    with torch.no_grad():
        out = model.module(x[:1])
    if model.task == "segmenter":
        z = segment_scores(out)[0]
        classes = z.argmax(0)
        share = torch.bincount(classes.flatten(), minlength=z.shape[0]).float() / z[0].numel()
        return {"share": share.cpu().numpy(), "classes": classes.to(torch.int32).cpu().numpy()}
    if model.task == "detector":
        d = out[0]
        h, w = model.input_size
        scale = torch.tensor([w, h, w, h], dtype=torch.float32)
        order = d["scores"].float().cpu().argsort(descending=True)
        return {"boxes": (d["boxes"].float().cpu()[order] / scale).clamp(0, 1).numpy(),
                "labels": d["labels"].cpu()[order].numpy(), "scores": d["scores"].float().cpu()[order].numpy()}
    raise ExplainerError(f"{model.title} is a {model.task.replace('_', ' ')}; it has no regions or boxes to list.")
