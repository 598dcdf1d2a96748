"""Concept Relevance Propagation (Achtibat et al., 'From attribution maps to human-understandable explanations through
Concept Relevance Propagation', Nature Machine Intelligence 2023) on the LRP composites of :mod:`..explainers.lrp`.

LRP passes the class logit's relevance down to the pixels. CRP conditions that flow on a concept: at ``layer`` the
relevance arriving at the layer's output is masked to one channel (or a weighted group of channels) and only that
part continues to the pixels — the concept's *conditional heatmap*: where in the image sits the concept the class
used. The backward pass below the layer is linear in the relevance arriving there, so the conditional heatmaps of all
channels add up to the LRP heatmap. A channel's relevance ``R_c`` (the relevance at the layer summed over positions)
and its share ``R_c / Σ_c |R_c|`` rank the concepts a class uses (zennit-crp's ``ChannelConcept.attribute``).

Batching: each image is repeated once per concept and each copy is masked to its own concept, so one forward and one
backward give many conditional heatmaps (zennit-crp's broadcast); the rows go through :func:`engine.chunks` inside
the Workbench session.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ..engine import batch_size_for, chunks
from ..errors import ExplainerError
from ..explainers.lrp import zennit_composite
from ..models.spec import ModelSpec
from ..result import first_forward
from ..types import Progress
from ..workbench import Workbench, as_workbench
from .activations import layer_name
from .errors import ConceptError, require_images

Concepts = Sequence[int] | torch.Tensor  # channel indices, or weights [k, C] (a weighted group of channels per row)


@dataclass(frozen=True)
class Pass:
    """One LRP backward over rows: pixel relevance ``heatmap`` [B, H, W]; at the layer its ``activation`` and the
    ``relevance`` arriving there before any mask (None when the pass started at the layer); ``logits``, ``target``."""

    heatmap: torch.Tensor
    activation: torch.Tensor
    relevance: torch.Tensor | None
    logits: torch.Tensor
    target: torch.Tensor


@dataclass(frozen=True)
class ConceptRelevance:
    """Relevance of class ``target[n]`` at ``layer`` per concept, summed over positions: ``relevance`` [N, K] (K
    channels, or K given directions), with the LRP ``heatmap`` [N, H, W] and the ``logits`` of the same pass."""

    layer: str
    target: torch.Tensor
    relevance: torch.Tensor
    heatmap: torch.Tensor
    logits: torch.Tensor

    @property
    def share(self) -> torch.Tensor:
        """``R_k / Σ_k |R_k|`` per image [N, K] (zennit-crp's ``abs_norm``, same 1e-10 guard)."""
        return self.relevance / (self.relevance.abs().sum(1, keepdim=True) + 1e-10)

    def top(self, k: int = 5) -> list[tuple[int, float]]:
        """The ``k`` concepts with the largest mean share over the images, with that share, best first."""
        mean = self.share.mean(0)
        order = torch.argsort(mean, descending=True, stable=True)[:k]
        return [(int(i), float(mean[i])) for i in order]


def prepare(spec: ModelSpec, x: torch.Tensor, layer: str | None, composite: str) -> tuple[str, nn.Module, Any, torch.Size]:
    """Inside a session: the layer's name, module, the Zennit composite and the layer's output shape for one image;
    a :class:`ConceptError` for an empty set, an unknown or unusable layer, or a model LRP cannot handle."""
    require_images(len(x), 1, "The set", "a concept relevance analysis")
    try:
        name = layer_name(spec, layer)
        module = spec.submodule(name)
        comp = zennit_composite(spec, x[:1].to(spec.device), composite)
    except ExplainerError as err:
        raise ConceptError(str(err)) from None
    shapes: list[torch.Size | None] = []
    handle = module.register_forward_hook(
        lambda _m, _i, out: shapes.append(out.shape if isinstance(out, torch.Tensor) else None))
    try:
        with torch.inference_mode():
            spec.module(x[:1].to(spec.device))
    finally:
        handle.remove()
    if not shapes:
        raise ConceptError(f"The layer {name!r} is not used on the way to the output; choose another layer.")
    if len(shapes) > 1:
        raise ConceptError(f"The layer {name!r} runs {len(shapes)} times in one forward pass (a shared module); CRP "
                           "needs a layer that runs once: choose another layer.")
    shape = shapes[0]
    if shape is None or len(shape) < 2:
        raise ConceptError(f"The layer {name!r} does not output one tensor of channels; choose a convolution or "
                           "activation layer.")
    return name, module, comp, shape


def lrp_batch(spec: ModelSpec, x: torch.Tensor) -> int:
    """Rows per LRP pass: a quarter of the engine's forward batch, as Zennit keeps each rule's inputs and modified
    outputs besides the graph (measured, lab CNN 64², one CPU thread: 16-24 rows 4.5-4.7 ms/row, 96 rows 6.8)."""
    return max(1, batch_size_for(spec.device, x.shape[-1] * x.shape[-2]) // 4)


def targets_for(spec: ModelSpec, target: int | torch.Tensor, n: int) -> torch.Tensor:
    """``target`` (a class, or one per image; -1 = the predicted class) as a long tensor [n], checked."""
    t = torch.as_tensor(target, dtype=torch.long).flatten().cpu()
    t = t.expand(n) if t.numel() == 1 else t
    if t.numel() != n:
        raise ConceptError(f"Give one class for all {n} images or one per image, not {t.numel()}.")
    bad = t[(t < -1) | (t >= spec.num_classes)]
    if len(bad):
        raise ConceptError(f"Class {int(bad[0])} does not exist: this model has classes 0..{spec.num_classes - 1}.")
    return t.clone()


def concept_weights(concepts: Concepts, channels: int, layer: str) -> torch.Tensor:
    """The concepts as channel weights [k, channels]: an index gives a one-hot row, a float tensor its own rows."""
    if isinstance(concepts, torch.Tensor) and concepts.is_floating_point():
        w = concepts.detach().float().cpu().reshape(-1, concepts.shape[-1]) if concepts.dim() else concepts.view(1, 1)
        if w.shape[-1] != channels or not len(w) or not torch.isfinite(w).all():
            raise ConceptError(f"Concept directions must be finite rows of {channels} weights, one per channel of "
                               f"{layer!r}; got shape {tuple(concepts.shape)}.")
        return w
    idx = [int(c) for c in (concepts.flatten().tolist() if isinstance(concepts, torch.Tensor) else concepts)]
    if not idx:
        raise ConceptError("No concepts were given: choose at least one channel.")
    out = [c for c in idx if not 0 <= c < channels]
    if out:
        raise ConceptError(f"Concept {out[0]} does not exist: the layer {layer!r} has channels 0..{channels - 1}.")
    return torch.eye(channels)[idx]


def relevance_pass(spec: ModelSpec, comp: Any, module: nn.Module, x: torch.Tensor, target: torch.Tensor | None = None,
                   *, gate: torch.Tensor | None = None,
                   start: Callable[[torch.Tensor], torch.Tensor] | None = None) -> Pass:
    """One LRP backward of rows ``x`` under the composite ``comp``. From logit[``target``] (LRP's R = f_c(x)), where
    ``gate`` [B, C] multiplies the relevance arriving at ``module``'s output channel by channel (CRP's condition);
    or, with ``start``, from the layer itself, with relevance ``start(activation)``. The caller holds the session."""
    rec: dict[str, torch.Tensor] = {}

    def on_grad(g: torch.Tensor) -> torch.Tensor | None:  # zennit's "gradient" here is the relevance itself
        rec["relevance"] = g.detach()
        return None if gate is None else g * gate.view(*gate.shape, *([1] * (g.dim() - 2)))

    def hook(_m: nn.Module, _i: tuple, out: torch.Tensor) -> None:
        rec["activation"] = out
        if start is None and out.requires_grad:
            out.register_hook(on_grad)

    with torch.inference_mode(False), torch.enable_grad():
        xi = x.detach().clone().contiguous().requires_grad_(True)
        with comp.context(spec.module) as modified:
            handle = module.register_forward_hook(hook)
            try:
                out = modified(xi)
            finally:
                handle.remove()
            if not torch.isfinite(out).all():
                raise ConceptError("The model returned NaN or infinite scores for this input.")
            act = rec["activation"]
            fwd = first_forward(out, torch.zeros(len(out), dtype=torch.long) if target is None else target)
            if start is None:
                onehot = torch.zeros_like(out)
                onehot[torch.arange(len(out)), fwd.target.to(out.device)] = 1.0
                (grad,) = torch.autograd.grad(out, xi, out.detach() * onehot)
                if "relevance" not in rec:  # no relevance reached the layer: a mask there would change nothing
                    raise ConceptError(f"The chosen layer does not lead to the output of {spec.title}; choose another.")
            else:
                (grad,) = torch.autograd.grad(act, xi, start(act.detach()))
    return Pass(grad.detach().sum(1).float(), act.detach().float(), rec.get("relevance"), fwd.logits, fwd.target)


def conditional_heatmaps(model: ModelSpec | Workbench, x: torch.Tensor, target: int | torch.Tensor,
                         layer: str | None, concepts: Concepts, *, composite: str = "epsilon_plus_flat",
                         progress: Progress | None = None) -> torch.Tensor:
    """CRP conditional heatmaps [N, k, H, W] of normalised inputs ``x`` [N, 3, H, W] for class ``target``: map
    ``[n, j]`` is the pixel relevance that flows through concept ``concepts[j]`` of ``layer`` (None: the model's CAM
    layer) — a channel index, or a row of channel weights. ``target``: a class, one per image, or -1 (the predicted
    class). Float32 on the CPU."""
    wb = as_workbench(model)
    with wb.session() as spec:
        name, module, comp, shape = prepare(spec, x, layer, composite)
        weights = concept_weights(concepts, shape[1], name)
        k, t, dev = len(weights), targets_for(spec, target, len(x)), spec.device

        def compute(begin: int, stop: int) -> torch.Tensor:
            rows = torch.arange(begin, stop)
            img = rows // k
            return relevance_pass(spec, comp, module, x[img].to(dev), t[img].to(dev),
                                  gate=weights[rows % k].to(dev)).heatmap.cpu()

        parts = [h for _s, _e, h in chunks(len(x) * k, compute, batch_size=lrp_batch(spec, x),
                                           progress=progress, desc="conditional heatmaps")]
    return torch.cat(parts).view(len(x), k, *x.shape[-2:])


def concept_relevance(model: ModelSpec | Workbench, x: torch.Tensor, target: int | torch.Tensor,
                      layer: str | None = None, *, directions: torch.Tensor | None = None,
                      composite: str = "epsilon_plus_flat", progress: Progress | None = None) -> ConceptRelevance:
    """Each channel's relevance for class ``target`` at ``layer`` (summed over positions), one LRP pass per image.
    With ``directions`` [d, C] the relevance ``Σ_c w_c R_c`` of each weighted channel group instead: the relevance
    that :func:`conditional_heatmaps` with the same weights passes on (a group of channels, not a rotated basis)."""
    wb = as_workbench(model)
    with wb.session() as spec:
        name, module, comp, shape = prepare(spec, x, layer, composite)
        w = None if directions is None else concept_weights(directions, shape[1], name)
        t, dev = targets_for(spec, target, len(x)), spec.device

        def compute(begin: int, stop: int) -> tuple[torch.Tensor, ...]:
            p = relevance_pass(spec, comp, module, x[begin:stop].to(dev), t[begin:stop].to(dev))
            assert p.relevance is not None
            rel = p.relevance.float().reshape(len(p.relevance), p.relevance.shape[1], -1).sum(-1)
            return p.heatmap.cpu(), rel.cpu(), p.logits.cpu(), p.target.cpu()

        parts = [p for _s, _e, p in chunks(len(x), compute, batch_size=lrp_batch(spec, x),
                                           progress=progress, desc="concept relevance")]
    heat, rel, logits, targets = (torch.cat(group) for group in zip(*parts, strict=True))
    return ConceptRelevance(name, targets, rel if w is None else rel @ w.T, heat, logits)
