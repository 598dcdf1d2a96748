"""LRP: layer-wise relevance propagation through Zennit's composites, with BatchNorm folded in first."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..errors import ExplainerError
from ..models.spec import ModelSpec
from ..registry import ParamSpec, explainer

COMPOSITES = ("epsilon_plus_flat", "epsilon_alpha2_beta1_flat", "epsilon_plus")


def _bn_pairs(model: ModelSpec, x: torch.Tensor) -> list[tuple[list[str], str]]:
    """(preceding linear layer, BatchNorm) pairs by forward order, for Zennit's NamedMergeBatchNorm."""
    from ..sanity.randomise import forward_order

    mods = dict(model.module.named_modules())
    order = forward_order(model, x)
    pairs, unpaired = [], []
    for i, name in enumerate(order):
        if isinstance(mods[name], nn.modules.batchnorm._BatchNorm):
            # The layer run just before it (skipping no-ops): a ReLU or pooling in between forbids folding.
            prev = next((p for p in reversed(order[:i]) if not isinstance(mods[p], (nn.Identity, nn.Dropout))), None)
            prev = prev if prev is not None and isinstance(mods[prev], (nn.Conv2d, nn.Linear)) else None
            ch = getattr(mods[prev], "out_channels", getattr(mods[prev], "out_features", None)) if prev else None
            if prev is None or ch != mods[name].num_features:
                unpaired.append(name)
            else:
                pairs.append(([prev], name))
    if unpaired:
        raise ExplainerError(f"LRP cannot canonize {model.title}: the BatchNorm layer(s) {', '.join(unpaired[:3])} do "
                             "not directly follow a convolution or linear layer, so they cannot be folded into it. "
                             "Use Gradient × Input or Integrated Gradients for this model.")
    return pairs


@explainer(
    "lrp", title="LRP", family="relevance", signed=True,
    taxonomy=("local", "white-box", "post-hoc", "propagation"),
    summary="Relevance of the class score redistributed layer by layer back to the pixels (Zennit composites).",
    reference="Bach et al. 2015, 'On Pixel-Wise Explanations for Non-Linear Classifier Decisions by Layer-Wise "
              "Relevance Propagation', PLoS ONE; composites: Kohlbrenner et al. 2020, arXiv:1910.09840",
    cost="1 forward + 1 modified backward",
    params=(ParamSpec("composite", "choice", "epsilon_plus_flat", "Rules",
                      "Which LRP rule each layer type uses (Zennit composites).", choices=COMPOSITES),),
)
def lrp(model: ModelSpec, x: torch.Tensor, target: torch.Tensor, *, composite: str = "epsilon_plus_flat",
        **_: Any) -> torch.Tensor:
    """Pixel relevance summed over colours (Bach et al. 2015), computed by Zennit with the chosen composite:
    ε for dense layers, z⁺ (or α2β1) for convolutions, the flat rule for the first layer; BatchNorm layers are
    merged into the layer before them (Zennit's NamedMergeBatchNorm) so the rules see one affine map."""
    from zennit.attribution import Gradient
    from zennit.canonizers import NamedMergeBatchNorm
    from zennit.composites import EpsilonAlpha2Beta1Flat, EpsilonPlus, EpsilonPlusFlat

    cls = {"epsilon_plus_flat": EpsilonPlusFlat, "epsilon_alpha2_beta1_flat": EpsilonAlpha2Beta1Flat,
           "epsilon_plus": EpsilonPlus}[composite]
    pairs = _bn_pairs(model, x)
    comp = cls(canonizers=[NamedMergeBatchNorm(pairs)] if pairs else None)
    with torch.inference_mode(False), torch.enable_grad():
        xi = x.detach().clone().contiguous().requires_grad_(True)
        onehot = torch.zeros(len(x), model.num_classes, device=x.device)
        onehot[torch.arange(len(x)), target.to(x.device)] = 1.0
        with Gradient(model=model.module, composite=comp) as attributor:
            out, rel = attributor(xi, lambda z: z * onehot)  # start from the class logit itself (LRP's R = f_c(x))
    if not torch.isfinite(out).all():
        raise ExplainerError("The model returned NaN or infinite scores for this input.")
    return rel.detach().sum(1).float()
