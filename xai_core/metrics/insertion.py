"""Insertion curve (Petsiuk et al. 2018): start from a blurred image and insert the most relevant pixels first."""

from __future__ import annotations

import torch

from ..explainers.common import blur
from ..models.spec import ModelSpec
from .deletion import STEPS, auc, fractions
from .registry import Plan, metric, order_of


@metric("insertion", order=20, title="Insertion AUC", short="Insertion AUC", kind="curve", better="higher",
        passes="steps + 1 forward passes",
        summary="Class probability as the most relevant pixels are put back into a blurred image; area under it.",
        reference="Petsiuk, Das & Saenko 2018, 'RISE: Randomized Input Sampling for Explanation of Black-box "
                  "Models', BMVC. arXiv:1806.07421",
        params=(STEPS,))
def insertion(model: ModelSpec, x: torch.Tensor, m: torch.Tensor, *, steps: int = 32, seed: int = 0) -> Plan:
    """Insertion (Petsiuk et al. 2018, arXiv:1806.07421): the blurred image receives the original pixels in
    the map's order. Higher AUC = more faithful."""
    xs, counts = fractions(steps, m.numel())
    return Plan(order_of(m, seed), counts, blur(model, x), x, xs, auc)
