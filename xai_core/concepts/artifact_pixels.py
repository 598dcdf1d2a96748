"""A concept as an artifact in pixels, found without flags: which images of a set carry it, where in the image it
sits, and pasting it onto other images (A-ClArC in input space, Anders et al., 'Finding and removing Clever Hans:
using explanation methods to debug and improve deep models', Information Fusion 2022).

* **Carriers**: each image's peak ``vᵀa`` over the layer's positions (``v`` the concept's unit direction), split in
  two by Otsu's threshold (Otsu 1979: the split that maximises the between-group variance); the upper group carries
  the concept. A concept that does not split the set (between-group share of the variance below
  ``MIN_SEPARATION``) is refused: it is not an artifact some images have and others lack.
* **Region**: on the (up to ``MAX_SOURCES``) strongest carriers, the positive part of gradient × input of
  ``Σ_positions vᵀa``: the pixels that make the concept (concept-conditional relevance localises an artifact as in
  Pahde et al., 'Reveal to Revise', MICCAI 2023), each image's map divided by its maximum. The region is the pixels
  above ``RELEVANT`` in at least ``SHARE`` of those carriers, dilated by one pixel: it covers the artifact wherever it
  sits in them (a tag that moves by a few pixels) and its anti-aliased edge.
* **Paste**: ``x ← (1 − R) x + R x_src`` for the region ``R`` and a carrier ``x_src``: the artifact is moved onto
  ``x``, and an artifact ``x`` already had inside the region is overwritten.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..engine import batch_size_for, chunks
from ..hooks import capture
from ..models.spec import ModelSpec
from ..types import Progress
from ..workbench import Workbench, as_workbench
from .activations import activations, layer_name
from .clarc import unit
from .errors import ConceptError, require_images

MIN_SET = 20  # fewer images give no meaningful split into carriers and the rest
MIN_CARRIERS = 5
MIN_SEPARATION = 0.85  # between-group share of the variance of the peak scores (lab tag: 0.97; tag-free set: 0.77)
MAX_SOURCES = 64
RELEVANT, SHARE = 0.1, 0.05


@dataclass(frozen=True)
class ArtifactPixels:
    """A concept at ``layer`` located in pixels: the Otsu ``threshold`` on the peak score, the between-group share of
    variance ``separation``, the ``carriers`` (indices into the set, strongest first), their mean ``vᵀa`` per position
    ``level`` [h, w], the ``region`` [H, W] (0/1) and the carriers' normalised images ``sources`` [k, 3, H, W] to
    paste from (strongest first)."""

    layer: str
    direction: torch.Tensor
    threshold: float
    separation: float
    carriers: tuple[int, ...]
    level: torch.Tensor
    region: torch.Tensor
    sources: torch.Tensor


def otsu(scores: np.ndarray) -> tuple[float, float]:
    """Otsu's threshold on 1-D ``scores`` (midway between the two groups' nearest members) and the between-group
    share of the total variance it achieves (0: no split; 1: two point masses)."""
    s = np.sort(np.asarray(scores, np.float64))
    n = len(s)
    total = s.var() * n
    if n < 2 or total <= 0:
        return float(s[-1]) if n else 0.0, 0.0
    k = np.arange(1, n)
    csum = np.cumsum(s)[:-1]
    between = (csum - k * s.mean()) ** 2 * n / (k * (n - k))  # n · w0 w1 (m0 − m1)², per split after k items
    best = int(np.argmax(between))
    return float((s[best] + s[best + 1]) / 2), float(between[best] / total)


def relevance(model: ModelSpec | Workbench, layer: str, direction: torch.Tensor, x: torch.Tensor, *,
              progress: Progress | None = None) -> torch.Tensor:
    """Positive part of gradient × input of ``Σ_positions vᵀa`` at ``layer``, summed over colour channels:
    [N, H, W] for normalised inputs ``x``. The model's parameters get no gradient."""
    wb = as_workbench(model)
    v = unit(direction)
    with wb.session() as spec:
        module = spec.submodule(layer_name(spec, layer))

        def compute(start: int, stop: int) -> torch.Tensor:
            xb = x[start:stop].to(spec.device).requires_grad_(True)
            with torch.enable_grad(), capture(module) as rec:
                spec.module(xb)
                if rec.activation is None:
                    raise ConceptError(f"The layer {layer!r} is not used on the way to the output; choose another layer.")
                score = torch.einsum("c,nchw->", v.to(xb.device), spec.as_grid(rec.activation).float())
                (grad,) = torch.autograd.grad(score, xb)
            return (grad * xb).sum(1).clamp(min=0).detach().float().cpu()

        size = batch_size_for(spec.device, x.shape[-1] * x.shape[-2])
        parts = [r for _s, _e, r in chunks(len(x), compute, batch_size=size, progress=progress,
                                           desc="locating the artifact")]
    return torch.cat(parts)


