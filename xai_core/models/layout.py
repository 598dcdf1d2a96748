"""Architecture awareness: where CAM methods sit on a model nobody described, found by one probe forward pass.

:func:`analyse` runs the module once on a blank input with a forward hook on every submodule and reads the shapes:

- CNNs: the CAM layer is the last module whose output is still a spatial map (more than 1×1) before pooling; when
  several modules return that same map the outermost (the block) fires last and is taken. Channel-last models
  (timm's Swin, ``output_fmt == "NHWC"``) get a reshape to ``[B, C, h, w]``.
- Token models (ViT, DeiT, BEiT, Swin in transformers): the grid comes from the patch embedding (the first
  convolution's output) and the token count, the leading class/register/distillation tokens are dropped, and the CAM
  layer is the first LayerNorm of the last block (the last block's output reaches the head only through the class
  token, so its patch tokens have no gradient).
- Global self-attention (one attention map over all tokens per block) is described by a :class:`TokenLayout` that the
  attention explainers read; windowed attention (Swin) is not, and the capability matrix says so.
- The classifier: the last linear layer that outputs the logits.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn

from ..errors import ExplainerError

MAX_PREFIX = 16  # class + distillation + register tokens (DINOv2 with registers has 5)


@dataclass(frozen=True)
class TokenGrid:
    """Token activations ``[B, N, C]`` -> ``[B, C, h, w]``: the first ``prefix`` tokens dropped, the rest a grid."""

    prefix: int
    grid: tuple[int, int]

    def __call__(self, t: torch.Tensor) -> torch.Tensor:
        if t.dim() == 4:
            return t
        h, w = self.grid
        if t.dim() != 3 or t.shape[1] - self.prefix != h * w:
            raise ExplainerError(f"This layer outputs {tuple(t.shape)}, not {self.prefix} + {h}×{w} tokens; choose a layer "
                                 "inside a transformer block.")
        return t[:, self.prefix:, :].reshape(t.shape[0], h, w, t.shape[2]).permute(0, 3, 1, 2)


@dataclass(frozen=True)
class ChannelsLast:
    """Channel-last feature maps ``[B, h, w, C]`` (timm Swin) -> ``[B, C, h, w]``."""

    def __call__(self, t: torch.Tensor) -> torch.Tensor:
        if t.dim() != 4:
            raise ExplainerError(f"This layer outputs a {t.dim()}-D tensor, not a feature map; choose another layer.")
        return t.permute(0, 3, 1, 2)


@dataclass(frozen=True)
class TokenLayout:
    """A ViT-style model with global self-attention: what attention explainers need.

    ``blocks`` output tokens ``[B, N, C]``; ``attentions[i]`` is block i's attention module, of ``kind`` "timm"
    (probabilities captured after its softmax), "hf" (returns them with its output, eager attention) or "mha"
    (:class:`torch.nn.MultiheadAttention`, asked for per-head weights); ``norms`` then ``head`` turn mean-pooled
    tokens into logits (LeGrad's per-layer score)."""

    prefix: int
    grid: tuple[int, int]
    blocks: tuple[str, ...]
    attentions: tuple[str, ...]
    kind: str
    norms: tuple[str, ...]
    head: str

    def to_grid(self, rel: torch.Tensor) -> torch.Tensor:
        """Relevance of every token ``[B, N]`` -> patch maps ``[B, h, w]``."""
        return rel[:, self.prefix:].reshape(rel.shape[0], *self.grid)


@dataclass
class Layout:
    """What :func:`analyse` found, with sentences for the model's description."""

    cam_layer: str | None = None
    fc_layer: str | None = None
    reshape: Callable[[torch.Tensor], torch.Tensor] | None = None
    tokens: TokenLayout | None = None
    notes: list[str] = field(default_factory=list)


@dataclass
class _Seen:
    name: str
    module: nn.Module
    shape: tuple[int, ...]
    attention: tuple[int, ...] | None  # per-head weights returned with the output (transformers, eager)


def _probe(module: nn.Module, input_size: tuple[int, int]) -> list[_Seen]:
    seen: list[_Seen] = []

    def hook(name: str) -> Callable[[nn.Module, tuple, object], None]:
        def fn(m: nn.Module, _i: tuple, out: object) -> None:
            first = out[0] if isinstance(out, (tuple, list)) and out else out
            second = out[1] if isinstance(out, (tuple, list)) and len(out) > 1 else None
            if isinstance(first, torch.Tensor):
                att = tuple(second.shape) if isinstance(second, torch.Tensor) and second.dim() == 4 else None
                seen.append(_Seen(name, m, tuple(first.shape), att))
        return fn

    handles = [m.register_forward_hook(hook(n)) for n, m in module.named_modules() if n]
    try:
        p = next(module.parameters(), None)
        x = torch.zeros(1, 3, *input_size, device=p.device if p is not None else "cpu")
        with torch.no_grad():
            module(x)
    finally:
        for h in handles:
            h.remove()
    return seen


def _addressable(module: nn.Module, name: str) -> bool:
    try:
        module.get_submodule(name)
    except AttributeError:
        return False
    return True


def _kind(s: _Seen) -> str | None:
    if isinstance(s.module, nn.MultiheadAttention):
        return "mha"
    if hasattr(s.module, "fused_attn") and isinstance(getattr(s.module, "attn_drop", None), nn.Module):
        return "timm"
    if s.attention is not None and s.attention[-1] == s.attention[-2]:
        return "hf"
    return None


def _grid(n: int, patch: tuple[int, int]) -> tuple[int, tuple[int, int]] | None:
    """(prefix tokens, (h, w)) for ``n`` tokens on the patch grid or a grid merged by 2, 4, ... (Swin), else None."""
    for f in (1, 2, 4, 8, 16, 32):
        h, w = patch[0] // f, patch[1] // f
        if h * w and 0 <= n - h * w <= (MAX_PREFIX if f == 1 else 0):
            return n - h * w, (h, w)
    return None


def _tokens(seen: list[_Seen], module: nn.Module, patch: tuple[int, int] | None, fc: str | None,
            notes: list[str]) -> tuple[TokenLayout | None, str | None, TokenGrid | None]:
    """(attention layout, CAM layer, reshape) for token models; Nones for others."""
    shapes = {s.name: s.shape for s in seen}
    atts = [(s, kind) for s in seen if (kind := _kind(s))]
    last3 = [s for s in seen if len(s.shape) == 3 and s.shape[0] == 1]
    if not last3 or patch is None:
        return None, None, None
    blocks: list[str] = []
    for s, _ in atts:
        parts = s.name.split(".")
        parent = next((".".join(parts[:i]) for i in range(len(parts) - 1, 0, -1)
                       if len(shapes.get(".".join(parts[:i]), ())) == 3), None)
        if parent is not None and parent not in blocks:
            blocks.append(parent)
    grid, last_block = None, None
    for name in ([blocks[-1]] if blocks else [t.name for t in reversed(last3)]):
        grid = _grid(shapes[name][1], patch)
        if grid is not None:
            last_block = name
            break
    if grid is None or last_block is None:
        return None, None, None
    n = shapes[last_block][1]
    order = [s.name for s in seen]
    later_maps = [s for s in seen[order.index(last_block) + 1:] if len(s.shape) == 4 and min(s.shape[1:]) > 1]
    if not blocks and later_maps:
        return None, None, None  # tokens inside blocks that hand on spatial maps (timm Swin): a CNN-style model
    reshape = TokenGrid(*grid)
    inner = [s.name for s in seen if s.name.startswith(last_block + ".") and isinstance(s.module, nn.LayerNorm)]
    cam = inner[0] if inner else last_block
    notes.append(f"Token model: {grid[1][0]}×{grid[1][1]} patch grid, {grid[0]} class/register token(s) dropped; "
                 f"CAM layer {cam}.")
    kinds = {k for _, k in atts}
    global_att = (len(blocks) == len(atts) and len(kinds) == 1 and fc is not None
                  and all(shapes[b][1] == n for b in blocks)
                  and all(s.attention is None or s.attention[-1] == n for s, _ in atts))
    if not global_att or fc is None:
        if atts:
            notes.append("Its attention is windowed or irregular, so attention-based explainers do not apply.")
        return None, cam, reshape
    after = order[order.index(last_block) + 1:]
    norms = tuple(dict.fromkeys(nm for nm in after if isinstance(module.get_submodule(nm), nn.LayerNorm)
                                and order.index(nm) < order.index(fc)))
    layout = TokenLayout(grid[0], grid[1], tuple(blocks), tuple(s.name for s, _ in atts), kinds.pop(), norms, fc)
    return layout, cam, reshape


def analyse(module: nn.Module, input_size: tuple[int, int], num_classes: int) -> Layout:
    """Find the CAM layer, the classifier and the token layout of ``module`` (one forward pass on zeros)."""
    seen = [s for s in _probe(module, input_size) if _addressable(module, s.name)]
    out = Layout()
    heads = [s.name for s in seen if isinstance(s.module, nn.Linear) and s.shape == (1, num_classes)]
    out.fc_layer = heads[-1] if heads else None
    convs = [s for s in seen if isinstance(s.module, nn.Conv2d) and len(s.shape) == 4]
    patch = (convs[0].shape[2], convs[0].shape[3]) if convs else None
    out.tokens, cam, reshape = _tokens(seen, module, patch, out.fc_layer, out.notes)
    if cam is not None:
        out.cam_layer, out.reshape = cam, reshape
        return out
    nhwc = getattr(module, "output_fmt", None) == "NHWC" or getattr(getattr(module, "model", None), "output_fmt", None) == "NHWC"
    maps = [s for s in seen if len(s.shape) == 4 and s.shape[0] == 1 and not isinstance(s.module, (nn.Identity, nn.Dropout))
            and ((s.shape[1] > 1 and s.shape[2] > 1) if nhwc else (s.shape[2] > 1 and s.shape[3] > 1))]
    if maps:
        out.cam_layer = maps[-1].name
        out.reshape = ChannelsLast() if nhwc else None
        out.notes.append(f"CAM layer {out.cam_layer} ({'channel-last ' if nhwc else ''}feature map "
                         f"{'×'.join(map(str, maps[-1].shape[1:]))}).")
    else:
        out.notes.append("No spatial feature map was found, so CAM methods do not apply.")
    return out
