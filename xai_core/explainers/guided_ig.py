"""Guided Integrated Gradients: an adaptive path that first moves the pixels with the smallest gradients."""

from __future__ import annotations

import torch

from ..models.spec import ModelSpec
from ..registry import Cost, ParamSpec, Progress, attribution
from ..result import Attribution
from .pixel_paths import COMPLETENESS, completeness, first_pass, pixel_gradients

CLOSE = 1e-9  # relative and absolute tolerance at which a step has reached its L1 target (as PAIR saliency)


class GuidedPath:
    """The state of one batch of Guided IG paths in float64, one row per image (features flattened)."""

    def __init__(self, x: torch.Tensor, baseline: torch.Tensor, steps: int, fraction: float, max_dist: float) -> None:
        self.end, self.start = x.double().flatten(1), baseline.double().flatten(1)
        self.diff = self.end - self.start
        self.x = self.start.clone()
        self.attr = torch.zeros_like(self.x)
        self.l1_total = self.diff.abs().sum(1)
        self.steps, self.fraction, self.max_dist = steps, fraction, max_dist

    def advance(self, step: int, grad: torch.Tensor) -> None:
        """Move every path from step ``step`` to ``step + 1`` given the gradients ``grad [B, N]`` at its point."""
        alpha = (step + 1.0) / self.steps
        a_min, a_max = max(alpha - self.max_dist, 0.0), min(alpha + self.max_dist, 1.0)
        x_min, x_max = self.start + self.diff * a_min, self.start + self.diff * a_max
        target = self.l1_total * (1 - (step + 1) / self.steps)  # the L1 distance to the input after this step
        ranked = grad.clone()
        k = int((ranked.shape[1] - 1) * self.fraction)  # numpy.quantile(method='lower')'s index
        active = self.l1_total > 0  # an input equal to its baseline gets no attribution
        while bool(active.any()):
            x_old = self.x
            along = torch.where(self.diff != 0, (self.x - self.start) / self.diff, a_max)
            x = torch.where((along < a_min) & active[:, None], x_min, self.x)  # features left behind catch up
            l1 = (x - self.end).abs().sum(1)
            done = (l1 - target).abs() <= torch.clamp(CLOSE * torch.maximum(l1, target), min=CLOSE)
            moving = active & ~done
            ranked[x == x_max] = torch.inf  # features at the edge of the band are not selected again
            size = ranked.abs()
            threshold = size.kthvalue(k + 1, dim=1).values
            chosen = (size <= threshold[:, None]) & (ranked != torch.inf) & moving[:, None]
            room = ((x - x_max).abs() * chosen).sum(1)
            gamma = torch.where(room > 0, (l1 - target) / room, torch.inf)[:, None]
            moved = torch.where(gamma > 1, x_max, x + (x_max - x) * gamma)
            self.x = torch.where(chosen, moved, x)
            self.attr += (self.x - x_old) * grad
            active = moving & (gamma[:, 0] > 1) & (room > 0)  # room 0: nothing left to move (PAIR would spin)


@attribution(
    "guided_ig", title="Guided Integrated Gradients", family="gradient", signed=True, reports_logits=True,
    summary="Integrated Gradients along an adaptive path from black: at every step the pixels whose gradient is "
            "smallest move first, which keeps the path away from regions of noisy, saturated gradients.",
    reference="Kapishnikov, Venugopalan, Avci, Wedin, Terry & Bolukbasi 2021, 'Guided Integrated Gradients: an "
              "Adaptive Path Method for Removing Noise', CVPR. arXiv:2106.09788",
    cost=Cost(1, 1, per="steps"),
    diagnostics=COMPLETENESS,
    params=(
        ParamSpec("steps", "int", 200, "Steps", "Points on the path (one gradient each); more is more exact and "
                  "slower.", 2, 2000, 1),
        ParamSpec("fraction", "float", 0.25, "Fraction moved per iteration", "Share of the pixels, those with the "
                  "smallest |gradient|, moved at each iteration within a step.", 0.01, 1.0, 0.01),
        ParamSpec("max_dist", "float", 0.02, "Maximum deviation", "How far (as a fraction of the way) a pixel may run "
                  "ahead of or lag behind the straight path: 0 is Integrated Gradients, 1 is unbounded.",
                  0.0, 1.0, 0.01),
    ),
)
def attribute(model: ModelSpec, x: torch.Tensor, target: torch.Tensor, *, steps: int = 200, fraction: float = 0.25,
              max_dist: float = 0.02, progress: Progress | None = None) -> Attribution:
    """Σ_steps Σ_iterations ∇f(path) ⊙ Δpath along the Guided IG path from black (Kapishnikov et al. 2021,
    arXiv:2106.09788), as PAIR saliency's GuidedIG.

    The path runs in pixel space [0, 1] from black (0) to the image, in float64. Step s ends at L1 distance
    (1 − s/steps)·‖x − 0‖₁ from the image: each iteration first brings every feature within
    [α − max_dist, α + max_dist] of the way (α = s/steps), then moves the ``fraction`` of features with the smallest
    |∂f/∂pixel| toward the upper edge of that band, just enough to reach the step's L1 target; the gradient is taken
    once per step. The first forward runs on x itself (it resolves ``TOP1``); diagnostics 'completeness_gap' and
    'score_difference' = f(x) − f(black).

    The path is sequential (each step needs the last one's gradient) and a discontinuous function of the gradients:
    a float32 round-off difference can select another pixel and move the map by percents (measured: 4 % of its peak
    between batch 3 and batch 1 on 2 threads). So each image follows its own path with batch-1 gradients, and a map
    never depends on what it is batched with; there is no batch to split, hence no engine batching here.
    """
    pix = model.denormalise(x).float()
    black = torch.zeros_like(pix)
    fwd, start_scores = first_pass(model, x, target, [black])
    attr = torch.empty_like(pix)
    for b in range(len(x)):  # one path at a time: see the note above
        path = GuidedPath(pix[b: b + 1], black[b: b + 1], steps, fraction, max_dist)
        for step in range(steps):
            grad = pixel_gradients(model, path.x.float().view_as(pix[b: b + 1]), fwd.target[b: b + 1]).grad
            path.advance(step, grad.double().flatten(1))
            if progress is not None:
                progress((b * steps + step + 1) / (len(x) * steps), f"Guided IG steps {step + 1}/{steps}")
        attr[b] = path.attr.float().view_as(pix[b])
    return Attribution.of(attr, fwd, completeness(attr, fwd, start_scores))
