"""What an explainer returns, as values (a leaf module: imports only torch).

* :class:`ExplainerResult` — the maps ``[B, H, W]``, the targets explained, the logits of the first forward pass on
  the explained input itself (when the method ran one) and the diagnostics the method declares, one value per sample;
* :class:`Attribution` — the same for a per-channel attribution ``[B, C, H, W]``, before its channel reduction;
* :class:`Refinement` — where an any-time map of a refining explainer stands (see :mod:`xai_core.anytime`): what it
  is made of, what its uncertainty map is, and why its stream stopped early;
* :data:`TOP1` and :func:`first_forward` — a target of ``TOP1`` means "the class the model predicts": a method whose
  first forward runs on the explained input resolves it from that pass's logits and returns both.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import torch

__all__ = ["TOP1", "Attribution", "ExplainerResult", "Forward", "Refinement", "first_forward"]

TOP1 = -1  # a target of TOP1 means 'the class the model predicts', decided at the first forward pass

Diagnostics = Mapping[str, Sequence[Any]]  # diagnostic name -> one value per sample


@dataclass(frozen=True)
class Forward:
    """A forward pass on the explained input: its logits (detached, float32) and the targets, top-1 resolved."""

    logits: torch.Tensor
    target: torch.Tensor


def first_forward(out: torch.Tensor, target: torch.Tensor) -> Forward:
    """``out`` = the logits of a forward pass on the explained input; ``TOP1`` (negative) entries of ``target``
    become that pass's top-1 class."""
    z = out.detach().float()
    return Forward(z, torch.where(target < 0, z.argmax(1).to(target.device), target))


@dataclass(frozen=True)
class Refinement:
    """One any-time map's place in its stream: ``done`` of ``total`` units, ``text`` (what the map is made of, e.g.
    "400 of 2,000 masks"), ``uncertainty`` (what the result's uncertainty map is, e.g. "bootstrap over the masks";
    "" when it carries none), ``stopped`` (why the stream ended before ``total``; "" when it did not) and
    ``stability`` (the stop rule's measure against the previous refinement; None for the first)."""

    done: int
    total: int
    text: str
    uncertainty: str = ""
    stopped: str = ""
    stability: float | None = None

    @property
    def complete(self) -> bool:
        """Whether this is the full computation (the one-shot map), not a preview or an early stop."""
        return self.done >= self.total


@dataclass(frozen=True)
class ExplainerResult:
    """One explainer run on a batch: ``maps [B, H, W]`` (signed where the method is), ``target [B]`` (the classes
    explained), ``logits [B, classes]`` of the first forward on the explained input itself (None when the method
    ran none) and ``diagnostics`` (declared name -> one value per sample). A refining explainer's results also carry
    ``uncertainty [B, H, W]`` (per-pixel, ≥ 0, in the map's units; what it is: ``refinement.uncertainty``) and
    ``refinement``."""

    maps: torch.Tensor
    target: torch.Tensor
    logits: torch.Tensor | None = None
    diagnostics: Diagnostics = field(default_factory=dict)
    uncertainty: torch.Tensor | None = None
    refinement: Refinement | None = None

    @classmethod
    def of(cls, maps: torch.Tensor, forward: Forward, diagnostics: Diagnostics | None = None) -> ExplainerResult:
        """A result whose targets and logits come from ``forward``."""
        return cls(maps, forward.target, forward.logits, diagnostics or {})

    def with_maps(self, maps: torch.Tensor) -> ExplainerResult:
        return replace(self, maps=maps)


@dataclass(frozen=True)
class Attribution:
    """A per-channel attribution run: ``values [B, C, H, W]``, the rest as in :class:`ExplainerResult`."""

    values: torch.Tensor
    target: torch.Tensor
    logits: torch.Tensor | None = None
    diagnostics: Diagnostics = field(default_factory=dict)
    uncertainty: torch.Tensor | None = None  # per pixel [B, H, W], of the map (not per channel)
    refinement: Refinement | None = None

    @classmethod
    def of(cls, values: torch.Tensor, forward: Forward, diagnostics: Diagnostics | None = None) -> Attribution:
        """An attribution whose targets and logits come from ``forward``."""
        return cls(values, forward.target, forward.logits, diagnostics or {})

    def reduced(self, maps: torch.Tensor) -> ExplainerResult:
        """The result with ``maps`` (this attribution's channel reduction) as its maps."""
        return ExplainerResult(maps, self.target, self.logits, self.diagnostics, self.uncertainty, self.refinement)
