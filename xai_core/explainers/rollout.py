"""Attention rollout."""

from __future__ import annotations

import torch

from ..models.spec import ModelSpec
from ..registry import Cost, ParamSpec, explainer
from ..result import ExplainerResult, first_forward
from .attention import attention_maps, checked, cls_row, layout, why_not
from .common import upsample

FUSIONS = ("mean", "max", "min")


def rollout_of(maps: list[torch.Tensor], fusion: str = "mean") -> torch.Tensor:
    """Token-to-token flow ``[B, N, N]``: Â_l = ½(fused heads) + ½I, rows normalised, multiplied from the first layer
    up (R = Â_L ··· Â_1), as in Abnar & Zuidema 2020 (arXiv:2005.00928)."""
    r = None
    for a in maps:
        fused = a.mean(1) if fusion == "mean" else a.amax(1) if fusion == "max" else a.amin(1)
        eye = torch.eye(fused.shape[-1], device=fused.device, dtype=fused.dtype)
        step = 0.5 * fused + 0.5 * eye
        step = step / step.sum(-1, keepdim=True)
        r = step if r is None else step @ r
    assert r is not None
    return r


@explainer(
    "attention_rollout", title="Attention rollout", family="attention",
    summary="How much each patch flows into the class token through all layers' attention (class-agnostic).",
    reference="Abnar & Zuidema 2020, 'Quantifying Attention Flow in Transformers', ACL. arXiv:2005.00928",
    cost=Cost(1, 0), reports_logits=True, applies=lambda m: why_not(m, "Attention rollout"),
    params=(ParamSpec("fusion", "choice", "mean", "Head fusion", "How the heads' attention maps are combined in "
                      "each layer (paper: mean).", choices=FUSIONS),),
)
def attention_rollout(model: ModelSpec, x: torch.Tensor, target: torch.Tensor, *,
                      fusion: str = "mean") -> ExplainerResult:
    """Rollout R = Π_l (½ Ā_l + ½ I), the class token's row over the patches (Abnar & Zuidema 2020,
    arXiv:2005.00928). The same map for every class: attention does not depend on the class explained."""
    lay = layout(model, "Attention rollout")
    with torch.no_grad(), attention_maps(model) as maps:
        fwd = first_forward(model.module(x), target)
        r = rollout_of(checked(maps, model), fusion)
    return ExplainerResult.of(upsample(cls_row(r, lay), model.input_size), fwd)
