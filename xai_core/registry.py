"""Explainer registry: metadata that pages turn into menus, parameter widgets, costs and diagnostic captions.

Built on the one registry shape (:mod:`registries`): :data:`EXPLAINERS` holds :class:`ExplainerSpec` s by id, and a
spec resolves and validates its own parameters (an unknown or mistyped name is an :class:`ExplainerError`).
Adding a method is one file in ``xai_core/explainers/`` and one decorator (the package discovers its modules):

* :func:`explainer` registers ``fn(model, x, target, *, <declared params>[, progress][, seed]) -> ExplainerResult``
  (maps ``[B, H, W]``);
* :func:`attribution` registers a gradient-style function of the same shape that returns an :class:`Attribution`
  (per-channel values ``[B, 3, H, W]``); the map is derived by a channel reduction, and SmoothGrad can wrap it.

A function takes exactly its declared parameters (checked at registration: no ``**kwargs`` catch-all), plus
``progress`` and ``seed`` when it uses them. Metadata: ``cost`` (a :class:`Cost`: passes per sample, as data),
``diagnostics`` (the values the method reports next to its map, each a :class:`Diagnostic`; a result may carry only
declared names, one value per sample), ``reports_logits`` (its first forward pass runs on the input itself: it
resolves ``TOP1`` targets and returns that pass's logits, so no separate forward is needed), ``signed_if`` (for a
method whose sign depends on its parameters: ``signed_if(resolved params) -> bool``), ``applies`` (optional
``applies(model) -> str | None``: ``None`` when the method can run on that model, else the sentence that says why
not, read by the capability matrix shown when a model loads; without it a method is taken to apply), ``targets``
(the kinds of target whose scalar it can explain, :data:`TARGET_KINDS`; all by default), ``steps``
(a refining explainer's generator of any-time maps, see :mod:`anytime`: the function's own arguments plus
``previews``; :meth:`ExplainerSpec.stream` runs it, and the registered function must be its last result).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

import torch

from . import anytime
from .errors import ExplainerError
from .registries import Parameterised, Registry
from .result import Attribution, ExplainerResult
from .types import Cost, Diagnostic, ParamSpec, Progress

if TYPE_CHECKING:
    from .models.spec import ModelSpec

__all__ = ["EXPLAINERS", "REDUCTIONS", "Cost", "Diagnostic", "ExplainerSpec", "ParamSpec", "Progress", "attribution",
           "explainer", "get_explainer", "list_explainers", "reduce_channels"]

ExplainerFn = Callable[..., "ExplainerResult | Attribution"]
F = TypeVar("F", bound=Callable[..., Any])
R = TypeVar("R", ExplainerResult, Attribution)
RUN_ARGS = ("progress", "seed")  # what every run may pass besides the declared parameters
REDUCTION = "reduction"  # the parameter an attribution's registration adds: its channel reduction
TARGET_KINDS = ("class", "prompt", "similarity", "region", "detection")  # xai_core.targets' kinds, and a class

REDUCTIONS = {
    "max_abs": "max |a| over channels (Simonyan et al.)",
    "sum_abs": "sum of |a| over channels",
    "l2": "L2 norm over channels",
    "sum": "signed sum over channels",
}


@dataclass(frozen=True)
class ExplainerSpec(Parameterised):
    """A registered explainer and the metadata the UI and docs are built from."""

    error = ExplainerError  # raised for a bad parameter (a class attribute: not annotated, so not a field)

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
    per_channel: bool = False  # fn returns an Attribution; the map is its reduction (parameter 'reduction')
    signed_if: Callable[[Mapping[str, Any]], bool] | None = field(default=None, repr=False)
    applies: Callable[[ModelSpec], str | None] | None = field(default=None, repr=False)
    targets: tuple[str, ...] = TARGET_KINDS
    steps: Callable[..., Iterator[ExplainerResult | Attribution]] | None = field(default=None, repr=False)
    run_args: tuple[str, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not inspect.getdoc(self.fn):
            raise ValueError(f"explainer {self.id!r} needs a docstring with its paper reference")
        names = [d.name for d in self.diagnostics]
        if len(set(names)) != len(names):
            raise ValueError(f"explainer {self.id!r} declares a diagnostic twice")
        object.__setattr__(self, "run_args", _checked_signature(self))
        if self.steps is not None:
            mine, theirs = _keywords(self.fn) | {"previews"}, _keywords(self.steps)
            if mine != theirs:
                raise ValueError(f"explainer {self.id!r}: its steps take {sorted(theirs)}, not {sorted(mine)}")

    @property
    def refines(self) -> bool:
        """Whether the method yields successive any-time maps (:meth:`stream`), each with its uncertainty."""
        return self.steps is not None

    def passes(self, params: dict[str, Any] | None = None, input_size: tuple[int, int] = (224, 224)) -> float:
        """Forward + backward passes per sample with ``params`` (defaults filled in); ``math.inf`` if unknown."""
        return self.cost.passes(self.resolve(params or {}), input_size)

    def why_not(self, model: ModelSpec) -> str | None:
        """None if this method applies to ``model`` (bound to a target: for its kind) as far as can be told, else why."""
        kind = model.target_kind or "class"
        if kind not in self.targets:
            return f"{self.title} explains {' or '.join(self.targets)} targets only, not a {kind} target."
        return self.applies(model) if self.applies is not None else None

    def signed_for(self, params: Mapping[str, Any] | None = None) -> bool:
        """Whether the map is signed with ``params`` (defaults filled in)."""
        return self.signed or (self.signed_if is not None and bool(self.signed_if(self.resolve(params))))

    def diagnostic(self, name: str) -> Diagnostic:
        for d in self.diagnostics:
            if d.name == name:
                return d
        raise ExplainerError(f"{self.title} does not declare a diagnostic {name!r}.")

    def run(self, model: ModelSpec, x: torch.Tensor, target: torch.Tensor | int, *, progress: Progress | None = None,
            seed: int = 0, **params: Any) -> ExplainerResult:
        """Explain ``x`` for ``target`` with ``params`` (validated, defaults filled in): the full result."""
        resolved = self.resolve(params)
        x, target = _placed(model, x, target)
        if not self.per_channel:
            out = self._call(model, x, target, progress, seed, resolved)
            if not isinstance(out, ExplainerResult):
                raise ValueError(f"explainer {self.id!r} returned {type(out).__name__}, not an ExplainerResult")
            return self._checked(out, out.maps, 3, len(x))
        how = resolved.pop(REDUCTION)
        att = self._attribution(model, x, target, progress, seed, resolved)
        return att.reduced(reduce_channels(att.values, how))

    def stream(self, model: ModelSpec, x: torch.Tensor, target: torch.Tensor | int, *,
               progress: Progress | None = None, seed: int = 0, stop: anytime.StopRule | None = None,
               **params: Any) -> Iterator[ExplainerResult]:
        """Successive results of a refining explainer (one input at a time gets previews; see :mod:`anytime`), the
        last equal to :meth:`run`'s unless ``stop`` ended the stream early; a method that does not refine yields
        :meth:`run`'s result alone. Close the generator (or exhaust it) to release what it holds."""
        if self.steps is None:
            yield self.run(model, x, target, progress=progress, seed=seed, **params)
            return
        resolved = self.resolve(params)
        how = resolved.pop(REDUCTION) if self.per_channel else None
        x, target = _placed(model, x, target)
        given = {"progress": progress, "seed": seed}
        steps = self.steps(model, x, target, **resolved, **{k: given[k] for k in self.run_args}, previews=True)

        def checked() -> Iterator[ExplainerResult]:
            with anytime.closed(steps):
                for out in steps:
                    if how is None and isinstance(out, ExplainerResult):
                        yield self._checked(out, out.maps, 3, len(x))
                    elif how is not None and isinstance(out, Attribution):
                        yield self._checked(out, out.values, 4, len(x)).reduced(reduce_channels(out.values, how))
                    else:
                        raise ValueError(f"explainer {self.id!r} yielded {type(out).__name__}")

        yield from anytime.refine(checked(), stop)

    def attribute(self, model: ModelSpec, x: torch.Tensor, target: torch.Tensor | int, *,
                  progress: Progress | None = None, seed: int = 0, **params: Any) -> Attribution:
        """The per-channel attribution ``[B, 3, H, W]`` of a method registered with :func:`attribution`."""
        if not self.per_channel:
            raise ExplainerError(f"{self.title} gives maps, not per-channel attributions.")
        if REDUCTION in params:
            raise ExplainerError(f"{self.title}'s attributions are per channel: '{REDUCTION}' applies to its map only.")
        resolved = self.resolve(params)
        del resolved[REDUCTION]
        x, target = _placed(model, x, target)
        return self._attribution(model, x, target, progress, seed, resolved)

    def __call__(self, model: ModelSpec, x: torch.Tensor, target: torch.Tensor | int, *,
                 progress: Progress | None = None, seed: int = 0, **params: Any) -> torch.Tensor:
        """The maps ``[B, H, W]`` alone (see :meth:`run` for the targets, logits and diagnostics)."""
        return self.run(model, x, target, progress=progress, seed=seed, **params).maps

    def _call(self, model: ModelSpec, x: torch.Tensor, target: torch.Tensor, progress: Progress | None, seed: int,
              params: dict[str, Any]) -> object:
        given = {"progress": progress, "seed": seed}
        return self.fn(model, x, target, **params, **{k: given[k] for k in self.run_args})

    def _attribution(self, model: ModelSpec, x: torch.Tensor, target: torch.Tensor, progress: Progress | None,
                     seed: int, params: dict[str, Any]) -> Attribution:
        out = self._call(model, x, target, progress, seed, params)
        if not isinstance(out, Attribution):
            raise ValueError(f"explainer {self.id!r} returned {type(out).__name__}, not an Attribution")
        return self._checked(out, out.values, 4, len(x))

    def _checked(self, out: R, values: torch.Tensor, ndim: int, n: int) -> R:
        """``out`` if it keeps what the method promises for ``n`` inputs; a programming error (ValueError) otherwise."""
        if values.ndim != ndim or len(values) != n:
            raise ValueError(f"explainer {self.id!r} returned values of shape {tuple(values.shape)} for {n} inputs")
        if tuple(out.target.shape) != (n,):
            raise ValueError(f"explainer {self.id!r} returned targets of shape {tuple(out.target.shape)}")
        undeclared = sorted(set(out.diagnostics) - {d.name for d in self.diagnostics})
        if undeclared:
            raise ValueError(f"explainer {self.id!r} reported undeclared diagnostics {', '.join(undeclared)}")
        short = sorted(k for k, v in out.diagnostics.items() if len(v) != n)
        if short:
            raise ValueError(f"explainer {self.id!r}: diagnostics {', '.join(short)} need one value per input ({n})")
        if self.reports_logits and (out.logits is None or len(out.logits) != n):
            raise ValueError(f"explainer {self.id!r} declares reports_logits but returned no logits for its input")
        if out.uncertainty is not None and tuple(out.uncertainty.shape) != (n, *values.shape[-2:]):
            raise ValueError(f"explainer {self.id!r} returned an uncertainty of shape {tuple(out.uncertainty.shape)}")
        return out


