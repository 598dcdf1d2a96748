"""The values metric functions return or receive, one per kind (see :mod:`.registry`).

* :class:`Plan` (curve kind): an order in which pixels are replaced; every step is one model input.
* :class:`Probe` (probe kind): any set of model inputs built from the map, made batch by batch inside the engine's
  loop, and a summary of their :class:`Outputs` (class logit, probability and whether it is still top-1).
* :class:`Rerun` (rerun kind): how to run the map's explainer again, through the Workbench, on new inputs (perturbed
  copies, mosaics), and other images to build those inputs from.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass, field

import numpy as np
import torch

__all__ = ["Outputs", "Plan", "Probe", "Rerun"]


@dataclass
class Plan:
    """A perturbation curve of one map: input ``k`` is ``where(rank < counts[k], fill, start)``.

    ``rank`` orders the model-input pixels ([H, W], 0 = first replaced); ``start`` and ``fill`` are
    normalised inputs [1, 3, H, W]. ``summarise(xs, probs)`` turns the probabilities into the metric's
    value; ``xs`` is the curve's x axis (fraction of pixels, or regions perturbed).
    """

    rank: torch.Tensor
    counts: list[int]
    start: torch.Tensor
    fill: torch.Tensor
    xs: np.ndarray
    summarise: Callable[[np.ndarray, np.ndarray], float]
    x_label: str = "fraction of pixels"


@dataclass(frozen=True)
class Outputs:
    """What the model said about ``count`` inputs, for the evaluated class: ``logit`` and softmax ``probability``
    [count] and ``top1`` (the class is still the arg-max) [count]; ``base_*``: the same for the unperturbed input."""

    logit: np.ndarray
    probability: np.ndarray
    top1: np.ndarray
    base_logit: float
    base_probability: float

    def score(self, kind: str) -> tuple[np.ndarray, float]:
        """``(scores of the inputs, score of the unperturbed input)`` as logits or probabilities."""
        return (self.logit, self.base_logit) if kind == "logit" else (self.probability, self.base_probability)


@dataclass
class Probe:
    """``count`` model inputs built from one map: ``make(a, b)`` returns inputs ``a..b-1`` ([b - a, 3, H, W],
    normalised, built lazily inside the engine's batches so progress and Stop work during slow constructions);
    ``summarise(outputs)`` gives the value. ``xs`` (optional) is a curve's x axis over the inputs (``x_label``), drawn
    like the curve metrics'. Probes of one map with the same ``share`` key are the same inputs: scored once, summarised
    by each (SIC and AIC, Average Drop and Increase). ``notes`` collects why a value is NaN (e.g. PIC's refusals)."""

    count: int
    make: Callable[[int, int], torch.Tensor]
    summarise: Callable[[Outputs], float]
    xs: np.ndarray | None = None
    x_label: str = ""
    share: Hashable | None = None
    notes: list[str] = field(default_factory=list)


@dataclass
class Rerun:
    """For a metric that explains new inputs: ``explain(x)`` maps ``[N, 3, H, W]`` (normalised) to the explainer's
    maps ``[N, H, W]`` for ``target``, batched, through the Workbench (the same request and seed as the evaluated
    map); ``others(k, seed)`` up to ``k`` other images as model inputs ``[k', 3, H, W]`` whose top-1 class is not
    ``target`` (Focus's mosaics; may be fewer, or none)."""

    explain: Callable[[torch.Tensor], torch.Tensor]
    others: Callable[[int, int], torch.Tensor]
    target: int
    notes: list[str] = field(default_factory=list)
