"""SmoothGrad / SmoothGrad² / VarGrad: a wrapper over any registered gradient attribution."""

from __future__ import annotations

from typing import Any

import torch

from ..engine import batch_size_for, chunks
from ..models.spec import ModelSpec
from ..registry import Cost, ParamSpec, Progress, explainer, get_explainer, reduce_channels
from ..result import ExplainerResult

BASES = ("gradient", "input_x_gradient", "integrated_gradients", "guided_backprop")
MODES = ("mean", "squared", "variance")


@explainer(
    "smoothgrad", title="SmoothGrad", family="gradient",
    summary="Averages another gradient method over noisy copies of the image, removing gradient noise. "
            "'squared' is SmoothGrad², 'variance' is VarGrad.",
    reference="Smilkov et al. 2017, 'SmoothGrad: removing noise by adding noise'. arXiv:1706.03825; "
              "VarGrad: Adebayo et al. 2018, arXiv:1810.03307",
    cost=Cost(1, 1, per="samples", count=lambda p, _size: p["base_steps"] if p["base"] == "integrated_gradients" else 1,
              count_label="IG steps (base = IG)"),
    stochastic=True, signed_if=lambda p: p["reduction"] == "sum",
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
    spec = get_explainer(base)
    params: dict[str, Any] = {"steps": base_steps} if any(p.name == "steps" for p in spec.params) else {}
    gen = torch.Generator().manual_seed(seed)
    eps = torch.randn((samples, *x.shape[1:]), generator=gen).to(x.device)
    sigma = noise * (x.flatten(1).amax(1) - x.flatten(1).amin(1))
    total, sq = torch.zeros_like(x), torch.zeros_like(x)

    def compute(start: int, stop: int) -> tuple[torch.Tensor, torch.Tensor]:
        idx = torch.arange(start, stop, device=x.device)
        b, k = idx // samples, idx % samples
        xi = x[b] + sigma[b].view(-1, 1, 1, 1) * eps[k]
        return spec.attribute(model, xi, target[b], seed=seed, **params).values, b

    size = max(1, batch_size_for(x.device, x.shape[-1] * x.shape[-2]) // int(params.get("steps", 1)))
    for _, _, (a, b) in chunks(len(x) * samples, compute, batch_size=size, progress=progress, desc="noisy samples"):
        total.index_add_(0, b, a)
        sq.index_add_(0, b, a * a)
    mean = total / samples
    out = {"mean": mean, "squared": sq / samples, "variance": (sq / samples - mean * mean).clamp_min(0)}[mode]
    return ExplainerResult(reduce_channels(out, reduction), target)