def find_artifact_pixels(model: ModelSpec | Workbench, layer: str, direction: torch.Tensor, x: torch.Tensor, *,
                         progress: Progress | None = None) -> ArtifactPixels:
    """The carriers, region and sources of the concept ``direction`` in normalised images ``x`` [N, 3, H, W] (labels
    and flags are not used; see the module docstring)."""
    require_images(len(x), MIN_SET, "The set", "finding the images that carry the artifact")
    v = unit(direction)
    data = activations(model, x, layer, progress=progress)
    score = torch.einsum("c,nchw->nhw", v, data.acts)
    peak = score.flatten(1).amax(1).numpy()
    threshold, separation = otsu(peak)
    carriers = np.argsort(-peak, kind="stable")[: int((peak > threshold).sum())]
    if separation < MIN_SEPARATION or len(carriers) < MIN_CARRIERS:
        raise ConceptError(f"The concept does not split the set into images that carry it and images that do not "
                           f"({len(carriers)} carriers, {separation:.0%} of the variance between the groups; needs "
                           f"{MIN_CARRIERS} and {MIN_SEPARATION:.0%}): pick a concept that looks like an artifact.")
    chosen = torch.from_numpy(carriers.copy())
    sources = x[chosen[:MAX_SOURCES]].float().cpu()
    rel = relevance(model, data.layer, v, sources, progress=progress)
    peak_rel = rel.flatten(1).amax(1).clamp(min=1e-12).view(-1, 1, 1)
    share = (rel / peak_rel > RELEVANT).float().mean(0)
    region = F.max_pool2d((share >= SHARE).float()[None, None], 3, stride=1, padding=1)[0, 0]
    return ArtifactPixels(data.layer, v, threshold, separation, tuple(int(i) for i in carriers), score[chosen].mean(0),
                          region, sources)


def paste(x: torch.Tensor, region: torch.Tensor, sources: torch.Tensor) -> torch.Tensor:
    """``(1 − region) x + region sources`` for inputs ``x`` [N, 3, H, W] and ``sources`` of the same shape (or one
    image [3, H, W] for all)."""
    if tuple(region.shape) != tuple(x.shape[-2:]) or tuple(sources.shape[-3:]) != tuple(x.shape[-3:]):
        raise ConceptError(f"The artifact was found on {tuple(region.shape)} inputs but these are "
                           f"{tuple(x.shape[-2:])}; locate it again on images of the model's input size.")
    r = region.to(x.device, x.dtype)
    return x * (1 - r) + sources.to(x.device, x.dtype) * r


@contextmanager
def pasted(model: ModelSpec | Workbench, pixels: ArtifactPixels) -> Iterator[ModelSpec]:
    """Inside the block every input of ``model`` gets the strongest carrier's artifact pasted (A-ClArC's model as
    deployed: the artifact added to every input, so it carries no information); yields the model with its lock held.
    The hook is removed on exit, even on an error."""
    source = pixels.sources[0]

    def hook(_m: nn.Module, args: tuple) -> tuple:
        return (paste(args[0], pixels.region, source), *args[1:])

    with as_workbench(model).session() as spec:
        handle = spec.module.register_forward_pre_hook(hook)
        try:
            yield spec
        finally:
            handle.remove()
