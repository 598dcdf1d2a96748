"""Integrated Gradients, batched over interpolation steps through the engine; any-time previews from the steps so far."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch

from .. import anytime
from ..engine import batch_size_for, chunks, input_gradients, logits_of, select
from ..models.spec import ModelSpec
from ..registry import Cost, Diagnostic, ParamSpec, Progress, attribution
from ..result import Attribution, Refinement
from .common import reference_input

BASELINES = ("black", "blurred", "noise")
RULES = ("gausslegendre", "riemann_trapezoid", "riemann_middle")
BUFFER_BYTES = 2 ** 29  # the per-step gradients one input's previews keep (50 steps at 224 px: 30 MB)


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


def coarse_to_fine(alphas: torch.Tensor) -> list[int]:
    """The steps in the order they are computed for previews: the point nearest the middle of the path first, then
    each time the one farthest (in α) from those taken (the first of ties), so every prefix spreads over the path."""
    a = alphas.double().cpu().numpy()
    order = [int(np.abs(a - 0.5).argmin())]
    dist = np.abs(a - a[order[0]])
    for _ in range(len(a) - 1):
        order.append(int(dist.argmax()))
        dist = np.minimum(dist, np.abs(a - a[order[-1]]))
    return order


def partial_weights(alphas: torch.Tensor, weights: torch.Tensor, seen: torch.Tensor) -> torch.Tensor:
    """Weights on the steps ``seen`` (indices, ascending α) that apply the rule to the gradient interpolated linearly
    in α between them (held constant beyond the first and last): each step's weight goes to its two seen neighbours in
    proportion. With every step seen they are the rule's own weights."""
    a, w = alphas.double().cpu().numpy(), weights.double().cpu().numpy()
    av = a[seen.cpu().numpy()]
    if len(av) == 1:
        return torch.ones(1, dtype=weights.dtype, device=weights.device)
    hi = np.clip(np.searchsorted(av, a), 1, len(av) - 1)
    f = np.clip((a - av[hi - 1]) / (av[hi] - av[hi - 1]), 0.0, 1.0)
    out = np.zeros(len(av))
    np.add.at(out, hi - 1, w * (1 - f))
    np.add.at(out, hi, w * f)
    return torch.tensor(out, dtype=weights.dtype, device=weights.device)


def _result(x: torch.Tensor, x0: torch.Tensor, target: torch.Tensor, acc: torch.Tensor, z: torch.Tensor,
            refinement: Refinement) -> Attribution:
    """The attribution (x − x') ⊙ ``acc`` and its completeness diagnostics from the logits ``z`` of [x, x']."""
    attr = (x - x0) * acc
    f = select(z, torch.cat([target, target]))
    delta = f[: len(x)] - f[len(x):]
    gap = (attr.sum(dim=(1, 2, 3)) - delta).abs() / delta.abs().clamp_min(1e-12)
    return Attribution(attr, target, z[: len(x)], {"completeness_gap": gap.tolist(), "score_difference": delta.tolist()},
                       refinement=refinement)


def attribute_steps(model: ModelSpec, x: torch.Tensor, target: torch.Tensor, *, steps: int = 50,
                    baseline: str = "black", rule: str = "gausslegendre", progress: Progress | None = None,
                    seed: int = 0, previews: bool = False) -> Iterator[Attribution]:
    """IG (Sundararajan et al. 2017, arXiv:1703.01365) any-time. One input whose steps take several engine batches
    computes its full batches' steps in :func:`coarse_to_fine` order, keeping each step's gradient, and the last
    ``steps % batch`` steps (the short batch of a run in order) last, as that run does; with ``previews``, at the
    :func:`anytime.schedule` batch boundaries, the rule is applied to the gradient interpolated between the steps done
    (:func:`partial_weights`), at no extra pass. The final sum runs over the steps in the rule's order, batch by batch
    as a run in order adds them: the one-shot map, bit-equal to a run in order's wherever a step's gradient depends on
    its batch's size but not on which steps share it (every batch keeps its size; checked with AVX-512 and AVX2
    kernels). Several inputs, or one batch: in order, no previews. Uncertainty: the change since the previous
    refinement (:data:`anytime.CHANGE`, an estimate of the interpolation error)."""
    x0 = reference_input(model, x, baseline, seed)
    alphas, weights = (t.to(x.device) for t in nodes(steps, rule))
    size, total = batch_size_for(x.device, x.shape[-1] * x.shape[-2]), len(x) * steps
    keep = len(x) == 1 and total > size and total * x[0].numel() * x.element_size() <= BUFFER_BYTES
    full = total - total % size  # the steps of full batches, visited coarse to fine; then the short batch's
    order = torch.tensor([*coarse_to_fine(alphas[:full]), *range(full, total)] if keep else range(total),
                         dtype=torch.long, device=x.device)
    bounds = [*anytime.schedule(full, size)[:-1], total] if keep and previews else [total]  # none just before the end
    kind = anytime.CHANGE if len(bounds) > 1 else ""
    z = logits_of(model.module, torch.cat([x, x0]), desc="completeness")
    grads = torch.empty(total if keep else 0, *x.shape[1:], device=x.device)
    acc, j = torch.zeros_like(x), 0

    def compute(start: int, stop: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        idx = order[start:stop]
        b, s = idx // steps, idx % steps
        a = alphas[s].view(-1, 1, 1, 1)
        return input_gradients(model.module, x0[b] + a * (x[b] - x0[b]), target[b]).grad, b, s

    for _, stop, (g, b, s) in chunks(total, compute, batch_size=size, progress=progress, desc="IG steps"):
        if not keep:
            acc.index_add_(0, b, g * weights[s].view(-1, 1, 1, 1))
            continue
        grads[s] = g
        if stop >= bounds[j] and stop < total:
            while bounds[j] <= stop:
                j += 1
            seen = order[:stop].sort().values
            part = torch.tensordot(partial_weights(alphas, weights, seen), grads[seen], dims=1)[None]
            yield _result(x, x0, target, part, z, Refinement(stop, steps, f"{stop} of {steps} steps (the others "
                                                                         "interpolated)", kind))
    for start in range(0, total, size) if keep else ():  # the rule's order, in a run-in-order's batches
        s = torch.arange(start, min(total, start + size), device=x.device)
        acc.index_add_(0, s // steps, grads[s] * weights[s].view(-1, 1, 1, 1))
    yield _result(x, x0, target, acc, z, Refinement(steps, steps, f"{steps} of {steps} steps", kind))


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
