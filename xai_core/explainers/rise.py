"""RISE: randomised input sampling, masks generated per batch and scored through the engine."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..engine import scores
from ..models.spec import ModelSpec
from ..registry import Cost, Diagnostic, ParamSpec, Progress, explainer
from ..result import ExplainerResult
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


@explainer(
    "rise", title="RISE", family="perturbation", stochastic=True,
    taxonomy=("local", "black-box", "post-hoc", "model-agnostic"),
    summary="Average of many random smooth masks, each weighted by the class probability of the image seen "
            "through it.",
    reference="Petsiuk, Das & Saenko 2018, 'RISE: Randomized Input Sampling for Explanation of Black-box Models', "
              "BMVC. arXiv:1806.07421",
    cost=Cost(1, 0, per="masks"),
    diagnostics=(NOTICE, Diagnostic("masks_used", "Masks used", fmt="{} masks")),
    params=(
        ParamSpec("masks", "int", 2000, "Masks (N)", "Paper: 4000–8000; more is smoother and slower.", 50, 16000, 50),
        ParamSpec("cells", "int", 7, "Grid cells (s)", "Mask resolution before upsampling (paper: 7).", 2, 32, 1),
        ParamSpec("p", "float", 0.5, "Keep probability p", "Fraction of grid cells kept (paper: 0.5).", 0.05, 0.95, 0.05),
    ),
)
def rise(model: ModelSpec, x: torch.Tensor, target: torch.Tensor, *, masks: int = 2000, cells: int = 7,
         p: float = 0.5, progress: Progress | None = None, seed: int = 0) -> ExplainerResult:
    """S = Σ_i P_c(x ⊙ M_i) · M_i / (N · p) (Petsiuk et al. 2018, arXiv:1806.07421).

    Masked pixels are black. The N grids and shifts are drawn once from ``seed`` (shared by every
    image, so batching never changes a map) and upsampled batch by batch, so the N masks are never
    all in memory at once.
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

    prob = scores(model.module, len(x) * n, make, target.repeat_interleave(n), probabilities=True,
                  progress=progress, desc="masks").view(len(x), n)
    sal = torch.zeros(len(x), h, w, device=x.device)
    for start in range(0, n, 256):
        m = smooth_masks(grids[start:start + 256], shifts[start:start + 256], (h, w))[:, 0]
        sal += torch.einsum("bn,nhw->bhw", prob[:, start:start + 256], m)
    return ExplainerResult(sal / (n * p), target, None, {**capped.diagnostics(len(x)), "masks_used": [n] * len(x)})