def _placed(model: ModelSpec, x: torch.Tensor, target: torch.Tensor | int) -> tuple[torch.Tensor, torch.Tensor]:
    x = x.to(model.device)  # callers may build inputs on the CPU for a GPU model
    return x, torch.as_tensor(target, device=x.device).view(-1)


def _keywords(fn: Callable[..., Any]) -> set[str]:
    return {n for n, p in inspect.signature(fn).parameters.items() if p.kind is inspect.Parameter.KEYWORD_ONLY}


def _checked_signature(spec: ExplainerSpec) -> tuple[str, ...]:
    """The run arguments (progress, seed) ``spec.fn`` takes; ValueError unless it takes ``(model, x, target)`` and,
    keyword-only, exactly the declared parameters (defaults equal to the declared ones) and nothing else."""
    sig = inspect.signature(spec.fn)
    kinds = inspect.Parameter
    if any(p.kind in (kinds.VAR_KEYWORD, kinds.VAR_POSITIONAL) for p in sig.parameters.values()):
        raise ValueError(f"explainer {spec.id!r} takes *args or **kwargs: name each parameter it takes")
    positional = [n for n, p in sig.parameters.items() if p.kind in (kinds.POSITIONAL_ONLY, kinds.POSITIONAL_OR_KEYWORD)]
    if len(positional) != 3:
        raise ValueError(f"explainer {spec.id!r} must take (model, x, target) positionally; takes {positional}")
    keywords = {n: p for n, p in sig.parameters.items() if p.kind is kinds.KEYWORD_ONLY}
    declared = {p.name: p for p in spec.params if not (spec.per_channel and p.name == REDUCTION)}
    wrong = sorted((set(keywords) ^ set(declared)) - set(RUN_ARGS))
    if wrong:
        raise ValueError(f"explainer {spec.id!r}: parameters {', '.join(wrong)} are declared or taken, not both")
    for name, p in declared.items():
        if keywords[name].default is not inspect.Parameter.empty and keywords[name].default != p.default:
            raise ValueError(f"explainer {spec.id!r}: {name}'s default differs from its declared {p.default!r}")
    return tuple(n for n in RUN_ARGS if n in keywords)


