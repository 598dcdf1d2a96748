"""TCAV, Testing with Concept Activation Vectors (Kim et al., ICML 2018): a linear classifier separates a layer's
(flattened) activations of concept images from those of a random set; its normal, pointing to the concept, is the
CAV. The TCAV score of a class is the share of the class's inputs whose logit grows along the CAV (positive
directional derivative). One run per random set; the random-vs-random runs give the null scores, and the paper's
two-sided t-test of the concept's scores against them says whether the concept is significant.

``cav_method="fastcav"`` replaces the classifier by FastCAV (Schmalwasser et al., 'FastCAV: Efficient Computation
of Concept Activation Vectors for Explaining Deep Neural Networks', ICML 2025): the mean of the concept's
activations centred on the mean of both sets, i.e. the normalised difference of the two sets' means; no training.

Token models (ViT): the layer's patch tokens on their grid (``ModelSpec.as_grid``), the class and register tokens left
out, are the activations the CAV lives in.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from scipy.stats import ttest_ind

from ..models.spec import ModelSpec
from ..types import Progress
from ..workbench import Workbench, as_workbench
from .activations import activations, activations_and_gradients
from .errors import ConceptError, require_images

MIN_IMAGES = 10  # per concept or random set: fewer make a CAV that flips with every image
MIN_RUNS = 3  # random sets: the t-test needs at least 3 scores a side to say anything
CAV_METHODS = ("logistic", "fastcav")


@dataclass(frozen=True)
class TcavResult:
    """TCAV scores of class ``target`` at ``layer``: one per random set (``scores``), the random-vs-random null
    scores, their means, the two-sided t-test's p-value and whether it is below ``alpha``."""

    target: int
    layer: str
    scores: tuple[float, ...]
    random_scores: tuple[float, ...]
    p_value: float
    alpha: float
    cav_method: str = "logistic"

    @property
    def score(self) -> float:
        return sum(self.scores) / len(self.scores)

    @property
    def significant(self) -> bool:
        return self.p_value < self.alpha


def cav(positive: torch.Tensor, negative: torch.Tensor, *, l2: float = 1e-3, steps: int = 200) -> torch.Tensor:
    """Unit normal [D] of an L2-regularised logistic regression separating ``positive`` [N, D] from ``negative``,
    pointing to ``positive`` (full-batch L-BFGS from zero on standardised features: deterministic)."""
    x = torch.cat([positive, negative]).flatten(1).double()
    y = torch.cat([torch.ones(len(positive)), torch.zeros(len(negative))]).double()
    scale = x.std().clamp_min(1e-8)  # one scale for all features: the L2 prior stays isotropic in raw coordinates
    xs = (x - x.mean(0)) / scale
    w = torch.zeros(x.shape[1] + 1, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([w], max_iter=steps, line_search_fn="strong_wolfe")

    def loss() -> torch.Tensor:
        opt.zero_grad()
        z = xs @ w[:-1] + w[-1]
        out = torch.nn.functional.binary_cross_entropy_with_logits(z, y) + l2 * (w[:-1] ** 2).sum()
        out.backward()
        return out

    with torch.enable_grad():
        opt.step(loss)
    normal = (w[:-1].detach() / scale).float()  # back to the raw activations' coordinates
    if not torch.isfinite(normal).all() or float(normal.norm()) == 0.0:
        raise ConceptError("The concept cannot be told apart from the random images at this layer; try another layer.")
    return normal / normal.norm()


def fast_cav(positive: torch.Tensor, negative: torch.Tensor) -> torch.Tensor:
    """FastCAV: the unit vector [D] along mean(``positive``) − mean(``negative``) (flattened activations)."""
    diff = positive.flatten(1).double().mean(0) - negative.flatten(1).double().mean(0)
    norm = float(diff.norm())
    if not norm > 0.0 or norm != norm:
        raise ConceptError("The concept's and the random images' mean activations coincide at this layer; try another "
                           "layer.")
    return (diff / norm).float()


def score(grads: torch.Tensor, direction: torch.Tensor) -> float:
    """Share of inputs whose class logit has a positive derivative along ``direction`` (grads [N, ...])."""
    return float(((grads.flatten(1) @ direction) > 0).float().mean())


def tcav(model: ModelSpec | Workbench, inputs: torch.Tensor, target: int, concept: torch.Tensor,
         randoms: list[torch.Tensor], *, layer: str | None = None, alpha: float = 0.05,
         cav_method: str = "logistic", progress: Progress | None = None) -> TcavResult:
    """TCAV of class ``target`` for ``concept`` images against each random set (all normalised [N, 3, H, W]);
    ``cav_method``: ``logistic`` (a trained linear classifier) or ``fastcav`` (the mean difference). ``progress``
    hears each set's pass (the class's gradients, the concept, then every random set) and can stop between batches."""
    if cav_method not in CAV_METHODS:
        raise ConceptError(f"Unknown CAV method {cav_method!r}; choose one of {', '.join(CAV_METHODS)}.")
    make = cav if cav_method == "logistic" else fast_cav
    require_images(len(concept), MIN_IMAGES, "The concept set", "a stable concept activation vector")
    if len(randoms) < MIN_RUNS:
        raise ConceptError(f"TCAV got {len(randoms)} random sets; the significance test needs at least {MIN_RUNS}: "
                           "add random sets.")
    for r in randoms:
        require_images(len(r), MIN_IMAGES, "A random set", "a stable concept activation vector")
    require_images(len(inputs), 1, "The class's input set", "a TCAV score")
    wb = as_workbench(model)
    parts = 2 + len(randoms)

    def step(i: int, what: str) -> Progress | None:
        return None if progress is None else (lambda f, _t: progress((i + f) / parts, what))

    grads = activations_and_gradients(wb, inputs, target, layer, progress=step(0, "the class's gradients"))
    assert grads.grads is not None
    c = activations(wb, concept, grads.layer, progress=step(1, "the concept's activations")).acts
    rs = [activations(wb, r, grads.layer, progress=step(2 + i, f"random set {i + 1}/{len(randoms)}")).acts
          for i, r in enumerate(randoms)]
    scores = tuple(score(grads.grads, make(c, r)) for r in rs)
    nulls = tuple(score(grads.grads, make(rs[i], rs[(i + 1) % len(rs)])) for i in range(len(rs)))
    p = float(ttest_ind(scores, nulls).pvalue)
    if p != p:  # both sides constant and equal: no evidence either way
        p = 1.0 if scores == nulls else 0.0
    return TcavResult(int(target), grads.layer, scores, nulls, p, alpha, cav_method)
