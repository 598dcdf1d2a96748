"""Pieces shared by several explainers (not registered themselves)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F
import torchvision.transforms.functional as TF

from .. import options
from ..device import device_label
from ..engine import seconds_per_pass, select
from ..errors import ExplainerError
from ..hooks import capture
from ..models.spec import ModelSpec
from ..result import Forward, first_forward
from ..types import Diagnostic, ParamSpec

LAYER = ParamSpec("layer", "layer", "", "Layer",
                  "Layer whose feature maps are weighted; empty means the model's last convolutional block.")
NOTICE = Diagnostic("notice", "Time budget", show="notice")  # reported when cap_samples capped a count
REFERENCES = ("black", "mean", "blurred", "noise")


def blur(model: ModelSpec, x: torch.Tensor, sigma_fraction: float = 1 / 14) -> torch.Tensor:
    """A heavily Gaussian-blurred copy of normalised inputs (sigma as a fraction of the shorter side)."""
    side = min(x.shape[-2:])
    sigma, k = max(side * sigma_fraction, 0.5), (side // 4) | 1
    return model.normalise(TF.gaussian_blur(model.denormalise(x), [k, k], [sigma, sigma]))


def reference_input(model: ModelSpec, x: torch.Tensor, kind: str, seed: int = 0) -> torch.Tensor:
    """What 'absent' pixels become: black, the image's mean colour, a blurred copy, or seeded uniform noise.

    Noise is drawn once from ``seed`` and shared by every image, so a result never depends on batching.
    """
    if kind == "black":
        return model.normalise(torch.zeros_like(x))
    if kind == "mean":
        return x.mean(dim=(2, 3), keepdim=True).expand_as(x).contiguous()
    if kind == "blurred":
        return blur(model, x)
    if kind == "noise":
        gen = torch.Generator().manual_seed(seed)
        return model.normalise(torch.rand((1, *x.shape[1:]), generator=gen).to(x.device).expand_as(x))
    raise ExplainerError(f"Unknown reference {kind!r}; choose one of {', '.join(REFERENCES)}.")


@dataclass(frozen=True)
class Capped:
    """A count fitted to the time budget: ``count`` and, when the budget was too short, the ``notice`` saying so."""

    count: int
    notice: str = ""

    def diagnostics(self, n: int) -> dict[str, list[str]]:
        """``{'notice': [notice] * n}`` when the count was capped (declare :data:`NOTICE`), else nothing."""
        return {NOTICE.name: [self.notice] * n} if self.notice else {}


def cap_samples(model: ModelSpec, x: torch.Tensor, wanted: int, *, passes_per_sample: float = 1.0, minimum: int = 8,
                what: str = "samples") -> Capped:
    """``wanted`` if it fits the session's time budget (``RunOptions.time_budget``) on this device, else the most
    that fit, never silently: the :class:`Capped` notice says so."""
    budget_s = options.current().time_budget
    each = seconds_per_pass(model.module, x) * passes_per_sample * len(x)
    if each * wanted <= budget_s:
        return Capped(wanted)
    fit = max(minimum, int(budget_s / each))
    fit = int(float(f"{fit:.2g}"))  # two significant digits: the same cap on run-to-run timing noise
    notice = (f"{what.capitalize()} capped from {wanted} to {fit} to fit the {budget_s:.0f} s time budget on "
              f"{device_label(x.device)} (≈{each * 1000:.0f} ms per {what[:-1]}); raise the budget to use them all.")
    return Capped(min(wanted, fit), notice)


def upsample(maps: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Coarse maps ``[B, h, w]`` -> ``[B, H, W]`` by bilinear interpolation."""
    return F.interpolate(maps.unsqueeze(1), size=size, mode="bilinear", align_corners=False).squeeze(1)


class LayerGradients(NamedTuple):
    """Feature maps ``acts`` at a layer, d logit[target] / d acts (both ``[B, C, h, w]``) and the forward pass."""

    acts: torch.Tensor
    grads: torch.Tensor
    forward: Forward


def activations_and_grads(model: ModelSpec, x: torch.Tensor, target: torch.Tensor, layer: str) -> LayerGradients:
    """Feature maps ``A`` at ``layer`` and d logit[target] / dA, both ``[B, C, h, w]``, and the forward pass.

    Backward stops at the layer: nothing below it is differentiated. The forward pass runs on ``x`` itself and
    resolves ``TOP1`` targets (:func:`result.first_forward`): Grad-CAM costs one forward and a partial backward.
    """
    with torch.enable_grad(), capture(model.submodule(layer), leaf=True) as rec:
        out = model.module(x)
        fwd = first_forward(out, target)
        score = select(out, fwd.target)
        act = rec.activation
        if act is None or not act.requires_grad:
            raise ExplainerError(f"The layer {layer or model.cam_layer!r} is not used on the way to the output; "
                                 "choose another layer.")
        (grad,) = torch.autograd.grad(score.sum(), act)
    return LayerGradients(model.as_grid(act.detach()).float(), model.as_grid(grad).float(), fwd)
