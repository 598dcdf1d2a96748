"""Scoped activation capture and activation-rule overrides.

Every context manager here removes its hooks in ``finally``: nothing is left on the model after
an explainer, even when it raises.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import nn


@dataclass
class Capture:
    """The output of one module in the last forward pass (kept in the autograd graph)."""

    activation: torch.Tensor | None = None
    calls: int = 0


@contextmanager
def capture(module: nn.Module, *, leaf: bool = False) -> Iterator[Capture]:
    """Record ``module``'s output so a caller can read it or differentiate w.r.t. it.

    With ``leaf=True`` the output is replaced by a detached copy that requires grad: the graph
    starts at this layer, so nothing below it is recorded or differentiated (Grad-CAM's cost is one
    forward plus a backward through the layers above only). The model continues with a non-leaf
    clone of it, because the next op may work in place (DenseNet's ``F.relu(features, inplace=True)``),
    which autograd forbids on a leaf; ``activation`` keeps the layer's output as the layer produced it.
    """
    rec = Capture()

    def hook(_m: nn.Module, _inp: tuple, out: torch.Tensor) -> torch.Tensor | None:
        if isinstance(out, (tuple, list)):
            rec.activation = out[0]
            rec.calls += 1
            return None
        rec.calls += 1
        if leaf:
            rec.activation = out.detach().requires_grad_(True)
            return rec.activation.clone()
        rec.activation = out
        return None

    handle = module.register_forward_hook(hook)
    try:
        yield rec
    finally:
        handle.remove()


@contextmanager
def capture_input(module: nn.Module) -> Iterator[Capture]:
    """Record the (first) input of ``module``, e.g. the pooled features entering a linear head."""
    rec = Capture()

    def hook(_m: nn.Module, inp: tuple) -> None:
        rec.activation = inp[0]
        rec.calls += 1

    handle = module.register_forward_pre_hook(hook)
    try:
        yield rec
    finally:
        handle.remove()


@contextmanager
def output_grad_hooks(modules: list[nn.Module], fn: Callable[[torch.Tensor], torch.Tensor]) -> Iterator[int]:
    """Rewrite the gradient arriving at every output of ``modules`` with ``fn``; yields the count.

    The rule is a tensor hook on each output (no copy of the activation, nothing kept on the module
    once the forward hooks are removed: tensor hooks die with the graph).
    """

    def hook(_m: nn.Module, _i: tuple, out: torch.Tensor) -> None:
        if isinstance(out, torch.Tensor) and out.requires_grad:
            out.register_hook(fn)

    handles = [m.register_forward_hook(hook) for m in modules]
    try:
        yield len(handles)
    finally:
        for h in handles:
            h.remove()


def has_hooks(model: nn.Module) -> bool:
    """True if any module of ``model`` carries a forward/backward hook (used by hygiene tests)."""
    names = ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_backward_pre_hooks")
    return any(len(getattr(m, n, {})) for m in model.modules() for n in names)


def forward_order(module: nn.Module, x: torch.Tensor) -> list[str]:
    """Names of the modules with weights of their own (and of leaf modules), in the order a forward pass on
    ``x[:1]`` finishes them (first call counts). Layers such as EfficientNet's padded convolutions have children
    and weights both. The caller holds the model (a Workbench session): the hooks live for this one pass."""
    order: list[str] = []
    handles = []
    for name, m in module.named_modules():
        if name and (not list(m.children()) or any(True for _ in m.parameters(recurse=False))):
            handles.append(m.register_forward_hook(lambda _m, _i, _o, name=name: order.append(name)))
    try:
        with torch.inference_mode():
            module(x[:1])
    finally:
        for h in handles:
            h.remove()
    return list(dict.fromkeys(order))
