"""Pieces shared by several explainers (not registered themselves)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
import torchvision.transforms.functional as TF

from .. import options
from ..device import device_label
from ..engine import seconds_per_pass, select
from ..errors import ExplainerError
from ..hooks import capture
from ..models.spec import ModelSpec
from ..trace import first_forward
from ..types import Diagnostic, ParamSpec

LAYER = ParamSpec("layer", "layer", "", "Layer",
                  "Layer whose feature maps are weighted; empty means the model's last convolutional block.")
NOTICE = Diagnostic("notice", "Time budget", show="notice")  # set by cap_samples when it capped a count
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


def cap_samples(model: ModelSpec, x: torch.Tensor, wanted: int, extras: dict | None, *,
                passes_per_sample: float = 1.0, minimum: int = 8, what: str = "samples") -> int:
    """``wanted`` if it fits the session's time budget (``RunOptions.time_budget``) on this device, else the most
    that fit (never silently: ``extras['notice']`` says so; declare :data:`NOTICE`)."""
    budget_s = options.current().time_budget
    each = seconds_per_pass(model.module, x) * passes_per_sample * len(x)
    if each * wanted <= budget_s:
        return wanted
    fit = max(minimum, int(budget_s / each))
    fit = int(float(f"{fit:.2g}"))  # two significant digits: the same cap on run-to-run timing noise
    if extras is not None:
        extras["notice"] = (f"{what.capitalize()} capped from {wanted} to {fit} to fit the {budget_s:.0f} s time budget "
                            f"on {device_label(x.device)} (≈{each * 1000:.0f} ms per {what[:-1]}); "
                            "raise the budget to use them all.")
    return min(wanted, fit)


def upsample(maps: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Coarse maps ``[B, h, w]`` -> ``[B, H, W]`` by bilinear interpolation."""
    return F.interpolate(maps.unsqueeze(1), size=size, mode="bilinear", align_corners=False).squeeze(1)


def activations_and_grads(model: ModelSpec, x: torch.Tensor, target: torch.Tensor,
                          layer: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Feature maps ``A`` at ``layer`` and d logit[target] / dA, both ``[B, C, h, w]``.

    Backward stops at the layer: nothing below it is differentiated. The forward pass is reported as the
    explained input's first (:func:`trace.first_forward`): Grad-CAM costs one forward and a partial backward.
    """
    with torch.enable_grad(), capture(model.submodule(layer), leaf=True) as rec:
        out = model.module(x)
        target = first_forward(x, out, target)
        score = select(out, target)
        act = rec.activation
        if act is None or not act.requires_grad:
            raise ExplainerError(f"The layer {layer or model.cam_layer!r} is not used on the way to the output; "
                                 "choose another layer.")
        (grad,) = torch.autograd.grad(score.sum(), act)
    return model.as_grid(act.detach()).float(), model.as_grid(grad).float()
