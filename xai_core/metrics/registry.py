"""Metric registry: adding an evaluation is one file in ``xai_core/metrics/`` and one decorator.

Two kinds of metric, each with its own typed call signature (a :class:`CurveMetric` or a
:class:`LocalisationMetric`) and spec type:

* ``curve`` metrics (deletion, insertion, AOPC) take ``(model, x, small_map, *, seed, **declared params)`` and
  return a :class:`Plan`: an order in which pixels of the model input are replaced, how many at each step, what
  they start as and what replaces them. The evaluator runs every plan of every map in one batched
  :func:`engine.scores` call, through :meth:`CurveMetricSpec.plan`.
* ``localisation`` metrics (pointing game, IoU, relevance mass) take ``(heatmap, region, **declared params)`` and
  return a float: functions of the map and an annotated region (a box or a mask) at the image's own resolution;
  they need no model. Called through :meth:`LocalisationMetricSpec.score`.

A spec checks its function's signature against its kind and its declared parameters when it is made
(:func:`check_signature`): a curve metric written with a localisation signature, a ``**kwargs`` catch-all, or a
keyword the metric does not declare is refused at import, and mypy refuses the first at type-check time.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, ParamSpec, Protocol, TypeVar, overload

import numpy as np
import torch

from ..errors import ExplainerError
from ..models.spec import ModelSpec
from ..registries import Parameterised, Registry
from ..types import ParamSpec as Param
from .signature import check_signature

__all__ = ["METRICS", "Better", "CurveMetric", "CurveMetricSpec", "LocalisationMetric", "LocalisationMetricSpec",
           "MetricKind", "MetricSpec", "Plan", "get_curve_metric", "get_localisation_metric", "get_metric",
           "list_metrics", "metric", "order_of"]

Better = Literal["higher", "lower"]
MetricKind = Literal["curve", "localisation"]
P = ParamSpec("P")


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


class CurveMetric(Protocol[P]):
    """``fn(model, x, small_map, *, seed, **declared params) -> Plan``: ``x`` the normalised input [1, 3, H, W],
    ``small_map`` the map resized to the model's input [H, W]. ``P`` is the function's own keyword parameters
    (``seed`` among them: checked at registration, as PEP 612 allows no keyword-only parameter beside ``P``)."""

    def __call__(self, model: ModelSpec, x: torch.Tensor, small_map: torch.Tensor, /,
                 *args: P.args, **params: P.kwargs) -> Plan: ...


class LocalisationMetric(Protocol[P]):
    """``fn(heatmap, region, **declared params) -> float``: the map and a boolean region, both at the image's size."""

    def __call__(self, heatmap: np.ndarray, region: np.ndarray, /, *args: P.args, **params: P.kwargs) -> float: ...


@dataclass(frozen=True)
class MetricSpec(Parameterised):
    """What every metric declares; the kind-specific subclasses add the typed function and the call."""

    id: str
    title: str
    better: Better
    summary: str
    reference: str
    params: tuple[Param, ...] = field(default_factory=tuple)
    short: str = ""
    order: int = 100
    kind: ClassVar[MetricKind]
    error = ExplainerError  # raised for a bad parameter (a class attribute, not a field)

    def _check(self, fn: Callable[..., Any]) -> None:
        """Refuse a function without a docstring, or whose signature is not this kind's with the declared params."""
        if not inspect.getdoc(fn):
            raise ValueError(f"metric {self.id} needs a docstring with its paper reference")
        check_signature(self.id, self.kind, fn, self.params)

    @property
    def column(self) -> str:
        """Table header with the direction stated, e.g. ``Deletion AUC ↓``."""
        return f"{self.short or self.title} {'↑' if self.better == 'higher' else '↓'}"


@dataclass(frozen=True)
class CurveMetricSpec(MetricSpec):
    fn: CurveMetric[...] = field(kw_only=True)
    kind: ClassVar[MetricKind] = "curve"

    def __post_init__(self) -> None:
        self._check(self.fn)

    def plan(self, model: ModelSpec, x: torch.Tensor, small_map: torch.Tensor, *, seed: int,
             params: Mapping[str, Any] | None = None) -> Plan:
        """The metric's perturbation plan for one map, with ``params`` validated (defaults filled in)."""
        return self.fn(model, x, small_map, seed=seed, **self.resolve(params))


@dataclass(frozen=True)
class LocalisationMetricSpec(MetricSpec):
    fn: LocalisationMetric[...] = field(kw_only=True)
    kind: ClassVar[MetricKind] = "localisation"

    def __post_init__(self) -> None:
        self._check(self.fn)

    def score(self, heatmap: np.ndarray, region: np.ndarray, params: Mapping[str, Any] | None = None) -> float:
        """The metric of ``heatmap`` against the boolean ``region`` (same shape), with ``params`` validated."""
        return float(self.fn(heatmap, region, **self.resolve(params)))


METRICS: Registry[MetricSpec] = Registry("metric", ExplainerError)
SPEC_OF: dict[str, type[CurveMetricSpec] | type[LocalisationMetricSpec]] = {
    "curve": CurveMetricSpec, "localisation": LocalisationMetricSpec}


@overload
def metric(id: str, *, title: str, kind: Literal["curve"], better: Better, summary: str, reference: str,
           params: tuple[Param, ...] = (), short: str = "", order: int = 100
           ) -> Callable[[CurveMetric[P]], CurveMetric[P]]: ...


@overload
def metric(id: str, *, title: str, kind: Literal["localisation"], better: Better, summary: str, reference: str,
           params: tuple[Param, ...] = (), short: str = "", order: int = 100
           ) -> Callable[[LocalisationMetric[P]], LocalisationMetric[P]]: ...


def metric(id: str, *, title: str, kind: MetricKind, better: Better, summary: str, reference: str,
           params: tuple[Param, ...] = (), short: str = "", order: int = 100) -> Callable[[Any], Any]:
    """Register a metric function of ``kind`` (see the module docstring for the two signatures) in :data:`METRICS`;
    ``order`` sorts tables. The function is returned unchanged."""
    if kind not in SPEC_OF:
        raise ValueError(f"metric {id}: kind must be one of {', '.join(SPEC_OF)}, not {kind!r}")

    def deco(fn: Any) -> Any:
        METRICS.add(SPEC_OF[kind](id, title, better, summary, reference, tuple(params), short, order, fn=fn))
        return fn

    return deco


def list_metrics(kind: str | None = None) -> list[MetricSpec]:
    """Registered metrics (of ``kind`` if given) in table order."""
    return sorted(METRICS.list(None if kind is None else lambda m: m.kind == kind), key=lambda m: m.order)


def get_metric(id: str) -> MetricSpec:
    """The metric ``id``; an unknown id is an :class:`ExplainerError` that lists the valid ones."""
    return METRICS.get(id)


def get_curve_metric(id: str) -> CurveMetricSpec:
    """The curve metric ``id`` (typed); a localisation metric is an :class:`ExplainerError`."""
    return _of_kind(id, CurveMetricSpec)


def get_localisation_metric(id: str) -> LocalisationMetricSpec:
    """The localisation metric ``id`` (typed); a curve metric is an :class:`ExplainerError`."""
    return _of_kind(id, LocalisationMetricSpec)


K = TypeVar("K", CurveMetricSpec, LocalisationMetricSpec)


def _of_kind(id: str, cls: type[K]) -> K:
    spec = METRICS.get(id)
    if not isinstance(spec, cls):
        raise ExplainerError(f"{spec.title} is a {spec.kind} metric, not a {cls.kind} one.")
    return spec


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
