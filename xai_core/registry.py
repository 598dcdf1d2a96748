"""Explainer registry: metadata that pages turn into menus, parameter widgets, costs and diagnostic captions.

Adding a method is one file in ``xai_core/explainers/`` and one decorator (the package discovers its modules):

* :func:`explainer` registers a function that returns maps ``Tensor[B, H, W]``;
* :func:`attribution` registers a gradient-style function that returns per-channel attributions
  ``Tensor[B, 3, H, W]``; the map is derived by a channel reduction, and SmoothGrad can wrap it.

Metadata: ``cost`` (a :class:`Cost`: passes per sample, as data), ``diagnostics`` (the values the method reports
next to its map, each a :class:`Diagnostic`), ``reports_logits`` (its first forward pass runs on the input
itself and reports its logits through :func:`trace.first_forward`, so no separate forward is needed), ``applies``
(optional ``applies(model) -> str | None``: ``None`` when the method can run on that model, else the sentence that
says why not, read by the capability matrix shown when a model loads; without it a method is taken to apply).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import torch

from .errors import ExplainerError
from .types import Cost, Diagnostic, ParamSpec, Progress

if TYPE_CHECKING:
    from .models.spec import ModelSpec

__all__ = ["REDUCTIONS", "Cost", "Diagnostic", "ExplainerSpec", "ParamSpec", "Progress", "attribution", "explainer",
           "get_explainer", "list_explainers", "reduce_channels"]


class ExplainerFn(Protocol):
    def __call__(self, model: ModelSpec, x: torch.Tensor, target: torch.Tensor, *,
                 progress: Progress | None = None, seed: int = 0, extras: dict | None = None,
                 **params: Any) -> torch.Tensor: ...


@dataclass(frozen=True)
class ExplainerSpec:
    """A registered explainer and the metadata the UI and docs are built from."""

    id: str
    title: str
    fn: ExplainerFn
    family: str
    summary: str
    reference: str
    signed: bool = False
    cost: Cost = Cost(1, 1)
    taxonomy: tuple[str, ...] = ("local", "white-box", "post-hoc", "model-specific")
    params: tuple[ParamSpec, ...] = ()
    diagnostics: tuple[Diagnostic, ...] = ()
    stochastic: bool = False
    reports_logits: bool = False
    applies: Callable[[ModelSpec], str | None] | None = field(default=None, repr=False)
    attribute: ExplainerFn | None = field(default=None, repr=False)

    def defaults(self) -> dict[str, Any]:
        return {p.name: p.default for p in self.params}

    def resolve(self, params: dict[str, Any]) -> dict[str, Any]:
        """Defaults filled in, values validated; unknown names are an error, not ignored."""
        known = {p.name: p for p in self.params}
        unknown = set(params) - set(known)
        if unknown:
            raise ExplainerError(f"{self.title} has no parameter {', '.join(sorted(unknown))}; "
                                 f"it takes {', '.join(known) or 'none'}.")
        out = self.defaults()
        out.update({k: known[k].validate(v) for k, v in params.items()})
        return out

    def passes(self, params: dict[str, Any] | None = None, input_size: tuple[int, int] = (224, 224)) -> float:
        """Forward + backward passes per sample with ``params`` (defaults filled in); ``math.inf`` if unknown."""
        return self.cost.passes(self.resolve(params or {}), input_size)

    def why_not(self, model: ModelSpec) -> str | None:
        """``None`` if this method applies to ``model`` (as far as can be told without running it), else why not."""
        return self.applies(model) if self.applies is not None else None

    def diagnostic(self, name: str) -> Diagnostic:
        for d in self.diagnostics:
            if d.name == name:
                return d
        raise ExplainerError(f"{self.title} does not declare a diagnostic {name!r}.")

    def __call__(self, model: ModelSpec, x: torch.Tensor, target: torch.Tensor, *,
                 progress: Progress | None = None, seed: int = 0, extras: dict | None = None,
                 **params: Any) -> torch.Tensor:
        x = x.to(model.device)  # callers may build inputs on the CPU for a GPU model
        target = torch.as_tensor(target, device=x.device).view(-1)
        return self.fn(model, x, target, progress=progress, seed=seed, extras=extras, **self.resolve(params))


_REGISTRY: dict[str, ExplainerSpec] = {}

REDUCTIONS = {
    "max_abs": "max |a| over channels (Simonyan et al.)",
    "sum_abs": "sum of |a| over channels",
    "l2": "L2 norm over channels",
    "sum": "signed sum over channels",
}


def reduce_channels(attr: torch.Tensor, how: str) -> torch.Tensor:
    """Per-channel attributions [B, C, H, W] -> map [B, H, W]."""
    if how == "max_abs":
        return attr.abs().amax(dim=1)
    if how == "sum_abs":
        return attr.abs().sum(dim=1)
    if how == "l2":
        return attr.pow(2).sum(dim=1).sqrt()
    if how == "sum":
        return attr.sum(dim=1)
    raise ExplainerError(f"Unknown channel reduction {how!r}; choose one of {', '.join(REDUCTIONS)}.")


def _add(spec: ExplainerSpec) -> None:
    if spec.id in _REGISTRY:
        raise ValueError(f"explainer id {spec.id!r} registered twice")
    if not inspect.getdoc(spec.fn):
        raise ValueError(f"explainer {spec.id!r} needs a docstring with its paper reference")
    names = [d.name for d in spec.diagnostics]
    if len(set(names)) != len(names):
        raise ValueError(f"explainer {spec.id!r} declares a diagnostic twice")
    _REGISTRY[spec.id] = spec


def explainer(id: str, **meta: Any) -> Callable[[ExplainerFn], ExplainerFn]:
    """Register a map-producing explainer ``fn(model, x, target, *, progress, seed, extras, **p)``."""

    def deco(fn: ExplainerFn) -> ExplainerFn:
        _add(ExplainerSpec(id=id, fn=fn, **meta))
        return fn

    return deco


def attribution(id: str, *, reduction: str = "max_abs", **meta: Any) -> Callable[[ExplainerFn], ExplainerFn]:
    """Register a per-channel attribution; its map is ``reduce_channels(attr, reduction)``.

    Signed methods (``signed=True``) use the signed sum; unsigned ones offer a choice of reduction.
    """

    def deco(attr_fn: ExplainerFn) -> ExplainerFn:
        signed = meta.get("signed", False)
        choices = ("sum",) if signed else ("max_abs", "sum_abs", "l2")
        red = ParamSpec("reduction", "choice", "sum" if signed else reduction, "Channel reduction",
                        "How the three colour channels' attributions become one map.", choices=choices)

        def map_fn(model: ModelSpec, x: torch.Tensor, target: torch.Tensor, *, reduction: str,
                   **kw: Any) -> torch.Tensor:
            return reduce_channels(attr_fn(model, x, target, **kw), reduction)

        map_fn.__doc__ = attr_fn.__doc__
        params = tuple(meta.pop("params", ())) + (red,)
        _add(ExplainerSpec(id=id, fn=map_fn, params=params, attribute=attr_fn, **meta))
        return attr_fn

    return deco


def list_explainers(*, max_passes: float | None = None, family: str | None = None,
                    input_size: tuple[int, int] = (224, 224)) -> list[ExplainerSpec]:
    """Registered explainers in registration order; ``max_passes`` keeps those whose default parameters cost at
    most that many forward + backward passes per sample (at ``input_size``), ``family`` one family."""
    out = list(_REGISTRY.values())
    if family is not None:
        out = [s for s in out if s.family == family]
    if max_passes is not None:
        out = [s for s in out if s.passes(None, input_size) <= max_passes]
    return out


def get_explainer(id: str) -> ExplainerSpec:
    """The spec for ``id``; :class:`ExplainerError` lists the valid ids otherwise."""
    if id not in _REGISTRY:
        raise ExplainerError(f"Unknown explainer {id!r}; available: {', '.join(_REGISTRY)}.")
    return _REGISTRY[id]

