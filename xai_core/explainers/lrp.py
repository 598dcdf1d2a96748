"""LRP: layer-wise relevance propagation through Zennit's composites, with BatchNorm folded in first."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..errors import ExplainerError
from ..hooks import forward_order
from ..models.spec import ModelSpec
from ..registry import Cost, Diagnostic, ParamSpec, explainer
from ..result import ExplainerResult, Forward, first_forward

COMPOSITES = ("epsilon_plus_flat", "epsilon_alpha2_beta1_flat", "epsilon_plus")


def _bn_pairs(model: ModelSpec, x: torch.Tensor) -> list[tuple[list[str], str]]:
    """(preceding linear layer, BatchNorm) pairs by forward order, for Zennit's NamedMergeBatchNorm."""
    mods = dict(model.module.named_modules())
    if not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in mods.values()):
        return []  # nothing to fold: no forward pass needed to find the order
    order = forward_order(model.module, x)  # one forward pass, only for models with BatchNorm
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


def _refuse_unsupported(model: ModelSpec) -> None:
    """LayerNorm and attention have no rule in these composites: relevance would leak silently, so refuse."""
    odd = sorted({type(m).__name__ for m in model.module.modules() if isinstance(m, (nn.LayerNorm, nn.MultiheadAttention))})
    if odd:
        raise ExplainerError(f"LRP has no rule here for {', '.join(odd)} layers in {model.title} (transformer-style "
                             "models need AttnLRP, Achtibat et al. 2024); its maps would not be conservative. Use "
                             "Integrated Gradients, Gradient × Input or a perturbation method for this model.")


def _applies(model: ModelSpec) -> str | None:
    try:
        _refuse_unsupported(model)
    except ExplainerError as e:
        return str(e)
    return None


def zennit_composite(model: ModelSpec, x: torch.Tensor, composite: str = "epsilon_plus_flat") -> Any:
    """The Zennit composite ``composite`` (one of :data:`COMPOSITES`) for ``model``: refused for layers without a rule,
    BatchNorm folded into the layer before it (one forward on ``x`` when there is BatchNorm), ResNet '+' canonized."""
    from zennit.canonizers import NamedMergeBatchNorm
    from zennit.composites import EpsilonAlpha2Beta1Flat, EpsilonPlus, EpsilonPlusFlat

    if composite not in COMPOSITES:
        raise ExplainerError(f"Unknown LRP composite {composite!r}; choose one of {', '.join(COMPOSITES)}.")
    cls = {"epsilon_plus_flat": EpsilonPlusFlat, "epsilon_alpha2_beta1_flat": EpsilonAlpha2Beta1Flat,
           "epsilon_plus": EpsilonPlus}[composite]
    _refuse_unsupported(model)
    pairs = _bn_pairs(model, x)
    canonizers = ([NamedMergeBatchNorm(pairs)] if pairs else []) + _residual_canonizers(model)
    return cls(canonizers=canonizers or None)


def _residual_canonizers(model: ModelSpec) -> list:
    """torchvision ResNet blocks add their shortcut with '+': Zennit's block canonizers route that addition through
    a Sum module whose rule splits relevance in proportion to the two inputs, so relevance is conserved."""
    from torchvision.models.resnet import BasicBlock, Bottleneck
    from zennit.torchvision import ResNetBasicBlockCanonizer, ResNetBottleneckCanonizer

    kinds = {type(m) for m in model.module.modules()}
    return ([ResNetBasicBlockCanonizer()] if BasicBlock in kinds else []) + \
        ([ResNetBottleneckCanonizer()] if Bottleneck in kinds else [])


@explainer(
    "lrp", title="LRP", family="relevance", signed=True,
    taxonomy=("local", "white-box", "post-hoc", "propagation"),
    summary="Relevance of the class score redistributed layer by layer back to the pixels (Zennit composites).",
    reference="Bach et al. 2015, 'On Pixel-Wise Explanations for Non-Linear Classifier Decisions by Layer-Wise "
              "Relevance Propagation', PLoS ONE; composites: Kohlbrenner et al. 2020, arXiv:1910.09840",
    cost=Cost(1, 1), reports_logits=True, applies=_applies, targets=("class", "region"),  # linear in the outputs
    diagnostics=(Diagnostic("relevance_kept", "Relevance kept", fmt="pixels hold {:.0%} of the logit"),),
    params=(ParamSpec("composite", "choice", "epsilon_plus_flat", "Rules",
                      "Which LRP rule each layer type uses (Zennit composites).", choices=COMPOSITES),),
)
def lrp(model: ModelSpec, x: torch.Tensor, target: torch.Tensor, *,
        composite: str = "epsilon_plus_flat") -> ExplainerResult:
    """Pixel relevance summed over colours (Bach et al. 2015), computed by Zennit with the chosen composite:
    ε for dense layers, z⁺ (or α2β1) for convolutions, the flat rule for the first layer; BatchNorm layers are
    merged into the layer before them (Zennit's NamedMergeBatchNorm) so the rules see one affine map."""
    from zennit.attribution import Gradient

    comp = zennit_composite(model, x, composite)
    with torch.inference_mode(False), torch.enable_grad():
        xi = x.detach().clone().contiguous().requires_grad_(True)
        chosen: list[Forward] = []

        def start(z: torch.Tensor) -> torch.Tensor:  # relevance starts from the class logit itself (LRP's R = f_c(x))
            fwd = first_forward(z, target)  # the forward's logits are the model's: BatchNorm folding keeps them
            chosen.append(fwd)
            onehot = torch.zeros_like(z)
            onehot[torch.arange(len(z)), fwd.target.to(z.device)] = 1.0
            return z * onehot

        with Gradient(model=model.module, composite=comp) as attributor:
            out, rel = attributor(xi, start)
        fwd = chosen[0]
    if not torch.isfinite(out).all():
        raise ExplainerError("The model returned NaN or infinite scores for this input.")
    # LRP conserves relevance only without biases; report how much of the logit reached the pixels
    logit = out.detach().gather(1, fwd.target.view(-1, 1).to(out.device)).squeeze(1)
    kept = (rel.detach().sum((1, 2, 3)) / logit.where(logit.abs() > 1e-12, 1e-12)).tolist()
    return ExplainerResult.of(rel.detach().sum(1).float(), fwd, {"relevance_kept": kept})
