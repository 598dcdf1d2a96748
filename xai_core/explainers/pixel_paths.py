"""Path integrals of input gradients in pixel space, shared by Blur IG, Guided IG and XRAI (not registered).

These methods define their paths on the image as the user sees it, pixels in [0, 1] (``model.denormalise(x)``),
as PAIR's `saliency` library does on the arrays it is given: a blurred image pads with black, Guided IG measures L1
distances and ranks gradients per pixel value. Gradients are taken with respect to those pixels through the model's
normalisation. An attribution Σ ∇f · Δpath is the same number whichever affine space it is computed in, so only the
choice of path depends on this, never the scale of the values (pixels in [0, 255] give the same maps).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from ..engine import Gradients, batch_size_for, chunks, input_gradients, logits_of, select
from ..models.spec import ModelSpec
from ..result import Forward, first_forward
from ..types import Diagnostic, Progress

# point(b, k) -> (path points [n, 3, H, W] in pixels, weighted path velocity [n, 3, H, W] in pixels per unit)
Point = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]

COMPLETENESS = (
    Diagnostic("completeness_gap", "Completeness gap", fmt="completeness gap {:.1%}"),
    Diagnostic("score_difference", "f(x) − f(path start)", show="data"),
)


class OnPixels(nn.Module):
    """The model as a function of pixels in [0, 1]: ``module(normalise(p))`` (the shared module is not a child)."""

    def __init__(self, model: ModelSpec) -> None:
        super().__init__()
        self.spec = model

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.spec.module(self.spec.normalise(pixels))


def pixel_gradients(model: ModelSpec, pixels: torch.Tensor, target: torch.Tensor) -> Gradients:
    """d logit[target] / d pixels for a batch of images in [0, 1] (one forward + input backward)."""
    return input_gradients(OnPixels(model), pixels, target)


def integrate(model: ModelSpec, pixels: torch.Tensor, target: torch.Tensor, count: int, point: Point, *,
              progress: Progress | None = None, desc: str = "path steps") -> torch.Tensor:
    """Σ_k ∇f(p_bk) ⊙ v_bk for every image b over its ``count`` path points, ``float32 [B, 3, H, W]``.

    The ``B × count`` (image, point) pairs run in the engine's batches; ``point(b, k)`` builds a batch's points and
    their weighted velocities. Each image's terms are added in the order of k, so a map does not depend on what it
    is batched with (beyond float32 round-off of the kernels).
    """
    acc = torch.zeros_like(pixels, dtype=torch.float32)

    def compute(start: int, stop: int) -> tuple[torch.Tensor, torch.Tensor]:
        idx = torch.arange(start, stop, device=pixels.device)
        b, k = idx // count, idx % count
        p, v = point(b, k)
        return pixel_gradients(model, p, target[b]).grad * v, b

    size = batch_size_for(pixels.device, pixels.shape[-1] * pixels.shape[-2])
    for _, _, (g, b) in chunks(len(pixels) * count, compute, batch_size=size, progress=progress, desc=desc):
        acc.index_add_(0, b, g)
    return acc


def first_pass(model: ModelSpec, x: torch.Tensor, target: torch.Tensor,
               starts: list[torch.Tensor]) -> tuple[Forward, torch.Tensor]:
    """One batched forward of the explained input ``x`` and of each path start (pixels ``[B, 3, H, W]``): the
    input's :class:`Forward` (``TOP1`` targets resolved) and the start scores ``[len(starts), B]`` of those targets."""
    z = logits_of(model.module, torch.cat([x, *(model.normalise(s) for s in starts)]), desc="end points")
    fwd = first_forward(z[: len(x)], target)
    return fwd, select(z[len(x):], fwd.target.repeat(len(starts))).view(len(starts), len(x))


def completeness(attr: torch.Tensor, fwd: Forward, start_scores: torch.Tensor) -> dict[str, list[float]]:
    """The :data:`COMPLETENESS` diagnostics: δ = f(x) − mean f(start) and |Σ attr − δ| / |δ| per image."""
    delta = select(fwd.logits, fwd.target) - start_scores.mean(0)
    gap = (attr.sum(dim=(1, 2, 3)) - delta).abs() / delta.abs().clamp_min(1e-12)
    return {"completeness_gap": gap.tolist(), "score_difference": delta.tolist()}
