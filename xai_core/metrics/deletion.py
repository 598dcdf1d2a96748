"""Deletion curve (Petsiuk et al. 2018): remove the most relevant pixels first; a faithful map makes p fall fast."""

from __future__ import annotations

import numpy as np
import torch

from ..explainers.common import REFERENCES, reference_input
from ..models.spec import ModelSpec
from ..types import ParamSpec
from .registry import Plan, metric, order_of

STEPS = ParamSpec("steps", "int", 32, "Steps", "Points on the curve; pixels change in equal amounts between them.", 4, 224, 1)


def fractions(steps: int, pixels: int) -> tuple[np.ndarray, list[int]]:
    """Equally spaced fractions 0..1 and the pixel counts they round to (non-decreasing)."""
    xs = np.linspace(0.0, 1.0, steps + 1)
    return xs, [int(round(f * pixels)) for f in xs]


def auc(xs: np.ndarray, ys: np.ndarray) -> float:
    """Area under a curve over [0, 1] with the trapezoid rule (``np.trapezoid``: NumPy 2 has no ``trapz``)."""
    return float(np.trapezoid(ys, xs))


@metric("deletion", order=10, title="Deletion AUC", short="Deletion AUC", kind="curve", better="lower",
        passes="steps + 1 forward passes",
        summary="Class probability as the most relevant pixels are removed first; area under that curve.",
        reference="Petsiuk, Das & Saenko 2018, 'RISE: Randomized Input Sampling for Explanation of Black-box "
                  "Models', BMVC. arXiv:1806.07421",
        params=(STEPS, ParamSpec("baseline", "choice", "black", "Removed pixels become",
                                 "What a deleted pixel is replaced with (noise: one seeded noise image).",
                                 choices=REFERENCES)))
def deletion(model: ModelSpec, x: torch.Tensor, m: torch.Tensor, *, steps: int = 32, baseline: str = "black",
             seed: int = 0) -> Plan:
    """Deletion (Petsiuk et al. 2018, arXiv:1806.07421): pixels in the map's order become the baseline;
    the probability is read after every ``1/steps`` of the image. Lower AUC = more faithful."""
    xs, counts = fractions(steps, m.numel())
    return Plan(order_of(m, seed), counts, x, reference_input(model, x, baseline, seed), xs, auc)
