"""What an explainer returns, as values (a leaf module: imports only torch).

* :class:`ExplainerResult` — the maps ``[B, H, W]``, the targets explained, the logits of the first forward pass on
  the explained input itself (when the method ran one) and the diagnostics the method declares, one value per sample;
* :class:`Attribution` — the same for a per-channel attribution ``[B, C, H, W]``, before its channel reduction;
* :data:`TOP1` and :func:`first_forward` — a target of ``TOP1`` means "the class the model predicts": a method whose
  first forward runs on the explained input resolves it from that pass's logits and returns both.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import torch

__all__ = ["TOP1", "Attribution", "ExplainerResult", "Forward", "first_forward"]

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
class ExplainerResult:
    """One explainer run on a batch: ``maps [B, H, W]`` (signed where the method is), ``target [B]`` (the classes
    explained), ``logits [B, classes]`` of the first forward on the explained input itself (None when the method
    ran none) and ``diagnostics`` (declared name -> one value per sample)."""

    maps: torch.Tensor
    target: torch.Tensor
    logits: torch.Tensor | None = None
    diagnostics: Diagnostics = field(default_factory=dict)

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

    @classmethod
    def of(cls, values: torch.Tensor, forward: Forward, diagnostics: Diagnostics | None = None) -> Attribution:
        """An attribution whose targets and logits come from ``forward``."""
        return cls(values, forward.target, forward.logits, diagnostics or {})

    def reduced(self, maps: torch.Tensor) -> ExplainerResult:
        """The result with ``maps`` (this attribution's channel reduction) as its maps."""
        return ExplainerResult(maps, self.target, self.logits, self.diagnostics)
