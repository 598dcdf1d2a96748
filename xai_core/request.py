"""Requests and results as values: :class:`ExplainRequest` (what to explain, validated, with one normalised key),
:class:`Explanation` (a map and what the explainer reported) and :class:`Prediction`."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .errors import ExplainerError
from .registry import ExplainerSpec, get_explainer
from .result import Refinement
from .targets.values import TARGET_TYPES, Target
from .types import DiagnosticValue


@dataclass(frozen=True)
class Prediction:
    index: int
    label: str
    probability: float


def _canonical(value: Any) -> Any:
    """One JSON value per meaning: bools stay bools, ints stay ints, floats are written by ``repr`` (shortest
    round-trip form), so 0.1 and 0.1000000000000000055 give the same key and 2 never equals 2.0 by accident
    (parameters are coerced to their declared kind before this)."""
    if isinstance(value, (bool, int, str)) or value is None:
        return value
    if isinstance(value, float):
        return {"f": repr(value)}
    raise ExplainerError(f"A parameter value of type {type(value).__name__} cannot be part of a request.")


@dataclass(frozen=True)
class ExplainRequest:
    """What to explain: ``method`` with ``params`` (validated, every default filled in, sorted by name), the
    ``target`` (a class index; None: the model's top-1 class; or a :mod:`~xai_core.targets` value: a prompt, a
    reference image, a region, a box) and the ``seed`` of stochastic methods. Build it with :meth:`make`.

    ``key`` is a normalised string: equal requests have equal keys whatever the spelling of their parameters
    ({} and the defaults written out, 2 and 2.0 for a float parameter). Every cache uses it, never ``id()``.
    """

    method: str
    target: int | Target | None
    params: tuple[tuple[str, Any], ...]
    seed: int = 0

    @classmethod
    def make(cls, method: str, target: int | Target | None = None, params: dict[str, Any] | None = None,
             seed: int = 0) -> ExplainRequest:
        spec = get_explainer(method)
        resolved = spec.resolve(dict(params or {}))
        if target is not None and not isinstance(target, TARGET_TYPES):
            if isinstance(target, bool) or not isinstance(target, (int, np.integer)) or int(target) < 0:
                raise ExplainerError(f"The class to explain must be a class index (0 or more); got {target!r}.")
            target = int(target)
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= int(seed) < 2**63:
            raise ExplainerError(f"The seed must be a whole number of 0 or more; got {seed!r}.")
        return cls(method, target, tuple(sorted(resolved.items())), int(seed))

    @property
    def spec(self) -> ExplainerSpec:
        return get_explainer(self.method)

    @property
    def kwargs(self) -> dict[str, Any]:
        return dict(self.params)

    @property
    def key(self) -> str:
        target = self.target.key if isinstance(self.target, TARGET_TYPES) else self.target
        return json.dumps([self.method, target, self.seed, [[k, _canonical(v)] for k, v in self.params]],
                          separators=(",", ":"), ensure_ascii=True)

    @property
    def target_kind(self) -> str:
        """"class" for a class index (or top-1), else the target's kind ("prompt", "region", ...)."""
        return self.target.kind if isinstance(self.target, TARGET_TYPES) else "class"

    def with_target(self, target: int | Target | None) -> ExplainRequest:
        return ExplainRequest.make(self.method, target, self.kwargs, self.seed)


@dataclass
class Explanation:
    """One heatmap for one image: ``map`` is float32 with the image's height and width.

    ``diagnostics`` holds what the explainer reported, each value with the declaration that says how to show it
    (see :class:`~xai_core.types.Diagnostic`), in declaration order. A refining explainer's map also has its
    per-pixel ``uncertainty`` (float32, the map's shape; what it is: ``refinement.uncertainty``) and its
    ``refinement`` (what the map is made of, why its stream stopped early). For a target other than a class
    (``target_kind`` "prompt", "similarity", "region" or "detection") ``class_name`` is the target's title and
    ``probability`` its score (a cosine similarity, a summed region score, a box score), not a probability.
    """

    method: str
    title: str
    map: np.ndarray
    target: int
    class_name: str
    probability: float
    seconds: float
    signed: bool
    params: dict[str, Any] = field(default_factory=dict)
    diagnostics: dict[str, DiagnosticValue] = field(default_factory=dict)
    request: ExplainRequest | None = None
    uncertainty: np.ndarray | None = None
    refinement: Refinement | None = None
    target_kind: str = "class"  # "class": ``probability`` is the class's softmax probability; else the target's score

    def value(self, name: str, default: Any = None) -> Any:
        """The reported value of diagnostic ``name`` (``default`` when the explainer did not report it)."""
        d = self.diagnostics.get(name)
        return default if d is None else d.value

    def shown(self, *how: str) -> list[DiagnosticValue]:
        """The diagnostics to show in one of the ways ``how`` (e.g. ``"caption"``), in declaration order."""
        return [d for d in self.diagnostics.values() if d.spec.show in how]
