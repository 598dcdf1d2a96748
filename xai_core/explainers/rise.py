"""RISE: randomised input sampling, masks generated per batch and scored through the engine, refined as it goes."""

from __future__ import annotations

from collections.abc import Iterator

import torch
import torch.nn.functional as F

from .. import anytime
from ..engine import batch_size_for
from ..models.spec import ModelSpec
from ..registry import Cost, Diagnostic, ParamSpec, Progress, explainer
from ..result import ExplainerResult, Refinement
from . import refining
from .common import NOTICE, cap_samples, reference_input


def smooth_masks(cells: torch.Tensor, shifts: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Binary s×s grids -> smooth masks [n, 1, H, W]: upsampled to (s+1)·cell and cropped at a random shift."""
    s = cells.shape[-1]
    h, w = size
    ch, cw = -(-h // s), -(-w // s)
    up = F.interpolate(cells.unsqueeze(1), size=((s + 1) * ch, (s + 1) * cw), mode="bilinear", align_corners=False)
    rows = shifts[:, 0].view(-1, 1) + torch.arange(h, device=cells.device)
    cols = shifts[:, 1].view(-1, 1) + torch.arange(w, device=cells.device)
    n = torch.arange(len(cells), device=cells.device).view(-1, 1, 1)
    return up[n, 0, rows.unsqueeze(2), cols.unsqueeze(1)].unsqueeze(1)


def rise_steps(model: ModelSpec, x: torch.Tensor, target: torch.Tensor, *, masks: int = 2000, cells: int = 7,
               p: float = 0.5, progress: Progress | None = None, seed: int = 0,
               previews: bool = False) -> Iterator[ExplainerResult]:
    """S = Σ_i P_c(x ⊙ M_i) · M_i / (N · p) (Petsiuk et al. 2018, arXiv:1806.07421), with previews S_k over the
    first k masks (k on :func:`anytime.schedule`) when ``previews`` and one input.

    Masked pixels are black. The N grids and shifts are drawn once from ``seed`` (shared by every
    image, so batching never changes a map) and upsampled batch by batch, so the N masks are never
    all in memory at once. Uncertainty: a Poisson bootstrap over the masks scored so far (:mod:`anytime`).
    """
    capped = cap_samples(model, x, masks, what="masks")
    n = capped.count
    black = reference_input(model, x, "black")
    h, w = x.shape[-2:]
    gen = torch.Generator().manual_seed(seed)
    grids = (torch.rand((n, cells, cells), generator=gen) < p).float().to(x.device)
    shifts = torch.stack([torch.randint(0, -(-h // cells), (n,), generator=gen),
                          torch.randint(0, -(-w // cells), (n,), generator=gen)], 1).to(x.device)

    def make(start: int, stop: int) -> torch.Tensor:
        idx = torch.arange(start, stop, device=x.device)
        m = smooth_masks(grids[idx % n], shifts[idx % n], (h, w))
        b = idx // n
        return (x[b] * m + black[b] * (1 - m)).contiguous(memory_format=torch.channels_last)

    unit = batch_size_for(x.device, h * w)
    bounds = anytime.schedule(len(x) * n, unit) if previews and len(x) == 1 else [len(x) * n]
    boot = anytime.poisson_weights(n, seed, x.device)
    prob = torch.empty(len(x) * n, device=x.device)
    sal = torch.zeros(len(x), h, w, device=x.device)
    reps = torch.zeros(len(x), len(boot), h, w, device=x.device)
    folded = 0  # masks [0, folded) are in sal and reps, in blocks of 256 as the one-shot sum adds them

    def block(a: int, b: int) -> tuple[torch.Tensor, torch.Tensor]:
        m = smooth_masks(grids[a:b], shifts[a:b], (h, w))[:, 0]
        pr = prob.view(len(x), n)[:, a:b]
        return torch.einsum("bn,nhw->bhw", pr, m), torch.einsum("brn,nhw->brhw", pr[:, None] * boot[None, :, a:b], m)

    for _, stop, s in refining.scored(model.module, make, target.repeat_interleave(n), bounds, unit, probabilities=True,
                                     progress=progress, what="masks"):
        prob[stop - len(s): stop] = s
        done = stop if len(x) == 1 else n
        while folded + 256 <= done or folded < done == n:
            part, rep = block(folded, min(folded + 256, n))
            sal += part
            reps += rep
            folded = min(folded + 256, n)
        tail = block(folded, done) if folded < done else None
        partial, replicates = (sal, reps) if tail is None else (sal + tail[0], reps + tail[1])
        weight = boot[:, :done].sum(1)
        maps = sal / (n * p) if done == n else partial / (done * p)
        yield ExplainerResult(maps, target, None, {**capped.diagnostics(len(x)), "masks_used": [done] * len(x)},
                              anytime.spread(replicates / (weight.clamp_min(1).view(1, -1, 1, 1) * p), weight),
                              Refinement(done, n, f"{done:,} of {n:,} masks", anytime.bootstrap_text("masks")))


@explainer(
    "rise", title="RISE", family="perturbation", stochastic=True,
    taxonomy=("local", "black-box", "post-hoc", "model-agnostic"),
    summary="Average of many random smooth masks, each weighted by the class probability of the image seen "
            "through it.",
    reference="Petsiuk, Das & Saenko 2018, 'RISE: Randomized Input Sampling for Explanation of Black-box Models', "
              "BMVC. arXiv:1806.07421",
    cost=Cost(1, 0, per="masks"), steps=rise_steps,
    diagnostics=(NOTICE, Diagnostic("masks_used", "Masks used", fmt="{} masks")),
    params=(
        ParamSpec("masks", "int", 2000, "Masks (N)", "Paper: 4000–8000; more is smoother and slower.", 50, 16000, 50),
        ParamSpec("cells", "int", 7, "Grid cells (s)", "Mask resolution before upsampling (paper: 7).", 2, 32, 1),
        ParamSpec("p", "float", 0.5, "Keep probability p", "Fraction of grid cells kept (paper: 0.5).", 0.05, 0.95, 0.05),
    ),
)
def rise(model: ModelSpec, x: torch.Tensor, target: torch.Tensor, *, masks: int = 2000, cells: int = 7,
         p: float = 0.5, progress: Progress | None = None, seed: int = 0) -> ExplainerResult:
    """S = Σ_i P_c(x ⊙ M_i) · M_i / (N · p) (Petsiuk et al. 2018, arXiv:1806.07421): the last of :func:`rise_steps`."""
    return anytime.last(rise_steps(model, x, target, masks=masks, cells=cells, p=p, progress=progress, seed=seed))
