"""LeGrad: layer-wise gradients of the class score with respect to the attention maps."""

from __future__ import annotations

from typing import Any

import torch

from ..engine import select
from ..models.spec import ModelSpec
from ..registry import Cost, ParamSpec, explainer
from ..result import ExplainerResult, first_forward
from .attention import attention_maps, block_outputs, checked, layout, why_not
from .common import upsample


def _layers(params: Any, _size: tuple[int, int]) -> int:
    return int(params.get("layers") or 12)


@explainer(
    "legrad", title="LeGrad", family="attention",
    summary="For every layer, the class score read from that layer's tokens, differentiated by its attention map.",
    reference="Bousselham et al. 2024, 'LeGrad: An Explainability Method for Vision Transformers via Feature "
              "Formation Sensitivity'. arXiv:2404.03214",
    cost=Cost(1 / 12, 1, count=_layers, count_label="layers"), reports_logits=True,
    applies=lambda m: why_not(m, "LeGrad"), targets=("class", "prompt", "similarity"),
    params=(ParamSpec("layers", "int", 0, "Last layers", "How many of the last blocks are used; 0 means all.",
                      0, 64, 1),),
)
def legrad(model: ModelSpec, x: torch.Tensor, target: torch.Tensor, *, layers: int = 0) -> ExplainerResult:
    """Per block l: s_l = head(norm(mean of block l's tokens)) (for a prompt or a reference: that embedding's cosine
    with the target's, as LeGrad does for CLIP), ∇_{A_l} s_l[c], positive part averaged over heads and
    queries; the patch maps averaged over the chosen blocks (Bousselham et al. 2024, arXiv:2404.03214; scores from
    mean-pooled tokens as in the authors' code)."""
    lay = layout(model, "LeGrad")
    head = model.module.get_submodule(lay.head)
    norms = [model.module.get_submodule(n) for n in lay.norms]
    bound = getattr(model.module, "target_head", None)  # a model bound to a target (xai_core.targets): embedding -> score
    first = len(lay.blocks) - layers if 0 < layers < len(lay.blocks) else 0
    rel = []
    with torch.enable_grad(), attention_maps(model) as maps, block_outputs(model) as outs:
        xg = x.detach().requires_grad_(True)  # the weights are frozen: the graph starts at the input
        out = model.module(xg)
        fwd = first_forward(out, target)
        atts = [a for a in maps if a is not None]
        checked(maps, model)
        for i in range(first, len(lay.blocks)):
            z = outs[i].mean(dim=1)  # type: ignore[union-attr]
            for norm in norms:
                z = norm(z)
            s = head(z) if bound is None else bound(head(z))
            (g,) = torch.autograd.grad(select(s, fwd.target).sum(), atts[i], retain_graph=i < len(lay.blocks) - 1)
            rel.append(g.float().clamp(min=0).mean(dim=(1, 2)))
    maps_ = torch.stack([lay.to_grid(r) for r in rel]).mean(0)
    return ExplainerResult.of(upsample(maps_, model.input_size), fwd)
