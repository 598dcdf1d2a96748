"""What an explainer reports about its own run, read by the Workbench (a leaf module).

The Workbench opens a :class:`Trace` around an explainer call. An explainer whose first forward pass runs on
the very input it explains calls :func:`first_forward` with that pass's logits: the Workbench then takes the
target class (when the user asked for the top-1 class, marked by a negative target) and the class probability
from that pass instead of running a separate forward. Outside a Workbench call there is no trace and negative
targets resolve to the top-1 class of the logits given.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch

TOP1 = -1  # a target of TOP1 means 'the class the model predicts', decided at the first forward pass


@dataclass
class Trace:
    """The input being explained and, once an explainer reported it, the logits of its first forward on it."""

    x: torch.Tensor
    logits: torch.Tensor | None = None
    target: torch.Tensor | None = None


_TRACE: contextvars.ContextVar[Trace | None] = contextvars.ContextVar("xai_trace", default=None)


@contextmanager
def tracing(x: torch.Tensor) -> Iterator[Trace]:
    token = _TRACE.set(Trace(x))
    try:
        yield _TRACE.get()
    finally:
        _TRACE.reset(token)


def _same_input(a: torch.Tensor, b: torch.Tensor) -> bool:
    """True if ``a`` is the traced input itself (or a view/detached alias of it), not a perturbed copy."""
    return a.shape == b.shape and a.device == b.device and a.data_ptr() == b.data_ptr() and a.stride() == b.stride()


def first_forward(x: torch.Tensor, out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Report ``out`` = the logits of a forward pass on ``x``; returns ``target`` with TOP1 entries resolved.

    Only a pass on the traced input itself is recorded (SmoothGrad's noisy copies or IG's path points are not),
    and only the first one.
    """
    tr = _TRACE.get()
    if tr is not None and tr.target is not None and tr.target.shape == target.shape:
        return torch.where(target < 0, tr.target.to(target.device), target)
    top = out.detach().float().argmax(1).to(target.device)
    resolved = torch.where(target < 0, top, target)
    if tr is not None and tr.logits is None and _same_input(x, tr.x):
        tr.logits = out.detach().float().clone()
        tr.target = resolved.detach().clone()
    return resolved
