"""Metric registry: adding an evaluation is one file in ``xai_core/metrics/`` and one decorator.

Two kinds of metric:

* ``curve`` metrics (deletion, insertion, AOPC) return a :class:`Plan`: an order in which pixels of the
  model input are replaced, how many at each step, what they start as and what replaces them. The
  evaluator runs every plan of every map in one batched :func:`engine.scores` call.
* ``localisation`` metrics (pointing game, IoU, relevance mass) are functions of the map and an
  annotated region (a box or a mask) at the image's own resolution; they need no model.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch

from ..errors import ExplainerError
from ..registry import ParamSpec

Better = Literal["higher", "lower"]


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
class MetricSpec:
    id: str
    title: str
    kind: Literal["curve", "localisation"]
    better: Better
    summary: str
    reference: str
    fn: Callable[..., Any]
    params: tuple[ParamSpec, ...] = field(default_factory=tuple)
    short: str = ""
    order: int = 100

    def defaults(self) -> dict[str, Any]:
        return {p.name: p.default for p in self.params}

    def resolve(self, params: dict[str, Any] | None) -> dict[str, Any]:
        known = {p.name: p for p in self.params}
        out = self.defaults()
        for k, v in (params or {}).items():
            if k not in known:
                raise ExplainerError(f"{self.title} has no parameter {k}; it takes {', '.join(known) or 'none'}.")
            out[k] = known[k].validate(v)
        return out

    @property
    def column(self) -> str:
        """Table header with the direction stated, e.g. ``Deletion AUC ↓``."""
        return f"{self.short or self.title} {'↑' if self.better == 'higher' else '↓'}"


_METRICS: dict[str, MetricSpec] = {}


def metric(id: str, *, title: str, kind: Literal["curve", "localisation"], better: Better, summary: str,
           reference: str, params: tuple[ParamSpec, ...] = (), short: str = "", order: int = 100) -> Callable:
    """Register a metric function (see the module docstring for the two signatures); ``order`` sorts tables."""

    def deco(fn: Callable[..., Any]) -> Callable[..., Any]:
        if not fn.__doc__:
            raise ValueError(f"metric {id} needs a docstring with its paper reference")
        if id in _METRICS:
            raise ValueError(f"metric {id} registered twice")
        _METRICS[id] = MetricSpec(id, title, kind, better, summary, reference, fn, tuple(params), short, order)
        return fn

    return deco


def list_metrics(kind: str | None = None) -> list[MetricSpec]:
    return sorted((m for m in _METRICS.values() if kind is None or m.kind == kind), key=lambda m: m.order)


def get_metric(id: str) -> MetricSpec:
    if id not in _METRICS:
        raise ExplainerError(f"Unknown metric {id!r}; available: {', '.join(_METRICS)}.")
    return _METRICS[id]


def order_of(m: torch.Tensor, seed: int = 0) -> torch.Tensor:
    """Rank of every pixel of ``m`` [H, W] by decreasing value (0 = most relevant); ties broken by a
    seeded random permutation, so a flat map is not read top row first."""
    flat = m.flatten().double().cpu()
    gen = torch.Generator().manual_seed(seed)
    perm = torch.randperm(flat.numel(), generator=gen)
    # Sort by value descending, then by the random key: stable sort on the key first, then on the value.
    by_key = torch.argsort(perm)
    idx = by_key[torch.argsort(-flat[by_key], stable=True)]
    rank = torch.empty_like(idx)
    rank[idx] = torch.arange(idx.numel())
    return rank.view(m.shape).to(m.device)
