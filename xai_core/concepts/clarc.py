"""P-ClArC, projective Class Artifact Compensation (Anders et al., 'Finding and removing Clever Hans: using
explanation methods to debug and improve deep models', Information Fusion 2022): at the concept's layer every
activation ``a`` (per spatial position or token) becomes ``a − v (vᵀa − z)`` for the unit direction ``v``, so its
component along ``v`` is set to the reference level ``z`` (the mean over artifact-free images; 0 removes the
direction) and everything orthogonal to ``v`` is kept. A forward hook, no retraining; it lives only inside
:func:`projected`, which holds the model's lock.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import nn

from ..hooks import capture
from ..lab.model import shortcut_report
from ..models.spec import ModelSpec
from ..workbench import Workbench, as_workbench
from .activations import activations, layer_name
from .errors import ConceptError, require_images

MIN_REFERENCE_IMAGES = 5


def unit(direction: torch.Tensor) -> torch.Tensor:
    """``direction`` as a finite unit vector [C] (float32), or a sentence saying why not."""
    v = direction.detach().flatten().float()
    norm = float(v.norm())
    if not torch.isfinite(v).all() or norm == 0.0:
        raise ConceptError("The concept direction is zero or not finite; discover the concept again.")
    return v / norm


def project(a: torch.Tensor, v: torch.Tensor, reference: float = 0.0) -> torch.Tensor:
    """``a − v (vᵀa − reference)`` along the channel axis: dim 1 of feature maps [B, C, h, w], the last dim of
    tokens [B, N, C] or vectors [B, C]."""
    if a.dim() not in (2, 3, 4):
        raise ConceptError(f"The layer outputs a {a.dim()}-D tensor; P-ClArC needs feature maps, tokens or vectors.")
    channels = a.shape[1] if a.dim() == 4 else a.shape[-1]
    if channels != v.numel():
        raise ConceptError(f"The concept direction has {v.numel()} channels but the layer has {channels}; "
                           "use a concept found at this layer.")
    shape: tuple[int, ...]
    if a.dim() == 4:
        shape, s = (1, -1, 1, 1), torch.einsum("c,bchw->bhw", v, a).unsqueeze(1)
    else:
        shape, s = (-1,), (a @ v).unsqueeze(-1)
    return a - v.view(shape) * (s - reference)


def calls_per_forward(spec: ModelSpec, module: nn.Module) -> int:
    """How many times ``module`` runs in one forward pass (a shared activation module runs at several depths), from
    one probe forward on a blank input; call under the model's lock."""
    with torch.inference_mode(), capture(module) as rec:
        spec.module(torch.zeros(1, 3, *spec.input_size, device=spec.device))
    if rec.calls == 0:
        raise ConceptError("The layer is not used on the way to the output; choose another layer.")
    return rec.calls


@contextmanager
def projected(model: ModelSpec | Workbench, layer: str, direction: torch.Tensor, *,
              reference: float = 0.0) -> Iterator[ModelSpec]:
    """Inside the block, ``layer``'s output is projected (see the module docstring) for every forward; yields the
    model, with its lock held. A module that runs at several depths (EfficientNet's shared ``_swish``) is projected
    at its last call only: the one the concept was found at (:func:`xai_core.hooks.capture` keeps the last call).
    The hooks are removed on exit, even on an error."""
    wb = as_workbench(model)
    with wb.session() as spec:
        module = spec.submodule(layer_name(spec, layer))
        v = unit(direction).to(spec.device)
        last = calls_per_forward(spec, module)
        seen = [0]

        def restart(_m: nn.Module, _i: tuple) -> None:
            seen[0] = 0

        def hook(_m: nn.Module, _i: tuple, out: torch.Tensor) -> torch.Tensor | None:
            seen[0] += 1
            return project(out, v.to(out.dtype), reference) if seen[0] == last else None

        handles = [spec.module.register_forward_pre_hook(restart), module.register_forward_hook(hook)]
        try:
            yield spec
        finally:
            for h in handles:
                h.remove()


def reference_level(model: ModelSpec | Workbench, layer: str, direction: torch.Tensor, clean: torch.Tensor) -> float:
    """P-ClArC's ``z``: the mean of ``vᵀa`` over every position of artifact-free normalised images ``clean``."""
    require_images(len(clean), MIN_REFERENCE_IMAGES, "The artifact-free set", "the P-ClArC reference level")
    acts = activations(model, clean, layer).acts
    return float(torch.einsum("c,nchw->nhw", unit(direction), acts).mean())


@dataclass(frozen=True)
class BeforeAfter:
    """The lab's shortcut numbers without and with the projection (same names as ``lab.shortcut_report``)."""

    layer: str
    reference: float
    before: dict[str, float]
    after: dict[str, float]


def before_after(model: ModelSpec | Workbench, layer: str, direction: torch.Tensor, *, reference: float = 0.0,
                 n: int = 600, seed: int = 123) -> BeforeAfter:
    """``lab.shortcut_report`` on the lab model as it is and with ``direction`` projected at ``layer``."""
    wb = as_workbench(model)
    before = shortcut_report(wb, n=n, seed=seed)
    with projected(wb, layer, direction, reference=reference):
        after = shortcut_report(wb, n=n, seed=seed)
    return BeforeAfter(layer, reference, before, after)
