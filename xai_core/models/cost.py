"""What a model costs, found before anything real is allocated: parameters, activation bytes and FLOPs of one
batch-1 forward at its input size, measured on the ``meta`` device (shapes only, no memory, no arithmetic).

An uploaded config or graph is a recipe for an allocation: build the module under ``torch.device("meta")`` (or take
one already built), run :func:`measure`, then :func:`check` against :class:`~xai_core.untrusted.Limits` — only then
build it for real. Every refusal is one :class:`ModelLoadError` sentence naming what was too large and the limit.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from ..errors import ModelLoadError
from ..untrusted.limits import LIMITS, Limits, human


@dataclass(frozen=True)
class ModelCost:
    """Parameters (count and bytes), modules, and one batch-1 forward's activation bytes and FLOPs (None: not run)."""

    parameters: int
    parameter_bytes: int
    modules: int
    activation_bytes: int | None = None
    flops: int | None = None

    def describe(self) -> str:
        act = "" if self.activation_bytes is None else f", {self.activation_bytes / 2**20:,.0f} MB of activations"
        fl = "" if self.flops is None else f", {self.flops / 1e9:,.1f} GFLOP per forward"
        return f"{self.parameters / 1e6:,.1f} M parameters in {self.modules:,} modules{act}{fl}"


def _tensors(out: object) -> list[torch.Tensor]:
    if isinstance(out, torch.Tensor):
        return [out]
    if isinstance(out, (list, tuple)):
        return [t for o in out for t in _tensors(o)]
    if isinstance(out, dict):
        return [t for o in out.values() for t in _tensors(o)]
    return [t for o in getattr(out, "values", lambda: [])() for t in _tensors(o)] if hasattr(out, "values") else []


def static(module: nn.Module) -> ModelCost:
    """Parameters and buffers (shared tensors counted once) and modules, without a forward."""
    seen: dict[int, torch.Tensor] = {}
    for t in [*module.parameters(), *module.buffers()]:
        seen.setdefault(id(t), t)
    params = sum(t.numel() for t in module.parameters())
    nbytes = sum(t.numel() * t.element_size() for t in seen.values())
    return ModelCost(params, nbytes, sum(1 for _ in module.modules()))


def measure(module: nn.Module, input_size: tuple[int, int], *, forward: bool = True,
            call: Callable[[nn.Module], object] | None = None) -> ModelCost:
    """The cost of ``module`` (on the meta device, or real: the forward then runs on a meta copy of the input only
    when the module is on meta). With ``forward``, one batch-1 forward on a meta input counts every module's output
    bytes and the FLOPs (torch's FlopCounterMode); a module that cannot run on meta leaves both None. ``call`` runs
    another forward instead (``call(module)``, e.g. a dual encoder's text tower on meta token ids)."""
    base = static(module)
    if not forward:
        return base
    if any(p.device.type != "meta" for p in module.parameters()):
        raise ValueError("measure() runs a forward only on a module built on the meta device")
    total = [0]

    def hook(_m: nn.Module, _i: object, out: object) -> None:
        total[0] += sum(t.numel() * t.element_size() for t in _tensors(out))

    handles = [m.register_forward_hook(hook) for m in module.modules()]
    training = {m: m.training for m in module.modules()}
    module.eval()  # as the model will run (batch norm in training mode refuses a batch of 1 on a 1×1 map)
    try:
        with FlopCounterMode(display=False) as counter, torch.no_grad():
            if call is None:
                module(torch.empty(1, 3, *input_size, device="meta"))
            else:
                call(module)
        flops = int(counter.get_total_flops())
    except Exception:  # noqa: BLE001 - an op without a meta kernel: the static part still stands
        return base
    finally:
        for h in handles:
            h.remove()
        for m, mode in training.items():
            m.training = mode
    return ModelCost(base.parameters, base.parameter_bytes, base.modules, total[0], flops)


def check(cost: ModelCost, what: str, *, limits: Limits = LIMITS) -> None:
    """Refuse a model over a limit, naming ``what`` (e.g. "The model config.json describes") and the limit."""
    over = [(cost.parameters, "model_parameters", "parameters"), (cost.modules, "model_layers", "modules"),
            (cost.activation_bytes, "model_activation_bytes", "of activations per forward"),
            (cost.flops, "model_forward_flops", "per forward")]
    for value, limit, unit in over:
        cap = getattr(limits, limit)
        if value is not None and value > cap:
            shown = human(value, limit)
            raise ModelLoadError(f"{what} a model of {shown} {unit}; this server builds models of up to "
                                 f"{human(cap, limit)} (limit {limit}).")
    cap = limits.model_parameters * 4  # float32 parameters; buffers (e.g. index tables a config sizes) count too
    if cost.parameter_bytes > cap:
        raise ModelLoadError(f"{what} a model whose parameters and buffers take {human(cost.parameter_bytes, '_bytes')}; "
                             f"this server builds models of up to {human(cap, '_bytes')} (4 bytes per parameter, "
                             "limit model_parameters).")
