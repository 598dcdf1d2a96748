"""Metric registry: adding an evaluation is one file in ``xai_core/metrics/`` and one decorator.

Five kinds of metric, each with its own typed call signature (a protocol below), spec type and value (:mod:`.values`):

* ``curve`` (deletion, insertion, AOPC): ``(model, x, small_map, *, seed, **params) -> Plan``, an order in which
  pixels are replaced; every plan of every map runs in one batched :func:`engine.scores` call.
* ``probe`` (ROAD, faithfulness correlation, infidelity, Average Drop/Increase, PIC): ``(model, x, small_map, *, seed,
  **params) -> Probe``, any model inputs built from the map and a summary of the model's outputs on them; every probe
  of every map runs in one batched engine loop.
* ``rerun`` (sensitivity-max, Focus): ``(model, x, small_map, rerun, *, seed, **params) -> float``, metrics that run
  the map's explainer again on new inputs through :class:`~.values.Rerun` (the Workbench, the same request).
* ``localisation`` (pointing game, IoU, relevance mass): ``(heatmap, region, **params) -> float`` at the image's
  resolution against an annotated box or mask; no model.
* ``map`` (sparseness, complexity): ``(small_map, **params) -> float``, a property of the map alone at the model's
  input size (so images of different sizes compare); no model.

``x`` is the normalised input [1, 3, H, W], ``small_map`` the map resized to it [H, W]. A spec checks its function's
signature against its kind and its declared parameters when it is made (:func:`check_signature`): a metric written
with another kind's signature, a ``**kwargs`` catch-all, or an undeclared keyword is refused at import, and mypy
refuses the first at type-check time. Every metric states its direction, paper, what it needs and its passes.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, TypeVar, overload

import numpy as np
import torch

from ..errors import ExplainerError
from ..models.spec import ModelSpec
from ..registries import Parameterised, Registry
from ..types import ParamSpec as Param
from .protocols import CurveMetric, LocalisationMetric, MapMetric, P, ProbeMetric, RerunMetric
from .signature import check_signature
from .values import Outputs, Plan, Probe, Rerun

__all__ = ["METRICS", "Better", "CurveMetric", "CurveMetricSpec", "LocalisationMetric", "LocalisationMetricSpec",
           "MapMetric", "MapMetricSpec", "MetricKind", "MetricSpec", "Outputs", "Plan", "Probe", "ProbeMetric",
           "ProbeMetricSpec", "Rerun", "RerunMetric", "RerunMetricSpec", "get_curve_metric", "get_localisation_metric",
           "get_metric", "list_metrics", "metric", "order_of"]

Better = Literal["higher", "lower"]
MetricKind = Literal["curve", "localisation", "probe", "rerun", "map"]
NEEDS = {"curve": "the model", "probe": "the model", "rerun": "the model and the explainer (re-run)",
         "localisation": "a box or mask of the object", "map": "the map alone"}


@dataclass(frozen=True)
class MetricSpec(Parameterised):
    """What every metric declares; the kind-specific subclasses add the typed function and the call. ``passes``:
    model passes per map and image, as text (e.g. ``steps + 1 forward passes``); ``needs``: anything beyond its
    kind's needs (:attr:`requires` says all of it); ``default``: chosen unless the user picks (False for the slow
    ones: ROAD's imputations, PIC, the re-running metrics)."""

    id: str
    title: str
    better: Better
    summary: str
    reference: str
    params: tuple[Param, ...] = field(default_factory=tuple)
    short: str = ""
    order: int = 100
    passes: str = ""
    needs: str = ""
    default: bool = True
    kind: ClassVar[MetricKind]
    error = ExplainerError  # raised for a bad parameter (a class attribute, not a field)

    def _check(self, fn: Callable[..., Any]) -> None:
        """Refuse a function without a docstring, or whose signature is not this kind's with the declared params."""
        if not inspect.getdoc(fn):
            raise ValueError(f"metric {self.id} needs a docstring with its paper reference")
        check_signature(self.id, self.kind, fn, self.params)

    def __post_init__(self) -> None:
        self._check(getattr(self, "fn"))  # noqa: B009 - each kind's subclass declares its typed fn

    @property
    def column(self) -> str:
        """Table header with the direction stated, e.g. ``Deletion AUC ↓``."""
        return f"{self.short or self.title} {'↑' if self.better == 'higher' else '↓'}"

    @property
    def requires(self) -> str:
        """What the metric needs, in words: its kind's needs and its own (e.g. Focus's other images)."""
        return NEEDS[self.kind] + (f"; {self.needs}" if self.needs else "")


@dataclass(frozen=True)
class CurveMetricSpec(MetricSpec):
    fn: CurveMetric[...] = field(kw_only=True)
    kind: ClassVar[MetricKind] = "curve"

    def plan(self, model: ModelSpec, x: torch.Tensor, small_map: torch.Tensor, *, seed: int,
             params: Mapping[str, Any] | None = None) -> Plan:
        """The metric's perturbation plan for one map, with ``params`` validated (defaults filled in)."""
        return self.fn(model, x, small_map, seed=seed, **self.resolve(params))


@dataclass(frozen=True)
class ProbeMetricSpec(MetricSpec):
    fn: ProbeMetric[...] = field(kw_only=True)
    kind: ClassVar[MetricKind] = "probe"

    def probe(self, model: ModelSpec, x: torch.Tensor, small_map: torch.Tensor, *, seed: int,
              params: Mapping[str, Any] | None = None) -> Probe:
        """The metric's model inputs and summary for one map, with ``params`` validated."""
        return self.fn(model, x, small_map, seed=seed, **self.resolve(params))


