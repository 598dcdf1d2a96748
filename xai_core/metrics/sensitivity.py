"""Sensitivity-max (Yeh et al., NeurIPS 2019): the largest relative change of the map when the input moves by a tiny
random amount. The explainer runs again on the perturbed inputs, through the Workbench."""

from __future__ import annotations

import torch

from ..models.spec import ModelSpec
from ..types import ParamSpec
from .infidelity import REF, pixel_noise
from .registry import Rerun, metric


@metric("sensitivity_max", title="Sensitivity-max", short="Sensitivity", order=80, kind="rerun", better="lower",
        default=False, passes="samples + 1 explanations (each the explainer's own passes)",
        summary="Largest relative change of the map (Frobenius norm) over random inputs within a small L∞ ball.",
        reference=REF,
        params=(ParamSpec("samples", "int", 10, "Samples", "How many perturbed inputs are explained (Captum's "
                          "n_perturb_samples).", 1, 100, 1),
                ParamSpec("radius", "float", 0.02, "Radius", "Uniform noise in [−radius, radius] per pixel and channel, "
                          "in [0, 1] pixel units (Captum's 0.02 is in the input's own units).", 0.001, 0.5, 0.001)))
def sensitivity_max(model: ModelSpec, x: torch.Tensor, small_map: torch.Tensor, rerun: Rerun, *, samples: int = 10,
                    radius: float = 0.02, seed: int = 0) -> float:
    """max_k ‖e(x + δ_k) − e(x)‖ / ‖e(x)‖ (Yeh et al. 2019, arXiv:1901.09392; Captum's ``sensitivity_max``), δ_k
    uniform in the L∞ ball; e(x) is explained again with x in the same batch (not the shown map, which went through
    two resizes). A map of all zeros divides by 1, as Captum. Lower = more robust."""
    xs = torch.cat([x, *[x + pixel_noise(model, x, k, seed, "uniform", radius)[None] for k in range(samples)]])
    maps = rerun.explain(xs).double().flatten(1)
    base = maps[0]
    norm = float(base.norm()) or 1.0
    return float((maps[1:] - base).norm(dim=1).max()) / norm
