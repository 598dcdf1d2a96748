"""Gradient-weighted attention relevance (Chefer et al. 2021)."""

from __future__ import annotations

import torch

from ..engine import select
from ..models.spec import ModelSpec
from ..registry import Cost, explainer
from ..result import ExplainerResult, first_forward
from .attention import attention_maps, checked, cls_row, layout, why_not
from .common import upsample


@explainer(
    "chefer", title="Transformer attribution (Chefer)", family="attention",
    summary="Attention maps weighted by their gradient for the class, positive part, accumulated over the layers.",
    reference="Chefer, Gur & Wolf 2021, 'Generic Attention-model Explainability for Interpreting Bi-Modal and "
              "Encoder-Decoder Transformers', ICCV. arXiv:2103.15679",
    cost=Cost(1, 1), reports_logits=True, applies=lambda m: why_not(m, "Transformer attribution"),
)
def chefer(model: ModelSpec, x: torch.Tensor, target: torch.Tensor) -> ExplainerResult:
    """R = I; for each layer R ← R + Ā R with Ā = E_h[(∇A ⊙ A)⁺] (Chefer et al. 2021, arXiv:2103.15679, eq. 5-6);
    the class token's row over the patches."""
    lay = layout(model, "Transformer attribution")
    with torch.enable_grad(), attention_maps(model) as maps:
        xg = x.detach().requires_grad_(True)  # the weights are frozen: the graph starts at the input
        out = model.module(xg)
        fwd = first_forward(out, target)
        raw = [a for a in maps if a is not None]
        atts = checked(maps, model)
        grads = torch.autograd.grad(select(out, fwd.target).sum(), raw)
    n = atts[0].shape[-1]
    r = torch.eye(n, device=x.device).expand(len(x), n, n).clone()
    for a, g in zip(atts, grads, strict=True):
        cam = (g.float() * a.detach()).clamp(min=0).mean(1)
        r = r + cam @ r
    return ExplainerResult.of(upsample(cls_row(r, lay), model.input_size), fwd)
