"""A layer's activations (and gradients of a class score) over a set of images, in batches, through the Workbench.

Every forward pass and hook runs inside ``wb.session()`` (the model's lock); batches come from
:func:`xai_core.engine.chunks` (OOM back-off, progress, cancellation). Activations are returned as feature maps
``[N, C, h, w]``, float32 on the CPU. Token models (ViT) go through ``ModelSpec.as_grid``: the patch tokens laid on the
patch grid, the class and register tokens left out.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..engine import batch_size_for, chunks
from ..explainers.common import activations_and_grads
from ..hooks import capture
from ..models.spec import ModelSpec
from ..types import Progress
from ..workbench import Workbench, as_workbench
from .errors import ConceptError


@dataclass(frozen=True)
class LayerData:
    """Feature maps ``acts`` [N, C, h, w] at ``layer`` and, when a class was given, d logit[target] / d acts."""

    layer: str
    acts: torch.Tensor
    grads: torch.Tensor | None = None


def layer_name(model: ModelSpec, layer: str | None) -> str:
    """``layer`` checked against the model (empty: the model's CAM layer)."""
    name = layer or model.cam_layer
    if not name:
        raise ConceptError(f"{model.title} has no default feature layer; name a layer for the concept analysis.")
    model.submodule(name)  # a clear sentence when the name is unknown
    return name


CPU_MAX_BATCH = 32  # small inputs (crops, lab images): the pixel-scaled batch (~700 at 24 px) thrashes the CPU's
# caches; measured on the 2-core machine, discovery over 300 lab images: 12.0 s uncapped, 8.4 s at 32 (8.3 at 16)


def _batch(model: ModelSpec, x: torch.Tensor) -> int:
    size = batch_size_for(model.device, x.shape[-1] * x.shape[-2])
    return min(size, CPU_MAX_BATCH) if model.device.type == "cpu" else size


def activations(model: ModelSpec | Workbench, x: torch.Tensor, layer: str | None = None, *,
                progress: Progress | None = None) -> LayerData:
    """Feature maps of normalised inputs ``x`` [N, 3, H, W] at ``layer`` (no gradients)."""
    wb = as_workbench(model)
    with wb.session() as spec:
        name = layer_name(spec, layer)
        module = spec.submodule(name)

        def compute(start: int, stop: int) -> torch.Tensor:
            with torch.inference_mode(), capture(module) as rec:
                spec.module(x[start:stop].to(spec.device))
            if rec.activation is None:
                raise ConceptError(f"The layer {name!r} is not used on the way to the output; choose another layer.")
            return spec.as_grid(rec.activation).float().cpu()

        parts = [a for _s, _e, a in chunks(len(x), compute, batch_size=_batch(spec, x), progress=progress,
                                           desc="activations")]
    return LayerData(name, torch.cat(parts) if parts else torch.empty(0))


def activations_and_gradients(model: ModelSpec | Workbench, x: torch.Tensor, target: int, layer: str | None = None, *,
                              progress: Progress | None = None) -> LayerData:
    """Feature maps at ``layer`` and the gradient of logit[``target``] with respect to them, both [N, C, h, w]."""
    wb = as_workbench(model)
    with wb.session() as spec:
        name = layer_name(spec, layer)
        if not 0 <= int(target) < spec.num_classes:
            raise ConceptError(f"Class {target} does not exist: this model has classes 0..{spec.num_classes - 1}.")

        def compute(start: int, stop: int) -> tuple[torch.Tensor, torch.Tensor]:
            xb = x[start:stop].to(spec.device)
            t = torch.full((len(xb),), int(target), device=spec.device)
            lg = activations_and_grads(spec, xb, t, name)
            return lg.acts.cpu(), lg.grads.cpu()

        parts = [p for _s, _e, p in chunks(len(x), compute, batch_size=_batch(spec, x), progress=progress,
                                           desc="gradients")]
    if not parts:
        return LayerData(name, torch.empty(0), torch.empty(0))
    return LayerData(name, torch.cat([a for a, _g in parts]), torch.cat([g for _a, g in parts]))
