"""Integrated Gradients, batched over interpolation steps through the engine; previews with fewer steps."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch

from .. import anytime
from ..engine import batch_size_for, chunks, input_gradients, logits_of, select
from ..models.spec import ModelSpec
from ..registry import Cost, Diagnostic, ParamSpec, Progress, attribution
from ..result import Attribution, Refinement
from . import refining
from .common import reference_input

BASELINES = ("black", "blurred", "noise")
RULES = ("gausslegendre", "riemann_trapezoid", "riemann_middle")


def nodes(steps: int, rule: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Quadrature points on [0, 1] and their weights (they sum to 1)."""
    if rule == "gausslegendre":
        a, w = np.polynomial.legendre.leggauss(steps)
        a, w = (a + 1) / 2, w / 2
    elif rule == "riemann_trapezoid":
        a = np.linspace(0, 1, steps)
        w = np.full(steps, 1.0 / max(steps - 1, 1))
        w[0] = w[-1] = w[0] / 2
    else:
        a = (np.arange(steps) + 0.5) / steps
        w = np.full(steps, 1.0 / steps)
    return torch.tensor(a, dtype=torch.float32), torch.tensor(w, dtype=torch.float32)


def _integrate(model: ModelSpec, x: torch.Tensor, x0: torch.Tensor, target: torch.Tensor, steps: int, rule: str,
               progress: Progress | None, refinement: Refinement) -> Attribution:
    """IG of ``x`` from ``x0`` with ``steps`` points of ``rule``, and its completeness diagnostics."""
    alphas, weights = nodes(steps, rule)
    alphas, weights = alphas.to(x.device), weights.to(x.device)
    acc = torch.zeros_like(x)

    def compute(start: int, stop: int) -> tuple[torch.Tensor, torch.Tensor]:
        idx = torch.arange(start, stop, device=x.device)
        b, s = idx // steps, idx % steps
        a = alphas[s].view(-1, 1, 1, 1)
        grad = input_gradients(model.module, x0[b] + a * (x[b] - x0[b]), target[b]).grad
        return grad * weights[s].view(-1, 1, 1, 1), b

    size = batch_size_for(x.device, x.shape[-1] * x.shape[-2])
    for _, _, (g, b) in chunks(len(x) * steps, compute, batch_size=size, progress=progress, desc="IG steps"):
        acc.index_add_(0, b, g)
    attr = (x - x0) * acc
    z = logits_of(model.module, torch.cat([x, x0]), desc="completeness")
    f = select(z, torch.cat([target, target]))
    delta = f[: len(x)] - f[len(x):]
    gap = (attr.sum(dim=(1, 2, 3)) - delta).abs() / delta.abs().clamp_min(1e-12)
    return Attribution(attr, target, z[: len(x)], {"completeness_gap": gap.tolist(), "score_difference": delta.tolist()},
                       refinement=refinement)


def attribute_steps(model: ModelSpec, x: torch.Tensor, target: torch.Tensor, *, steps: int = 50,
                    baseline: str = "black", rule: str = "gausslegendre", progress: Progress | None = None,
                    seed: int = 0, previews: bool = False) -> Iterator[Attribution]:
    """IG (Sundararajan et al. 2017, arXiv:1703.01365) with growing step counts: with ``previews`` and one input,
    separate runs with 4, 8, 16, … steps (each at most half of ``steps``, together at most 30% of it) come first,
    then the ``steps``-step run itself (the one-shot attribution, computed as if alone). Uncertainty: the change since
    the previous run (:data:`anytime.CHANGE`, an estimate of the quadrature error; none without previews)."""
    x0 = reference_input(model, x, baseline, seed)
    ladder: list[int] = []
    for n in (4, 8, 16, 32, 64, 128) if previews and len(x) == 1 else ():
        if 2 * n > steps or sum(ladder) + n > 0.3 * steps:  # previews cost at most 30% of the run itself
            break
        ladder.append(n)
    kind = anytime.CHANGE if ladder else ""
    work, done = sum(ladder) + steps, 0
    for n in ladder:
        yield _integrate(model, x, x0, target, n, rule, refining.portion(progress, done, n, work, f"{n}-step preview: "),
                         Refinement(n, steps, f"{n} steps (a preview; {steps} in full)", kind))
        done += n
    yield _integrate(model, x, x0, target, steps, rule, refining.portion(progress, done, steps, work),
                     Refinement(steps, steps, f"{steps} of {steps} steps", kind))


@attribution(
    "integrated_gradients", title="Integrated Gradients", family="gradient", signed=True,
    summary="Gradients averaged along the straight path from a baseline to the image; the attributions "
            "add up to the score difference (completeness).",
    reference="Sundararajan, Taly & Yan 2017, 'Axiomatic Attribution for Deep Networks', ICML. arXiv:1703.01365",
    cost=Cost(1, 1, per="steps"), steps=attribute_steps,
    diagnostics=(
        Diagnostic("completeness_gap", "Completeness gap", fmt="completeness gap {:.1%}"),
        Diagnostic("score_difference", "f(x) − f(baseline)", show="data"),
    ),
    params=(
        ParamSpec("steps", "int", 50, "Steps", "Points on the path; more is more exact and slower.", 2, 512, 1),
        ParamSpec("baseline", "choice", "black", "Baseline", "The 'absence of signal' the path starts from.",
                  choices=BASELINES),
        ParamSpec("rule", "choice", "gausslegendre", "Integration rule",
                  "Quadrature over the path; Gauss-Legendre converges fastest.", choices=RULES),
    ),
)
def attribute(model: ModelSpec, x: torch.Tensor, target: torch.Tensor, *, steps: int = 50,
              baseline: str = "black", rule: str = "gausslegendre", progress: Progress | None = None,
              seed: int = 0) -> Attribution:
    """(x − x') ⊙ ∫₀¹ ∇f(x' + α(x − x')) dα (Sundararajan et al. 2017, arXiv:1703.01365).

    Diagnostics: 'completeness_gap' = |Σ attributions − (f(x) − f(x'))| / |f(x) − f(x')| and 'score_difference'
    = f(x) − f(x') per sample, from one extra forward of x and x' (whose logits of x the result carries).
    ``target`` must be resolved (no ``TOP1``): the path's first point is the baseline, not the input.
    """
    return anytime.last(attribute_steps(model, x, target, steps=steps, baseline=baseline, rule=rule,
                                        progress=progress, seed=seed))
