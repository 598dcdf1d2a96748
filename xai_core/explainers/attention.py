"""Attention probabilities of ViT-style models, captured in the autograd graph (shared by the attention explainers;
not registered itself).

Which modules hold the attention, and how they compute it, is in the model's :class:`~xai_core.models.layout.TokenLayout`:

- timm: the fused kernel never materialises the probabilities, so it is switched off for the call (``fused_attn``,
  restored after) and the probabilities are read where they enter ``attn_drop``;
- transformers (eager attention): the attention module returns them next to its output;
- :class:`torch.nn.MultiheadAttention`: it is asked for per-head weights, and its output is recomputed from those
  weights and the value projection, so gradients reach them (the weights it returns are a copy off the graph path).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ExplainerError
from ..models.layout import TokenLayout
from ..models.spec import ModelSpec

NOT_TOKENS = ("{method} needs a vision transformer with global self-attention (ViT, DeiT, BEiT, ...), and {title} is "
              "not one (a CNN, or windowed attention as in Swin). Use Grad-CAM, Integrated Gradients or a perturbation "
              "method.")


def why_not(model: ModelSpec, method: str) -> str | None:
    """The capability-matrix sentence for attention methods (``None``: they apply)."""
    return None if model.tokens is not None else NOT_TOKENS.format(method=method, title=model.title)


def layout(model: ModelSpec, method: str) -> TokenLayout:
    why = why_not(model, method)
    if why is not None or model.tokens is None:
        raise ExplainerError(why or "")
    return model.tokens


def _mha_pre(_m: nn.Module, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
    kwargs = dict(kwargs)
    new_args = list(args)
    if len(new_args) > 4:
        new_args[4] = True
    else:
        kwargs["need_weights"] = True
    if len(new_args) > 6:
        new_args[6] = False
    else:
        kwargs["average_attn_weights"] = False
    return tuple(new_args), kwargs


def _mha_replay(m: nn.MultiheadAttention, args: tuple, kwargs: dict, out: tuple) -> tuple[torch.Tensor, torch.Tensor]:
    """The attention output recomputed from the per-head weights ``[B, H, L, S]`` it returned."""
    att = out[1]
    value = args[2] if len(args) > 2 else kwargs["value"]
    if not m.batch_first:
        value = value.transpose(0, 1)
    e, h = m.embed_dim, m.num_heads
    w_v = m.in_proj_weight[2 * e:] if m.in_proj_weight is not None else m.v_proj_weight
    b_v = m.in_proj_bias[2 * e:] if m.in_proj_bias is not None else None
    v = F.linear(value, w_v, b_v).reshape(value.shape[0], value.shape[1], h, e // h).transpose(1, 2)
    o = (att @ v).transpose(1, 2).reshape(value.shape[0], att.shape[2], e)
    o = m.out_proj(o)
    return (o if m.batch_first else o.transpose(0, 1)), att


@contextmanager
def attention_maps(model: ModelSpec) -> Iterator[list[torch.Tensor | None]]:
    """During the next forward pass, ``maps[i]`` becomes block i's attention probabilities ``[B, heads, N, N]``
    (in the graph: differentiable). Every hook and switch is undone on exit."""
    lay = model.tokens
    if lay is None:
        raise ExplainerError(NOT_TOKENS.format(method="This method", title=model.title))
    maps: list[torch.Tensor | None] = [None] * len(lay.attentions)
    handles: list[Any] = []
    switched: list[tuple[nn.Module, Any]] = []

    def keep(i: int, second: bool) -> Callable[[nn.Module, tuple, Any], None]:
        def hook(_m: nn.Module, _i: tuple, out: Any) -> None:
            maps[i] = out[1] if second else out
        return hook

    def replay(i: int) -> Callable[[nn.Module, tuple, dict, tuple], tuple]:
        def hook(m: nn.Module, args: tuple, kwargs: dict, out: tuple) -> tuple:
            new = _mha_replay(m, args, kwargs, out)  # type: ignore[arg-type]
            maps[i] = new[1]
            return new
        return hook

    try:
        for i, name in enumerate(lay.attentions):
            m = model.module.get_submodule(name)
            if lay.kind == "timm":
                switched.append((m, m.fused_attn))
                # torch types Module.__setattr__ for tensors/modules only; timm's fused_attn is a plain bool.
                m.fused_attn = False  # type: ignore[assignment]
                handles.append(m.get_submodule("attn_drop").register_forward_hook(keep(i, False)))
            elif lay.kind == "hf":
                handles.append(m.register_forward_hook(keep(i, True)))
            else:
                handles.append(m.register_forward_pre_hook(_mha_pre, with_kwargs=True))
                handles.append(m.register_forward_hook(replay(i), with_kwargs=True))
        yield maps
    finally:
        for h in handles:
            h.remove()
        for m, v in switched:
            m.fused_attn = v


@contextmanager
def block_outputs(model: ModelSpec) -> Iterator[list[torch.Tensor | None]]:
    """During the next forward pass, ``outs[i]`` becomes block i's output tokens ``[B, N, C]``."""
    lay = model.tokens
    assert lay is not None
    outs: list[torch.Tensor | None] = [None] * len(lay.blocks)

    def keep(i: int) -> Callable[[nn.Module, tuple, Any], None]:
        def hook(_m: nn.Module, _i: tuple, out: Any) -> None:
            outs[i] = out[0] if isinstance(out, (tuple, list)) else out
        return hook

    handles = [model.module.get_submodule(n).register_forward_hook(keep(i)) for i, n in enumerate(lay.blocks)]
    try:
        yield outs
    finally:
        for h in handles:
            h.remove()


def checked(maps: list[torch.Tensor | None], model: ModelSpec) -> list[torch.Tensor]:
    if any(a is None or a.dim() != 4 for a in maps):
        raise ExplainerError(f"{model.title} did not expose its attention probabilities in this forward pass (a fused "
                             "attention kernel?); load it again with eager attention.")
    return [a.float() for a in maps]  # type: ignore[union-attr]


def cls_row(r: torch.Tensor, lay: TokenLayout) -> torch.Tensor:
    """What the classifier reads from a token-to-token relevance ``[B, N, N]``: the class token's row, or (no class
    token: mean pooling) the mean of the rows; as patch maps ``[B, h, w]``."""
    row = r[:, 0] if lay.prefix else r.mean(dim=1)
    return lay.to_grid(row)