@dataclass(frozen=True)
class RerunMetricSpec(MetricSpec):
    fn: RerunMetric[...] = field(kw_only=True)
    kind: ClassVar[MetricKind] = "rerun"

    def score(self, model: ModelSpec, x: torch.Tensor, small_map: torch.Tensor, rerun: Rerun, *, seed: int,
              params: Mapping[str, Any] | None = None) -> float:
        """The metric of one map whose explainer ``rerun`` runs again, with ``params`` validated."""
        return float(self.fn(model, x, small_map, rerun, seed=seed, **self.resolve(params)))


@dataclass(frozen=True)
class LocalisationMetricSpec(MetricSpec):
    fn: LocalisationMetric[...] = field(kw_only=True)
    kind: ClassVar[MetricKind] = "localisation"

    def score(self, heatmap: np.ndarray, region: np.ndarray, params: Mapping[str, Any] | None = None) -> float:
        """The metric of ``heatmap`` against the boolean ``region`` (same shape), with ``params`` validated."""
        return float(self.fn(heatmap, region, **self.resolve(params)))


@dataclass(frozen=True)
class MapMetricSpec(MetricSpec):
    fn: MapMetric[...] = field(kw_only=True)
    kind: ClassVar[MetricKind] = "map"

    def score(self, small_map: np.ndarray, params: Mapping[str, Any] | None = None) -> float:
        """The metric of the map alone (at the model's input size), with ``params`` validated."""
        return float(self.fn(small_map, **self.resolve(params)))


AnySpec = CurveMetricSpec | ProbeMetricSpec | RerunMetricSpec | LocalisationMetricSpec | MapMetricSpec
METRICS: Registry[MetricSpec] = Registry("metric", ExplainerError)
SPEC_OF: dict[str, type[AnySpec]] = {"curve": CurveMetricSpec, "probe": ProbeMetricSpec, "rerun": RerunMetricSpec,
                                     "localisation": LocalisationMetricSpec, "map": MapMetricSpec}


@overload
def metric(id: str, *, title: str, kind: Literal["curve"], better: Better, summary: str, reference: str,
           params: tuple[Param, ...] = (), short: str = "", order: int = 100, passes: str = "", needs: str = "",
           default: bool = True) -> Callable[[CurveMetric[P]], CurveMetric[P]]: ...


@overload
def metric(id: str, *, title: str, kind: Literal["probe"], better: Better, summary: str, reference: str,
           params: tuple[Param, ...] = (), short: str = "", order: int = 100, passes: str = "", needs: str = "",
           default: bool = True) -> Callable[[ProbeMetric[P]], ProbeMetric[P]]: ...


@overload
def metric(id: str, *, title: str, kind: Literal["rerun"], better: Better, summary: str, reference: str,
           params: tuple[Param, ...] = (), short: str = "", order: int = 100, passes: str = "", needs: str = "",
           default: bool = True) -> Callable[[RerunMetric[P]], RerunMetric[P]]: ...


@overload
def metric(id: str, *, title: str, kind: Literal["localisation"], better: Better, summary: str, reference: str,
           params: tuple[Param, ...] = (), short: str = "", order: int = 100, passes: str = "", needs: str = "",
           default: bool = True) -> Callable[[LocalisationMetric[P]], LocalisationMetric[P]]: ...


@overload
def metric(id: str, *, title: str, kind: Literal["map"], better: Better, summary: str, reference: str,
           params: tuple[Param, ...] = (), short: str = "", order: int = 100, passes: str = "", needs: str = "",
           default: bool = True) -> Callable[[MapMetric[P]], MapMetric[P]]: ...


def metric(id: str, *, title: str, kind: MetricKind, better: Better, summary: str, reference: str,
           params: tuple[Param, ...] = (), short: str = "", order: int = 100, passes: str = "",
           needs: str = "", default: bool = True) -> Callable[[Any], Any]:
    """Register a metric function of ``kind`` (see the module docstring for the signatures) in :data:`METRICS`;
    ``order`` sorts tables, ``passes`` states its model passes per map, ``needs`` what it needs beyond its kind's,
    ``default`` whether menus and :func:`evaluate` choose it unless told. The function is returned unchanged."""
    if kind not in SPEC_OF:
        raise ValueError(f"metric {id}: kind must be one of {', '.join(SPEC_OF)}, not {kind!r}")

    def deco(fn: Any) -> Any:
        METRICS.add(SPEC_OF[kind](id, title, better, summary, reference, tuple(params), short, order, passes, needs,
                                  default, fn=fn))
        return fn

    return deco


def list_metrics(kind: str | None = None) -> list[MetricSpec]:
    """Registered metrics (of ``kind`` if given) in table order."""
    return sorted(METRICS.list(None if kind is None else lambda m: m.kind == kind), key=lambda m: m.order)


def get_metric(id: str) -> MetricSpec:
    """The metric ``id``; an unknown id is an :class:`ExplainerError` that lists the valid ones."""
    return METRICS.get(id)


def get_curve_metric(id: str) -> CurveMetricSpec:
    """The curve metric ``id`` (typed); another kind is an :class:`ExplainerError`."""
    return _of_kind(id, CurveMetricSpec)


def get_localisation_metric(id: str) -> LocalisationMetricSpec:
    """The localisation metric ``id`` (typed); another kind is an :class:`ExplainerError`."""
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
