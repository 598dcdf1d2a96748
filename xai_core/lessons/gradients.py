"""Lessons 1 and 2: shattered gradients (and SmoothGrad cleaning them up) and the Integrated Gradients path."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from ..errors import ExplainerError
from ..explainers.common import blur
from ..models.spec import ModelSpec
from ..request import ExplainRequest
from ..workbench import Workbench
from .common import correlation, to_uint8

BASELINES = ("black", "blurred", "noise", "uniform")  # Sturmfels, Lundberg & Lee 2020, 'Visualizing the Impact ...'


def shift_right(x: torch.Tensor, k: int) -> torch.Tensor:
    """The input moved ``k`` pixels to the right; the new left columns repeat the edge (no wrap-around)."""
    return F.pad(x, (k, 0, 0, 0), mode="replicate")[..., : x.shape[-1]] if k else x


@dataclass
class Shattered:
    """Maps of copies of one image shifted by ``shifts`` pixels, moved back so they line up, cropped to the columns
    every copy shares. ``*_stability`` is the mean correlation of each shifted copy's map with the unshifted one,
    read at an 8-pixel scale."""

    shifts: list[int]
    inputs: np.ndarray  # uint8 [n, H, W, 3], the shifted model inputs
    plain: np.ndarray  # [n, H, W'] gradient maps
    smooth: np.ndarray  # [n, H, W'] SmoothGrad maps
    plain_stability: float
    smooth_stability: float


def _aligned(maps: torch.Tensor, shifts: list[int]) -> np.ndarray:
    w, top = maps.shape[-1], max(shifts)
    return np.stack([maps[i, :, k:w - top + k].numpy() for i, k in enumerate(shifts)])


def _stability(maps: np.ndarray, pool: int = 8) -> float:
    """Mean correlation with the unshifted map, on maps averaged over ``pool``-pixel squares (the scale a viewer
    reads a heatmap at; per pixel, SmoothGrad's own sampling noise would dominate with few samples)."""
    h, w = maps.shape[1:]
    small = [cv2.resize(m, (max(1, w // pool), max(1, h // pool)), interpolation=cv2.INTER_AREA) for m in maps]
    return float(np.mean([correlation(small[0], m) for m in small[1:]])) if len(small) > 1 else 1.0


def shattered(wb: Workbench, image: np.ndarray, target: int, *, shifts: tuple[int, ...] = (0, 1, 2, 3),
              noise: float = 0.15, samples: int = 8, seed: int = 0) -> Shattered:
    """Gradient and SmoothGrad (``noise`` as a fraction of the input range, ``samples`` copies) maps of shifted
    copies of ``image`` for class ``target``."""
    shifts = sorted({int(k) for k in shifts} | {0})
    with wb.session() as model:
        x = model.preprocess(image)
        xs = torch.cat([shift_right(x, k) for k in shifts])
        targets: list[int | None] = [target] * len(shifts)
        plain = wb.explain_tensor(xs, targets, ExplainRequest.make("gradient", target)).maps
        smooth = wb.explain_tensor(xs, targets, ExplainRequest.make(
            "smoothgrad", target, {"noise": noise, "samples": samples}, seed)).maps
        inputs = to_uint8(model, xs)
    a, b = _aligned(plain, shifts), _aligned(smooth, shifts)
    return Shattered(shifts, inputs, a, b, _stability(a), _stability(b))


def baseline_input(model: ModelSpec, x: torch.Tensor, kind: str, seed: int = 0) -> torch.Tensor:
    """IG baselines from Sturmfels et al. 2020: black, a blurred copy, the image plus Gaussian noise (σ = 0.2 of
    the range, clipped) and a uniformly random image; both random ones are drawn from ``seed``."""
    gen = torch.Generator().manual_seed(seed)
    if kind == "black":
        return model.normalise(torch.zeros_like(x))
    if kind == "blurred":
        return blur(model, x)
    if kind == "noise":
        x01 = model.denormalise(x).cpu()
        return model.normalise((x01 + 0.2 * torch.randn(x01.shape, generator=gen)).clamp(0, 1).to(x.device))
    if kind == "uniform":
        return model.normalise(torch.rand(x.shape, generator=gen).to(x.device))
    raise ExplainerError(f"Unknown baseline {kind!r}; choose one of {', '.join(BASELINES)}.")


@dataclass
class IGPath:
    """The straight path from a baseline to the image, at the midpoints ``alphas`` of ``steps`` equal intervals.

    ``integrand[i]`` = ∇f(x' + α_i(x − x')) · (x − x'); its mean over α is Σ attributions (the Riemann sum), which
    completeness says equals ``f(x) − f(x')`` (``gap`` is the relative difference)."""

    alphas: np.ndarray
    scores: np.ndarray  # the target's logit along the path
    integrand: np.ndarray
    pictures: np.ndarray  # uint8 [k, H, W, 3] at ``picture_alphas``
    picture_alphas: np.ndarray
    attribution: np.ndarray  # [H, W], signed channel sum
    total: float
    difference: float

    @property
    def gap(self) -> float:
        return abs(self.total - self.difference) / max(abs(self.difference), 1e-12)


def ig_path(wb: Workbench, image: np.ndarray, target: int, *, baseline: str = "black", steps: int = 32,
            pictures: int = 5, seed: int = 0) -> IGPath:
    """Integrated Gradients of class ``target`` computed in the open (midpoint rule, batches of 16)."""
    if not 2 <= steps <= 256:
        raise ExplainerError(f"Use 2 to 256 steps on the path; got {steps}.")
    alphas = (torch.arange(steps, dtype=torch.float32) + 0.5) / steps
    grads, scores = [], []
    with wb.session() as model:
        x = model.preprocess(image).to(model.device)
        x0 = baseline_input(model, x, baseline, seed)
        for start in range(0, steps, 16):
            a = alphas[start:start + 16].to(x.device).view(-1, 1, 1, 1)
            with torch.enable_grad():
                p = (x0 + a * (x - x0)).requires_grad_(True)
                out = model.module(p)[:, target].float()
                (g,) = torch.autograd.grad(out.sum(), p)
            grads.append(g.detach())
            scores.append(out.detach())
        with torch.inference_mode():
            ends = model.module(torch.cat([x0, x]))[:, target].float()
        picks = torch.linspace(0, 1, pictures)
        shown = to_uint8(model, x0 + picks.to(x.device).view(-1, 1, 1, 1) * (x - x0))
    g = torch.cat(grads)
    delta = (x - x0)
    integrand = (g * delta).flatten(1).sum(1)
    attribution = (delta * g.mean(0, keepdim=True))[0].sum(0)
    return IGPath(alphas.numpy(), torch.cat(scores).cpu().numpy(), integrand.cpu().numpy(), shown, picks.numpy(),
                  attribution.cpu().numpy(), float(integrand.mean()), float(ends[1] - ends[0]))


def relu_toy(x: float = 2.0, steps: int = 64) -> dict[str, float]:
    """f(x) = 1 − ReLU(1 − x) against the baseline 0 (Sundararajan et al. 2017, §2.1): f changes by 1 from 0 to
    ``x`` > 1, yet the gradient at ``x`` is 0, so gradient × input gives 0 — it breaks *sensitivity*; IG, which
    integrates the gradient along the path, gives f(x) − f(0)."""

    def f(v: torch.Tensor) -> torch.Tensor:
        return 1 - torch.relu(1 - v)

    with torch.enable_grad():
        v = torch.tensor([float(x)], requires_grad=True)
        (g,) = torch.autograd.grad(f(v).sum(), v)
        path = ((torch.arange(steps, dtype=torch.float32) + 0.5) / steps * float(x)).requires_grad_(True)
        (gp,) = torch.autograd.grad(f(path).sum(), path)
    return {"x": float(x), "f(x)": float(f(torch.tensor(float(x)))), "f(0)": float(f(torch.tensor(0.0))),
            "gradient": float(g), "gradient × input": float(g * x), "integrated gradients": float(gp.mean() * x)}
