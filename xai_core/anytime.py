"""Any-time explanations: the refinement protocol of refining explainers, their uncertainty and the stop rule.

A refining explainer registers ``steps=`` (see :mod:`xai_core.registry`): a generator taking the explainer's own
arguments plus ``previews`` that yields :class:`~xai_core.result.ExplainerResult` s, each with a
:class:`~xai_core.result.Refinement` and, where the method has one, an ``uncertainty`` map. The last result it
yields is the one-shot map: the registered function is ``last(steps(..., previews=False))``, which yields only that
one, so a streamed final equals the one-shot map by construction (same samples, same order, same batches).
Refinements come at engine-batch boundaries on a geometric :func:`schedule`, for one input at a time (a batch of
several inputs yields only its final result); :mod:`xai_core.explainers.refining` scores through the engine in those
segments. Previews are made from the passes the final map needs, never from extra ones: the ladders visit their
points coarse to fine (Integrated Gradients' steps, Occlusion's windows), in batches of the sizes a run in order has,
and assemble the final map in that run's order.

Uncertainty, per method family (stated in each result's ``refinement.uncertainty``):

* sampling methods (RISE, LIME, KernelSHAP, SmoothGrad/VarGrad): a bootstrap over the samples drawn so far —
  :data:`BOOTSTRAP` Poisson-weighted replicates (each sample weighs Poisson(1), drawn from the seed, so the
  replicates do not depend on the schedule; Hanley & MacGibbon 2006, "Creating non-parametric bootstrap samples
  using Poisson frequencies", Comput. Methods Programs Biomed. 83(1)); the map's standard error per pixel is the
  replicates' standard deviation;
* Score-CAM by channel batches: the standard error of the partial sum as an estimate of the full sum, the channels
  seen so far taken as a sample without replacement (zero once every channel is in);
* ladders (Integrated Gradients' steps and Occlusion's windows coarse to fine, the others interpolated;
  Meaningful Perturbation by iterations): :data:`CHANGE`, the absolute change since the previous refinement (filled
  in by :func:`refine`).

The stop rule (:class:`StopRule`): a stream stops early once the Spearman correlation of the top ``top`` share of
pixels (the union of both maps' top pixels; all pixels by default) between successive refinements is at least
``threshold`` (0.93) for ``patience`` (2) successive refinements. It is applied by :func:`refine`, on the Explain
page by default, never by the one-shot API. All pixels, not the top 10%, by default: measured on the bench
(bench/results/anytime.md), a top-10% correlation swings between −1 and 1 on superpixel maps (a handful of tied
superpixels) and stays low on pixel-level maps whose top region no longer moves, so it stopped KernelSHAP at a map
correlating 0.83 with the converged one and never stopped Integrated Gradients or Meaningful Perturbation.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import TypeVar

import numpy as np
import torch

from .errors import ExplainerError
from .result import ExplainerResult

__all__ = ["BOOTSTRAP", "CHANGE", "StopRule", "bootstrap_text", "closed", "last", "poisson_weights",
           "rank_correlation", "refine", "schedule", "spread", "stability", "unstable"]

BOOTSTRAP = 16  # Poisson bootstrap replicates
CHANGE = "change since the previous refinement (not a statistical error)"
_SALT = 0x5EED_B007  # the bootstrap's generator is seeded from the seed and this, never shares the samples' draws
R = TypeVar("R")


def bootstrap_text(unit: str) -> str:
    return f"bootstrap over the {unit} drawn so far ({BOOTSTRAP} Poisson-weighted replicates, fixed seed)"


def last(results: Iterable[R]) -> R:
    """The last of ``results`` (the one-shot map of a refining explainer's steps)."""
    out = None
    for out in results:  # noqa: B007 - the last one is wanted
        pass
    if out is None:
        raise ValueError("a refining explainer yielded nothing")
    return out


@contextmanager
def closed(results: Iterable[R]) -> Iterator[Iterable[R]]:
    """``results`` for a ``with`` block that closes it (a generator's ``close``) however the block ends."""
    try:
        yield results
    finally:
        close = getattr(results, "close", None)
        if close is not None:
            close()


def schedule(total: int, unit: int, *, ratio: float = 1.5, first: int | None = None) -> list[int]:
    """Refinement boundaries in ``(0, total]``: multiples of ``unit`` (the engine's batch), growing by ``ratio``
    from ``first`` (default: the larger of one unit and total/64), always ending with ``total``."""
    unit = max(1, int(unit))
    out: list[int] = []
    nxt = float(max(unit, first if first is not None else math.ceil(total / 64)))
    while True:
        b = -(-math.ceil(nxt) // unit) * unit
        if b >= total:
            break
        if not out or b > out[-1]:
            out.append(b)
        nxt = b * ratio
    return [*out, total]


def poisson_weights(n: int, seed: int, device: torch.device | str = "cpu", replicates: int = BOOTSTRAP) -> torch.Tensor:
    """``float32 [replicates, n]``: each of ``n`` samples' Poisson(1) weight in each bootstrap replicate."""
    gen = torch.Generator().manual_seed((int(seed) ^ _SALT) % 2**63)
    return torch.poisson(torch.ones(replicates, n), generator=gen).to(device)


def spread(replicates: torch.Tensor, totals: torch.Tensor | None = None) -> torch.Tensor:
    """Per-pixel standard deviation over bootstrap replicate maps ``[..., R, H, W]`` -> ``[..., H, W]`` (the map's
    bootstrap standard error). Replicates whose total weight (``totals [R]``) is 0 drew no sample and are left out."""
    if totals is not None:
        replicates = replicates[..., totals > 0, :, :]
    if replicates.shape[-3] < 2:
        return torch.zeros_like(replicates.sum(-3))
    return replicates.std(dim=-3, correction=1)


def _average_ranks(v: torch.Tensor) -> torch.Tensor:
    """Ranks with ties given their average rank (as scipy's ``rankdata``)."""
    _, inverse, counts = torch.unique(v, return_inverse=True, return_counts=True)
    ends = counts.cumsum(0).double()
    return (ends - (counts.double() - 1) / 2)[inverse]


def rank_correlation(a: torch.Tensor, b: torch.Tensor, top: float = 1.0) -> float:
    """Spearman correlation of two maps ``[H, W]`` over the union of their top ``top`` share of pixels (all pixels
    when ``top`` is 1). Two constant selections correlate 1, one constant selection 0."""
    a, b = a.detach().flatten().double().cpu(), b.detach().flatten().double().cpu()
    if top < 1.0:
        k = max(1, int(round(top * a.numel())))
        keep = torch.zeros_like(a, dtype=torch.bool)
        keep[a.topk(k).indices] = True
        keep[b.topk(k).indices] = True
        a, b = a[keep], b[keep]
    ra, rb = _average_ranks(a), _average_ranks(b)
    ra, rb = ra - ra.mean(), rb - rb.mean()
    den = float(ra.norm() * rb.norm())
    if den == 0.0:
        return 1.0 if float(ra.norm()) == float(rb.norm()) == 0.0 else 0.0
    return float((ra * rb).sum()) / den


def stability(before: torch.Tensor, after: torch.Tensor, top: float) -> float:
    """The least top-``top`` rank correlation over the inputs of two batches of maps ``[B, H, W]``."""
    return min(rank_correlation(a, b, top) for a, b in zip(before, after, strict=True))


@dataclass(frozen=True)
class StopRule:
    """Stop once the top ``top`` share of pixels' rank correlation between successive refinements is at least
    ``threshold`` for ``patience`` successive refinements (see the module docstring)."""

    top: float = 1.0
    threshold: float = 0.93
    patience: int = 2

    def __post_init__(self) -> None:
        if not (0.0 < self.top <= 1.0 and -1.0 <= self.threshold <= 1.0 and self.patience >= 1):
            raise ExplainerError("A stop rule needs a top share in (0, 1], a threshold in [-1, 1] and a patience of "
                                 "at least 1 refinement.")

    @property
    def key(self) -> str:
        return f"top{self.top!r}:rho{self.threshold!r}:x{self.patience}"

    def text(self) -> str:
        times = "once" if self.patience == 1 else "twice in a row" if self.patience == 2 else \
            f"{self.patience} times in a row"
        which = "all pixels" if self.top >= 1 else f"the top {self.top:.0%} pixels"
        return f"the rank correlation of {which} between successive refinements reached {self.threshold:.2f} {times}"


def refine(results: Iterator[ExplainerResult], rule: StopRule | None = None) -> Iterator[ExplainerResult]:
    """Pass a refining explainer's results through, each with its ``refinement.stability`` against the previous one
    (top share from ``rule``, else the default rule's) and, for :data:`CHANGE` uncertainty, the change itself; with
    ``rule``, stop after the refinement that satisfies it (its ``refinement.stopped`` says so) and close ``results``."""
    top = (rule or StopRule()).top
    prev: ExplainerResult | None = None
    streak = 0
    try:
        for r in results:
            ref = r.refinement
            if ref is None:
                yield r
                continue
            stab = None if prev is None or prev.maps.shape != r.maps.shape else stability(prev.maps, r.maps, top)
            unc, kind = r.uncertainty, ref.uncertainty
            if unc is None and kind == CHANGE:
                if stab is None:
                    kind = ""
                else:
                    unc = (r.maps - prev.maps).abs()  # type: ignore[union-attr]  # stab is None without prev
            streak = streak + 1 if rule is not None and stab is not None and stab >= rule.threshold else 0
            stopped = ""
            if rule is not None and not ref.complete and streak >= rule.patience:
                stopped = f"stopped early at {ref.text}: {rule.text()}"
            yield replace(r, uncertainty=unc, refinement=replace(ref, uncertainty=kind, stability=stab, stopped=stopped))
            if stopped:
                return
            prev = r
    finally:
        close = getattr(results, "close", None)
        if close is not None:
            close()


def unstable(saliency: np.ndarray, uncertainty: np.ndarray, top: float = 0.1, z: float = 2.0) -> np.ndarray:
    """Pixels whose membership of the top ``top`` share is uncertain: within ``z`` standard errors of the top share's
    threshold (bool, the map's shape). The others are stably in (value − z·u ≥ threshold) or stably out."""
    m, u = np.asarray(saliency, np.float64), np.abs(np.asarray(uncertainty, np.float64))
    t = np.quantile(m, 1.0 - top)
    return np.abs(m - t) < z * u
