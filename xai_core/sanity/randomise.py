"""Model randomisation for sanity checks (Adebayo et al. 2018): re-initialised copies, never the cached model."""

from __future__ import annotations

import copy
import dataclasses
import threading

import torch
from torch import nn

from .. import hooks
from ..models.spec import ModelSpec
from ..workbench import Workbench, as_workbench

NORMS = (nn.modules.batchnorm._BatchNorm, nn.GroupNorm, nn.LayerNorm, nn.modules.instancenorm._InstanceNorm)


def forward_order(model: ModelSpec | Workbench, x: torch.Tensor) -> list[str]:
    """Names of the modules with weights of their own (and of leaf modules), in the order a forward pass finishes
    them (first call counts); the pass runs in the Workbench's session (hooks on a shared model)."""
    with as_workbench(model).session() as spec:
        return hooks.forward_order(spec.module, x)


def weighted_layers(model: ModelSpec | Workbench, x: torch.Tensor) -> list[str]:
    """Leaf layers with their own weights (convolutions, linear, ...; not normalisation), in forward order."""
    mods = dict(as_workbench(model).model.module.named_modules())
    return [n for n in forward_order(model, x)
            if not isinstance(mods[n], NORMS) and any(True for _ in mods[n].parameters(recurse=False))]


def stages(layers: list[str], n: int) -> list[list[str]]:
    """``n`` groups from the top: the last layer (the logits) alone, then the rest in equal slices downwards."""
    top, rest = layers[-1:], layers[:-1][::-1]
    if n <= 1 or not rest:
        return [top]
    k = max(1, min(n - 1, len(rest)))
    size = -(-len(rest) // k)
    return [top] + [rest[i:i + size] for i in range(0, len(rest), size)]


def randomised(model: ModelSpec | Workbench, layers: list[str], x: torch.Tensor, seed: int = 0,
               recalibrate: bool = True) -> ModelSpec:
    """A deep copy of ``model`` with ``layers`` re-initialised by each layer's own ``reset_parameters``.

    Seeded on the CPU (the same weights on any device). With ``recalibrate``, normalisation layers after the
    first randomised layer re-estimate their running statistics on noisy copies of ``x``: stale statistics
    otherwise blow activations up or squash them, and the network can collapse to a constant.
    """
    wb = as_workbench(model)
    with wb.session() as model:  # copied under the lock: an explainer may be folding BatchNorm into it right now
        module = copy.deepcopy(model.module).cpu()
        order = forward_order(wb, x) if recalibrate and layers else []
    mods = dict(module.named_modules())
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for name in layers:
            m = mods[name]
            if hasattr(m, "reset_parameters"):
                m.reset_parameters()
            else:
                for p in m.parameters(recurse=False):
                    nn.init.normal_(p, std=0.02)
    spec = dataclasses.replace(model, module=module, lock=threading.RLock())
    if order:
        first = min(order.index(n) for n in layers if n in order)
        later = [dict(spec.module.named_modules())[n] for n in order[first:]]
        norms = [m for m in later if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]
        if norms:
            _recalibrate(spec, norms, x, seed)
    return spec


def _recalibrate(spec: ModelSpec, norms: list[nn.modules.batchnorm._BatchNorm], x: torch.Tensor, seed: int) -> None:
    gen = torch.Generator().manual_seed(seed)
    batch = x[:1].expand(16, -1, -1, -1).cpu()
    batch = (batch + 0.3 * torch.randn(batch.shape, generator=gen)).to(spec.device)
    batch[8:] = batch[8:].flip(-1)
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # a cumulative average over the calibration batch
        m.train()
    with torch.no_grad():
        spec.module(batch.contiguous(memory_format=torch.channels_last))
    for m in norms:
        m.eval()
