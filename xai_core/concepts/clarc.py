"""P-ClArC, projective Class Artifact Compensation (Anders et al., 'Finding and removing Clever Hans: using
explanation methods to debug and improve deep models', Information Fusion 2022): at the concept's layer every
activation ``a`` (per spatial position or token) becomes ``a − v (vᵀa − z)`` for the unit direction ``v``, so its
component along ``v`` is set to the reference level ``z`` (the mean over artifact-free images; 0 removes the
direction) and everything orthogonal to ``v`` is kept. For a subspace (orthonormal rows ``Q`` [k, C], e.g. the
concepts whose crops sit where the artifact's do, :func:`co_located`) it is ``a − Qᵀ(Q a − z)``. A forward hook, no
retraining; it lives only inside :func:`projected`, which holds the model's lock.

What it cannot do (measured on the lab CNN, tests/test_concepts_clarc.py): make the Clever Hans model call untagged
horses 'horse'. A projection only removes evidence, and without the tag this model has none: the AUC of its margin
logit(horse) − logit(other) on untagged horses against other shapes is 0.48, and a linear probe on its pooled
``features.9`` activations separates them at 0.51 (chance). Projecting out the tag concept, or the subspace of all
seven concepts co-located with it, takes tagged non-horses called horse from 1.00 to 0.00 and leaves untagged
horses at 0.00 (test accuracy 0.93 → 0.44: the tagged horses are lost with their only evidence). Raising them
needs training: A-ClArC (:mod:`.aclarc`) carries that proof.
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
from .craft import Discovery
from .errors import ConceptError, require_images

MIN_REFERENCE_IMAGES = 5


def unit(direction: torch.Tensor) -> torch.Tensor:
    """``direction`` as a finite unit vector [C] (float32), or a sentence saying why not."""
    v = direction.detach().flatten().float()
    norm = float(v.norm())
    if not torch.isfinite(v).all() or norm == 0.0:
        raise ConceptError("The concept direction is zero or not finite; discover the concept again.")
    return v / norm


def basis(directions: torch.Tensor) -> torch.Tensor:
    """Orthonormal rows [k, C] (float32) spanning the rows of ``directions`` [k, C] (QR), or a sentence saying why
    not: a unit direction [C] for one row."""
    d = directions.detach().float()
    if d.dim() == 1 or len(d) == 1:
        return unit(d.flatten())
    if not torch.isfinite(d).all():
        raise ConceptError("A concept direction is not finite; discover the concepts again.")
    q, r = torch.linalg.qr(d.T)
    if float(r.diagonal().abs().min()) <= 1e-6 * float(r.diagonal().abs().max()):
        raise ConceptError("The concept directions are linearly dependent; pick fewer concepts.")
    return q.T.contiguous()


def project(a: torch.Tensor, v: torch.Tensor, reference: float | torch.Tensor = 0.0) -> torch.Tensor:
    """``a − v (vᵀa − reference)`` along the channel axis: dim 1 of feature maps [B, C, h, w], the last dim of
    tokens [B, N, C] or vectors [B, C]. For orthonormal rows ``v`` [k, C]: ``a − vᵀ(v a − reference)``, ``reference``
    a number or one per row [k]."""
    if a.dim() not in (2, 3, 4):
        raise ConceptError(f"The layer outputs a {a.dim()}-D tensor; P-ClArC needs feature maps, tokens or vectors.")
    q = v.view(1, -1) if v.dim() == 1 else v
    channels = a.shape[1] if a.dim() == 4 else a.shape[-1]
    if channels != q.shape[1]:
        raise ConceptError(f"The concept direction has {q.shape[1]} channels but the layer has {channels}; "
                           "use a concept found at this layer.")
    z = torch.as_tensor(reference, dtype=a.dtype, device=a.device).reshape(-1)
    if a.dim() == 4:
        c = torch.einsum("kc,bchw->bkhw", q, a) - z.view(1, -1, 1, 1)
        return a - torch.einsum("kc,bkhw->bchw", q, c)
    return a - ((a @ q.T) - z) @ q


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
              reference: float | torch.Tensor = 0.0) -> Iterator[ModelSpec]:
    """Inside the block, ``layer``'s output is projected (see the module docstring) onto the complement of
    ``direction`` (one [C], or the span of rows [k, C] with ``reference`` one per row) for every forward; yields the
    model, with its lock held. A module that runs at several depths (EfficientNet's shared ``_swish``) is projected
    at its last call only: the one the concept was found at (:func:`xai_core.hooks.capture` keeps the last call).
    The hooks are removed on exit, even on an error."""
    wb = as_workbench(model)
    with wb.session() as spec:
        module = spec.submodule(layer_name(spec, layer))
        v = basis(direction).to(spec.device)
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
    return float(reference_levels(model, layer, unit(direction)[None], clean)[0])


def reference_levels(model: ModelSpec | Workbench, layer: str, directions: torch.Tensor,
                     clean: torch.Tensor) -> torch.Tensor:
    """``z`` for a subspace: the mean coefficient on each orthonormal row of :func:`basis` (``directions``) over
    every position of artifact-free normalised images ``clean`` [k]."""
    require_images(len(clean), MIN_REFERENCE_IMAGES, "The artifact-free set", "the P-ClArC reference level")
    acts = activations(model, clean, layer).acts
    q = basis(directions).view(-1, acts.shape[1])
    return torch.einsum("kc,nchw->k", q, acts) / (acts.shape[0] * acts.shape[2] * acts.shape[3])


def co_located(discovery: Discovery, index: int = 0, min_share: float = 0.5) -> list[int]:
    """Positions in ``discovery.concepts`` of the concepts (``index`` first) at least ``min_share`` of whose reference
    crops coincide with a crop of concept ``index`` (same box, any image): the concepts that sit where it sits — for
    an artifact in a fixed place, the subspace it spans."""
    ref = {c.box for c in discovery.concepts[index].crops}
    shares = [sum(c.box in ref for c in k.crops) / max(len(k.crops), 1) for k in discovery.concepts]
    return [index] + [i for i, s in enumerate(shares) if i != index and s >= min_share]


@dataclass(frozen=True)
class BeforeAfter:
    """The lab's shortcut numbers without and with the projection (same names as ``lab.shortcut_report``)."""

    layer: str
    reference: float | torch.Tensor
    before: dict[str, float]
    after: dict[str, float]


def before_after(model: ModelSpec | Workbench, layer: str, direction: torch.Tensor, *,
                 reference: float | torch.Tensor = 0.0, n: int = 600, seed: int = 123) -> BeforeAfter:
    """``lab.shortcut_report`` on the lab model as it is and with ``direction`` (one [C], or a subspace [k, C])
    projected at ``layer``."""
    wb = as_workbench(model)
    before = shortcut_report(wb, n=n, seed=seed)
    with projected(wb, layer, direction, reference=reference):
        after = shortcut_report(wb, n=n, seed=seed)
    return BeforeAfter(layer, reference, before, after)
