"""AOPC (Samek et al. 2017): perturb square regions in order of their relevance, most (MoRF) or least (LeRF) first."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ..explainers.common import REFERENCES, reference_input
from ..models.spec import ModelSpec
from ..types import ParamSpec
from .registry import Plan, metric, order_of

PARAMS = (
    ParamSpec("patch", "int", 16, "Region (px)", "Side of the square regions perturbed at each step.", 4, 64, 1),
    ParamSpec("steps", "int", 25, "Regions", "How many regions are perturbed, one per step.", 2, 400, 1),
    ParamSpec("perturbation", "choice", "noise", "Perturbed regions become",
              "Uniform noise as in the paper (one seeded noise image; Quantus draws fresh noise per step), "
              "or a reference image.", choices=REFERENCES),
)


def region_plan(model: ModelSpec, x: torch.Tensor, m: torch.Tensor, patch: int, steps: int, perturbation: str,
                most_first: bool, seed: int) -> Plan:
    """Rank the ``patch``×``patch`` regions by their summed relevance, and pixels by their region's rank."""
    h, w = m.shape
    sums = F.avg_pool2d(m[None, None].float(), patch, stride=patch, ceil_mode=True)[0, 0]
    region_rank = order_of(sums if most_first else -sums, seed)  # [h', w']
    per_pixel = region_rank.repeat_interleave(patch, 0).repeat_interleave(patch, 1)[:h, :w]
    cells = per_pixel.flatten()
    # Pixels ordered by their region's rank (ties inside a region broken by position).
    rank = torch.empty_like(cells)
    rank[torch.argsort(cells * (h * w) + torch.arange(h * w, device=cells.device))] = torch.arange(h * w, device=cells.device)
    sizes = torch.bincount(cells, minlength=int(cells.max()) + 1).cpu()
    steps = min(steps, len(sizes))
    counts = [0, *torch.cumsum(sizes, 0)[:steps].tolist()]

    def value(_xs: np.ndarray, probs: np.ndarray) -> float:  # AOPC = mean over k = 0..L of f(x) - f(x_k)
        return float(np.mean(probs[0] - probs))

    fill = reference_input(model, x, perturbation, seed)
    return Plan(rank.view(h, w), counts, x, fill, np.arange(steps + 1, dtype=float), value, "regions perturbed")


REF = ("Samek, Binder, Montavon, Lapuschkin & Müller 2017, 'Evaluating the Visualization of What a Deep Neural "
       "Network Has Learned', IEEE TNNLS. arXiv:1509.06321")


@metric("aopc_morf", title="AOPC, most relevant first", short="AOPC MoRF", order=30, kind="curve", better="higher",
        passes="regions + 1 forward passes",
        summary="Mean drop of the class probability as the most relevant regions are perturbed first.",
        reference=REF, params=PARAMS)
def aopc_morf(model: ModelSpec, x: torch.Tensor, m: torch.Tensor, *, patch: int = 16, steps: int = 25,
              perturbation: str = "noise", seed: int = 0) -> Plan:
    """AOPC with MoRF ordering (Samek et al. 2017, arXiv:1509.06321). Higher = more faithful."""
    return region_plan(model, x, m, patch, steps, perturbation, True, seed)


@metric("aopc_lerf", title="AOPC, least relevant first", short="AOPC LeRF", order=40, kind="curve", better="lower",
        passes="regions + 1 forward passes",
        summary="Mean drop of the class probability as the least relevant regions are perturbed first.",
        reference=REF, params=PARAMS)
def aopc_lerf(model: ModelSpec, x: torch.Tensor, m: torch.Tensor, *, patch: int = 16, steps: int = 25,
              perturbation: str = "noise", seed: int = 0) -> Plan:
    """AOPC with LeRF ordering (Samek et al. 2017, arXiv:1509.06321). Lower = more faithful."""
    return region_plan(model, x, m, patch, steps, perturbation, False, seed)