EXPLAINERS = Registry[ExplainerSpec]("explainer", ExplainerError)


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


def explainer(id: str, **meta: Any) -> Callable[[F], F]:
    """Register a map-producing explainer ``fn(model, x, target, *, <params>) -> ExplainerResult``."""

    def deco(fn: F) -> F:
        EXPLAINERS.add(ExplainerSpec(id=id, fn=fn, **meta))
        return fn

    return deco


def attribution(id: str, *, reduction: str = "max_abs", **meta: Any) -> Callable[[F], F]:
    """Register a per-channel attribution ``fn(model, x, target, *, <params>) -> Attribution``; its map is
    ``reduce_channels(values, reduction)``, with ``reduction`` a parameter the registration adds.

    Signed methods (``signed=True``) use the signed sum; unsigned ones offer a choice of reduction.
    """

    def deco(attr_fn: F) -> F:
        signed = meta.get("signed", False)
        choices = ("sum",) if signed else ("max_abs", "sum_abs", "l2")
        red = ParamSpec(REDUCTION, "choice", "sum" if signed else reduction, "Channel reduction",
                        "How the three colour channels' attributions become one map.", choices=choices)
        rest = {k: v for k, v in meta.items() if k != "params"}
        EXPLAINERS.add(ExplainerSpec(id=id, fn=attr_fn, params=(*meta.get("params", ()), red), per_channel=True,
                                     **rest))
        return attr_fn

    return deco


def list_explainers(*, max_passes: float | None = None, family: str | None = None,
                    input_size: tuple[int, int] = (224, 224)) -> list[ExplainerSpec]:
    """Registered explainers in registration order; ``max_passes`` keeps those whose default parameters cost at
    most that many forward + backward passes per sample (at ``input_size``), ``family`` one family."""
    return EXPLAINERS.list(lambda s: (family is None or s.family == family)
                           and (max_passes is None or s.passes(None, input_size) <= max_passes))


def get_explainer(id: str) -> ExplainerSpec:
    """The spec for ``id``; :class:`ExplainerError` lists the valid ids otherwise."""
    return EXPLAINERS.get(id)
