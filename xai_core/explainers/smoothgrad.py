"""SmoothGrad / SmoothGrad² / VarGrad: a wrapper over any registered gradient attribution, refined as it goes."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch

from .. import anytime
from ..engine import batch_size_for, chunks
from ..models.spec import ModelSpec
from ..registry import Cost, ParamSpec, Progress, explainer, get_explainer, reduce_channels
from ..result import ExplainerResult, Refinement

BASES = ("gradient", "input_x_gradient", "integrated_gradients", "guided_backprop")
MODES = ("mean", "squared", "variance")


def _aggregate(total: torch.Tensor, sq: torch.Tensor, count: torch.Tensor | int, mode: str) -> torch.Tensor:
    """SmoothGrad's mean, SmoothGrad²'s mean square or VarGrad's variance from the sums of a and a² over ``count``."""
    mean = total / count
    if mode == "mean":
        return mean
    return sq / count if mode == "squared" else (sq / count - mean * mean).clamp_min(0)


def smoothgrad_steps(model: ModelSpec, x: torch.Tensor, target: torch.Tensor, *, base: str = "gradient",
                     base_steps: int = 16, samples: int = 25, noise: float = 0.15, mode: str = "mean",
                     reduction: str = "max_abs", progress: Progress | None = None, seed: int = 0,
                     previews: bool = False) -> Iterator[ExplainerResult]:
    """Mean of a gradient attribution over x + N(0, σ²) (Smilkov et al. 2017, arXiv:1706.03825), over the first k
    noisy samples at each refinement (with ``previews`` and one input) and over all of them last.

    Every sample gets the same seeded noise draws, so a map does not depend on what it is batched with.
    Uncertainty: a Poisson bootstrap over the noisy samples so far (:mod:`xai_core.anytime`).
    """
    spec = get_explainer(base)
    params: dict[str, Any] = {"steps": base_steps} if any(p.name == "steps" for p in spec.params) else {}
    gen = torch.Generator().manual_seed(seed)
    eps = torch.randn((samples, *x.shape[1:]), generator=gen).to(x.device)
    sigma = noise * (x.flatten(1).amax(1) - x.flatten(1).amin(1))
    total, sq = torch.zeros_like(x), torch.zeros_like(x)
    boot = anytime.poisson_weights(samples, seed, x.device)
    reps = torch.zeros(len(x), 2, len(boot), *x.shape[1:], device=x.device)  # per replicate: Σ w·a and Σ w·a²

    def compute(start: int, stop: int) -> tuple[torch.Tensor, torch.Tensor]:
        idx = torch.arange(start, stop, device=x.device)
        b, k = idx // samples, idx % samples
        xi = x[b] + sigma[b].view(-1, 1, 1, 1) * eps[k]
        return spec.attribute(model, xi, target[b], seed=seed, **params).values, b

    size = max(1, batch_size_for(x.device, x.shape[-1] * x.shape[-2]) // int(params.get("steps", 1)))
    bounds = anytime.schedule(samples, size) if previews and len(x) == 1 else [len(x) * samples]
    for start, stop, (a, b) in chunks(len(x) * samples, compute, batch_size=size, progress=progress, desc="noisy samples"):
        total.index_add_(0, b, a)
        sq.index_add_(0, b, a * a)
        w = boot[:, torch.arange(start, stop, device=x.device) % samples]
        for i in b.unique().tolist():
            sel = b == i
            a2 = torch.stack([a[sel], a[sel] * a[sel]]).flatten(2)
            reps[i] += torch.einsum("rn,cnd->crd", w[:, sel], a2).view(reps.shape[1:])
        if stop not in bounds:
            continue
        done = stop if len(x) == 1 else samples
        out = _aggregate(total, sq, done, mode)
        weight = boot[:, :done].sum(1)
        rep = _aggregate(reps[:, 0], reps[:, 1], weight.clamp_min(1).view(1, -1, 1, 1, 1), mode)
        rep_maps = reduce_channels(rep.flatten(0, 1), reduction).view(len(x), len(boot), *x.shape[-2:])
        yield ExplainerResult(reduce_channels(out, reduction), target, None, {}, anytime.spread(rep_maps, weight),
                              Refinement(done, samples, f"{done:,} of {samples:,} noisy samples",
                                         anytime.bootstrap_text("noisy samples")))


@explainer(
    "smoothgrad", title="SmoothGrad", family="gradient",
    summary="Averages another gradient method over noisy copies of the image, removing gradient noise. "
            "'squared' is SmoothGrad², 'variance' is VarGrad.",
    reference="Smilkov et al. 2017, 'SmoothGrad: removing noise by adding noise'. arXiv:1706.03825; "
              "VarGrad: Adebayo et al. 2018, arXiv:1810.03307",
    cost=Cost(1, 1, per="samples", count=lambda p, _size: p["base_steps"] if p["base"] == "integrated_gradients" else 1,
              count_label="IG steps (base = IG)"),
    stochastic=True, steps=smoothgrad_steps, signed_if=lambda p: p["reduction"] == "sum",
    params=(
        ParamSpec("base", "choice", "gradient", "Base method", "The gradient method that is smoothed.", choices=BASES),
        ParamSpec("base_steps", "int", 16, "IG steps (base = IG)", "Path steps per noisy sample when smoothing "
                  "Integrated Gradients.", 2, 256, 1),
        ParamSpec("samples", "int", 25, "Samples", "Noisy copies averaged.", 1, 500, 1),
        ParamSpec("noise", "float", 0.15, "Noise level σ", "Noise std as a fraction of the input's value range.",
                  0.0, 1.0, 0.01),
        ParamSpec("mode", "choice", "mean", "Aggregation", "mean = SmoothGrad, squared = SmoothGrad², "
                  "variance = VarGrad.", choices=MODES),
        ParamSpec("reduction", "choice", "max_abs", "Channel reduction",
                  "How the three colour channels become one map ('sum' keeps the sign).",
                  choices=("max_abs", "sum_abs", "l2", "sum")),
    ),
)
def smoothgrad(model: ModelSpec, x: torch.Tensor, target: torch.Tensor, *, base: str = "gradient",
               base_steps: int = 16, samples: int = 25, noise: float = 0.15, mode: str = "mean",
               reduction: str = "max_abs", progress: Progress | None = None, seed: int = 0) -> ExplainerResult:
    """Mean of a gradient attribution over x + N(0, σ²) (Smilkov et al. 2017, arXiv:1706.03825).

    Every sample gets the same seeded noise draws, so a map does not depend on what it is batched with.
    """
    return anytime.last(smoothgrad_steps(model, x, target, base=base, base_steps=base_steps, samples=samples,
                                         noise=noise, mode=mode, reduction=reduction, progress=progress, seed=seed))
